"""Invocation records, logs and the REPORT line (SPEC §7, issue 6), driven
over HTTP and through faasctl against a real faasd."""
import json
import os
import sqlite3
import time

from conftest import HOT_OK, sh


def api(d, tok, path):
    return d.json("GET", "/v1/tenants/" + path, tok)


def record(d, tok, tenant, inv_id, timeout=10):
    """The record of inv_id once the writer has it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        s, doc = api(d, tok, "%s/invocations/%s" % (tenant, inv_id))
        if s == 200:
            return doc
        assert s == 404, doc
        time.sleep(0.05)
    raise AssertionError("no record of %s" % inv_id)


def key(d, tenant, owner_tok, scope):
    s, doc = d.json("POST", "/v1/tenants/%s/keys" % tenant, owner_tok, {"scope": scope})
    assert s == 201, doc
    return doc["token"]


def test_records_of_exec_invocations(faasd):
    tok = faasd.tenant("rec")
    faasd.deploy("rec", tok, "echo", sh("echo 'to stderr' >&2\nprintf 'Content-Type: text/plain\\n\\n'\ncat\n"),
                 memory_mb=64)
    s, h, body = faasd.call("POST", "/fn/rec/echo", tok, body="hello world")
    assert s == 200 and body == b"hello world"
    r = record(faasd, tok, "rec", h["x-faas-invocation-id"])
    assert r["tenant"] == "rec" and r["function"] == "echo" and r["version"] == 1
    assert r["alias"] == "live" and r["trigger"] == "http"
    assert r["status"] == "ok" and r["http_status"] == 200 and r["cold"] is True
    assert r["request_bytes"] == 11 and r["response_bytes"] == 11
    assert r["mem_limit_mb"] == 64 and r["mem_peak_kb"] > 0
    assert r["duration_ms"] > 0 and r["billed_ms"] >= 1 and r["error"] is None
    assert r["logs"]["stderr"] == "to stderr\n" and r["truncated"]["stderr"] is False
    assert abs(time.time() - r["started_us"] / 1e6) < 60

    # by version number: no alias
    s, h, _ = faasd.call("POST", "/fn/rec/echo:1", tok, body="x")
    r = record(faasd, tok, "rec", h["x-faas-invocation-id"])
    assert r["alias"] is None and r["version"] == 1

    faasd.deploy("rec", tok, "fails", sh("echo 'about to fail' >&2\nexit 3\n"))
    s, h, _ = faasd.call("GET", "/fn/rec/fails", tok)
    assert s == 502
    r = record(faasd, tok, "rec", h["x-faas-invocation-id"])
    assert r["status"] == "error" and r["http_status"] == 502
    assert r["error"]["code"] == "function_error" and "status 3" in r["error"]["message"]
    assert "about to fail" in r["logs"]["stderr"]

    faasd.deploy("rec", tok, "slow", sh("sleep 5\n"), timeout_s=1)
    s, h, _ = faasd.call("GET", "/fn/rec/slow", tok)
    assert s == 504
    r = record(faasd, tok, "rec", h["x-faas-invocation-id"])
    assert r["status"] == "timeout" and r["error"]["code"] == "function_timeout"
    assert r["duration_ms"] >= 900

    # the REPORT line of the daemon log names the same invocation
    assert ("REPORT id=%s fn=rec/slow v=1" % h["x-faas-invocation-id"]) in faasd.log_text()


def test_hot_records_cold_then_warm(faasd):
    tok = faasd.tenant("rhot")
    with open(HOT_OK, "rb") as f:
        faasd.deploy("rhot", tok, "ok", {"ok": (f.read(), 0o755)}, runtime="http", handler="ok")
    ids, colds = [], []
    for _ in range(3):
        s, h, body = faasd.call("GET", "/fn/rhot/ok/some/path", tok)
        assert s == 200
        ids.append(h["x-faas-invocation-id"])
        colds.append(h["x-faas-cold"] == "1")
    recs = [record(faasd, tok, "rhot", i) for i in ids]
    assert recs[0]["cold"] is True and recs[0]["init_ms"] > 0
    # The record says what the caller was told.  (Which calls are warm is
    # the scheduler's business, tested in test_hot.py; rarely a second
    # instance starts for the first call and serves the second one cold.)
    assert [r["cold"] for r in recs] == colds
    assert all(r["init_ms"] == 0 for r in recs if not r["cold"])
    assert all(r["status"] == "ok" and r["response_bytes"] == 3 for r in recs)


def test_listing_filters_pages_and_bad_queries(faasd):
    tok = faasd.tenant("rlist")
    faasd.deploy("rlist", tok, "a", sh("printf 'ok'\n"))
    faasd.deploy("rlist", tok, "b", sh("exit 1\n"))
    ids = {"a": set(), "b": set()}
    for i in range(12):
        fn = "a" if i % 3 else "b"
        s, h, _ = faasd.call("GET", "/fn/rlist/" + fn, tok)
        ids[fn].add(h["x-faas-invocation-id"])
    for fn in ids:
        for i in ids[fn]:
            record(faasd, tok, "rlist", i)
    s, doc = api(faasd, tok, "rlist/invocations?function=a")
    assert s == 200 and {r["id"] for r in doc["invocations"]} == ids["a"]
    s, doc = api(faasd, tok, "rlist/invocations?status=error")
    assert {r["id"] for r in doc["invocations"]} == ids["b"]
    assert all("logs" not in r for r in doc["invocations"]), "listings carry no logs"
    s, doc = api(faasd, tok, "rlist/invocations?since=1h&until=2099-01-01T00:00:00Z")
    assert len(doc["invocations"]) == 12
    s, doc = api(faasd, tok, "rlist/invocations?since=2099-01-01T00:00:00.5Z")
    assert s == 200 and doc["invocations"] == []
    # pages of 5, newest first, through the cursor
    seen, cursor, pages = [], None, 0
    while True:
        q = "rlist/invocations?limit=5" + ("&cursor=%d" % cursor if cursor else "")
        s, doc = api(faasd, tok, q)
        assert s == 200
        seen += [r["id"] for r in doc["invocations"]]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 12 and set(seen) == ids["a"] | ids["b"]
    starts = [r["started_us"] for r in api(faasd, tok, "rlist/invocations")[1]["invocations"]]
    assert starts == sorted(starts, reverse=True)

    for q, name in (("limit=0", "limit"), ("limit=abc", "limit"), ("status=bogus", "status"),
                    ("since=yesterday", "since"), ("until=10x", "until"),
                    ("cold=maybe", "cold"), ("version=-1", "version"),
                    ("cursor=x", "cursor"), ("function=Bad%20Name", "function"),
                    ("colour=red", "colour")):
        s, doc = api(faasd, tok, "rlist/invocations?" + q)
        assert s == 400 and doc["error"]["code"] == "invalid_query", (q, doc)
        assert name in doc["error"]["message"], (q, doc)
    s, doc = api(faasd, tok, "rlist/invocations?since=1h&until=2h")
    assert s == 400 and "since must be before until" in doc["error"]["message"]
    s, doc = api(faasd, tok, "rlist/invocations/not-a-uuid")
    assert s == 400 and "not-a-uuid" in doc["error"]["message"]
    s, doc = api(faasd, tok, "rlist/invocations/00000000-0000-4000-8000-000000000000")
    assert s == 404 and doc["error"]["code"] == "invocation_not_found"
    s, doc = faasd.json("POST", "/v1/tenants/rlist/invocations", tok, {})
    assert s == 405


def test_tenant_isolation(faasd):
    ta = faasd.tenant("isoa")
    tb = faasd.tenant("isob")
    faasd.deploy("isoa", ta, "f", sh("echo secret-a >&2\nprintf ok\n"))
    faasd.deploy("isob", tb, "f", sh("printf ok\n"))
    s, h, _ = faasd.call("GET", "/fn/isoa/f", ta)
    ida = h["x-faas-invocation-id"]
    record(faasd, ta, "isoa", ida)
    faasd.call("GET", "/fn/isob/f", tb)
    # b's key on a's URLs: refused; a's id under b's URL: does not exist
    for path in ("isoa/invocations", "isoa/invocations/" + ida, "isoa/functions/f/logs"):
        s, doc = api(faasd, tb, path)
        assert s == 403, (path, doc)
    s, doc = api(faasd, tb, "isob/invocations/" + ida)
    assert s == 404
    s, doc = api(faasd, tb, "isob/functions/f/logs")
    assert s == 200 and all("secret-a" not in l["text"] for l in doc["lines"])
    s, doc = api(faasd, tb, "isob/invocations")
    assert ida not in [r["id"] for r in doc["invocations"]]
    # an invoke key may call but not read records; a deploy key may read them
    inv = key(faasd, "isoa", ta, "invoke")
    s, doc = api(faasd, inv, "isoa/invocations")
    assert s == 403
    dep = key(faasd, "isoa", ta, "deploy")
    s, doc = api(faasd, dep, "isoa/invocations/" + ida)
    assert s == 200 and doc["logs"]["stderr"] == "secret-a\n"
    # the admin sees every tenant's
    s, doc = api(faasd, faasd.admin, "isoa/invocations/" + ida)
    assert s == 200


def test_logs_lines_cursor_and_faasctl(faasd, faasctl):
    tok = faasd.tenant("rlog")
    faasd.deploy("rlog", tok, "f", sh("echo \"line one $QUERY_STRING\" >&2\necho 'line two' >&2\nprintf ok\n"))
    for i in range(3):
        s, h, _ = faasd.call("GET", "/fn/rlog/f?n=%d" % i, tok)
        last = h["x-faas-invocation-id"]
    record(faasd, tok, "rlog", last)
    s, doc = api(faasd, tok, "rlog/functions/f/logs")
    assert s == 200
    texts = [l["text"] for l in doc["lines"]]
    assert texts == ["line one n=0", "line two", "line one n=1", "line two",
                     "line one n=2", "line two"]
    assert doc["lines"][-1]["invocation_id"] == last and doc["lines"][0]["stream"] == "stderr"
    cursor = doc["cursor"]
    s, doc = api(faasd, tok, "rlog/functions/f/logs?since=seq:%d" % cursor)
    assert s == 200 and doc["lines"] == [] and doc["cursor"] == cursor
    s, h, _ = faasd.call("GET", "/fn/rlog/f?n=3", tok)
    record(faasd, tok, "rlog", h["x-faas-invocation-id"])
    s, doc = api(faasd, tok, "rlog/functions/f/logs?since=seq:%d" % cursor)
    assert [l["text"] for l in doc["lines"]] == ["line one n=3", "line two"]
    s, doc = api(faasd, tok, "rlog/functions/f/logs?since=2099-01-01T00:00:00Z")
    assert doc["lines"] == []
    for q, name in (("since=seq:x", "since"), ("since=soon", "since"), ("follow=2", "follow"),
                    ("limit=5000", "limit"), ("tail=1", "tail")):
        s, doc = api(faasd, tok, "rlog/functions/f/logs?" + q)
        assert s == 400 and name in doc["error"]["message"], (q, doc)
    s, doc = api(faasd, tok, "rlog/functions/nope/logs")
    assert s == 404 and doc["error"]["code"] == "function_not_found"

    env = {"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": tok}
    rc, out, err = faasctl("logs", "f", env=env)
    assert rc == 0, err
    assert out.count("line two") == 4 and "line one n=3" in out and last in out
    rc, out, err = faasctl("--json", "logs", "f", "--since", "1h", env=env)
    assert rc == 0 and len([json.loads(l) for l in out.splitlines()]) == 8
    rc, out, err = faasctl("logs", "f", "--since", "whenever", env=env)
    assert rc == 1 and "since" in err
    rc, out, err = faasctl("logs", "f", "--tail", env=env)
    assert rc == 2 and "--tail" in err
    rc, out, err = faasctl("logs", "Bad Name", env=env)
    assert rc == 2 and "not a valid function name" in err
    rc, out, err = faasctl("invocations", "--since", "whenever", env=env)
    assert rc == 1 and "since" in err
    rc, out, err = faasctl("invocations", "f", "--limit", "2", env=env)
    assert rc == 0 and len(out.splitlines()) == 3 and h["x-faas-invocation-id"] in out
    rc, out, err = faasctl("invocations", "--status", "bogus", env=env)
    assert rc == 2 and "--status" in err
    rc, out, err = faasctl("invocations", "--limit", "0", env=env)
    assert rc == 2 and "--limit" in err
    rc, out, err = faasctl("invocations", "show", h["x-faas-invocation-id"], env=env)
    assert rc == 0, err
    assert "REPORT     duration_ms=" in out and "billed_ms=" in out and "line one n=3" in out
    assert "rlog/f version 1 via alias live" in out
    rc, out, err = faasctl("--json", "invocations", "show", h["x-faas-invocation-id"], env=env)
    assert rc == 0 and json.loads(out)["status"] == "ok"
    rc, out, err = faasctl("invocations", "show", "00000000-0000-4000-8000-000000000000",
                           env=env)
    assert rc == 1 and "no invocation" in err
    rc, out, err = faasctl("invocations", "show", env=env)
    assert rc == 2


def test_follow_picks_up_new_lines(faasd, faasctl, tmp_path):
    import subprocess
    from conftest import FAASCTL
    tok = faasd.tenant("rfol")
    faasd.deploy("rfol", tok, "f", sh("echo \"hello $QUERY_STRING\" >&2\nprintf ok\n"))
    s, h, _ = faasd.call("GET", "/fn/rfol/f?first", tok)
    record(faasd, tok, "rfol", h["x-faas-invocation-id"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": tok,
           "FAASCTL_CONFIG": str(tmp_path / "c.json")}
    p = subprocess.Popen([FAASCTL, "logs", "f", "--follow"], stdout=subprocess.PIPE, env=env,
                         text=True)
    try:
        assert "hello first" in p.stdout.readline()
        faasd.call("GET", "/fn/rfol/f?second", tok)
        assert "hello second" in p.stdout.readline(), "the follow loop picked it up"
    finally:
        p.send_signal(2)
        assert p.wait(10) == 0


def test_log_cap_report_off_and_records_off(fresh_faasd):
    d = fresh_faasd("max_log_bytes = 1024\nreport_log = off\n").start()
    tok = d.tenant("cap")
    d.deploy("cap", tok, "big", sh("head -c 5000 /dev/zero | tr '\\0' x >&2\nprintf ok\n"))
    s, h, _ = d.call("GET", "/fn/cap/big", tok)
    assert s == 200
    r = record(d, tok, "cap", h["x-faas-invocation-id"])
    assert len(r["logs"]["stderr"]) == 1024 and set(r["logs"]["stderr"]) == {"x"}, r["logs"]
    assert r["truncated"]["stderr"] is True
    assert "REPORT " not in d.log_text(), "report_log = off"
    assert d.stop() == 0

    d = fresh_faasd("records = off\n")
    d.start()
    s, h, _ = d.call("GET", "/fn/cap/big", tok)
    assert s == 200
    time.sleep(0.5)
    s, doc = api(d, tok, "cap/invocations/" + h["x-faas-invocation-id"])
    assert s == 404, "records = off keeps none"
    assert "REPORT id=%s" % h["x-faas-invocation-id"] in d.log_text()
    assert d.stop() == 0


def test_retention_prunes_old_records(fresh_faasd):
    d = fresh_faasd("retention_days = 2\n").start()
    tok = d.tenant("ret")
    d.deploy("ret", tok, "f", sh("printf ok\n"))
    ids = []
    for _ in range(6):
        s, h, _ = d.call("GET", "/fn/ret/f", tok)
        ids.append(h["x-faas-invocation-id"])
    for i in ids:
        record(d, tok, "ret", i)
    assert d.stop() == 0
    # age four of them by three days behind faasd's back, as time would
    db = sqlite3.connect(os.path.join(d.state, "db", "faasd.db"))
    with db:
        db.executemany("UPDATE invocations SET started_us = started_us - ? WHERE id = ?",
                       [(3 * 86400 * 10**6, i) for i in ids[:4]])
    db.close()
    d.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        s, doc = api(d, tok, "ret/invocations")
        if len(doc["invocations"]) == 2:
            break
        time.sleep(0.1)
    assert sorted(r["id"] for r in doc["invocations"]) == sorted(ids[4:])
    assert "pruned 4 invocation records older than 2 days" in d.log_text()
    assert d.stop() == 0


def metrics(d, tok=None):
    s, h, body = d.call("GET", "/metrics", tok or d.admin)
    assert s == 200 and h["content-type"].startswith("text/plain"), body
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics(faasd):
    tok = faasd.tenant("met")
    faasd.deploy("met", tok, "ok", sh("printf ok\n"))
    faasd.deploy("met", tok, "bad", sh("exit 1\n"))
    for _ in range(3):
        assert faasd.call("GET", "/fn/met/ok", tok)[0] == 200
    assert faasd.call("GET", "/fn/met/bad", tok)[0] == 502
    assert faasd.call("GET", "/fn/met/missing", tok)[0] == 404
    m = metrics(faasd)
    lab = 'tenant="met",function="ok",version="1"'
    assert m['faasd_invocations_total{%s,status="ok"}' % lab] == 3
    assert m['faasd_invocations_total{tenant="met",function="bad",version="1",status="error"}'] == 1
    assert m['faasd_cold_starts_total{%s}' % lab] == 3
    assert m['faasd_invocation_duration_seconds_count{%s}' % lab] == 3
    assert m['faasd_invocation_duration_seconds_bucket{%s,le="+Inf"}' % lab] == 3
    buckets = [v for k, v in m.items()
               if k.startswith("faasd_invocation_duration_seconds_bucket{%s," % lab)]
    assert buckets == sorted(buckets), "cumulative buckets"
    assert m['faasd_http_requests_total{code="200"}'] >= 3
    assert m['faasd_http_requests_total{code="404"}'] >= 1
    assert m['faasd_http_requests_total{code="502"}'] >= 1
    assert m["faasd_records_dropped_total"] == 0
    assert m["process_open_fds"] > 0 and m["process_resident_memory_bytes"] > 1 << 20
    assert any(k.startswith("faasd_build_info{version=") for k in m)
    assert 'faasd_instances{state="idle"}' in m and 'faasd_instances{state="busy"}' in m
    # only admin keys read it
    s, doc = faasd.json("GET", "/metrics", tok)
    assert s == 403, doc
    s, doc = faasd.json("GET", "/metrics")
    assert s == 401, doc
    s, doc = faasd.json("POST", "/metrics", faasd.admin, {})
    assert s == 405


def test_tiny_queue_drops_and_counts_never_blocks(fresh_faasd):
    import concurrent.futures
    d = fresh_faasd("records_queue = 1\n").start()
    tok = d.tenant("tiny")
    with open(HOT_OK, "rb") as f:
        d.deploy("tiny", tok, "ok", {"ok": (f.read(), 0o755)}, runtime="http", handler="ok",
                 max_instances=4)

    def one(_):
        return d.call("GET", "/fn/tiny/ok", tok)[0]
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        codes = list(ex.map(one, range(2000)))
    assert codes.count(200) == 2000, "no invocation waits for or fails on recording"
    deadline = time.time() + 10
    while time.time() < deadline:
        m = metrics(d)
        if m["faasd_records_queued"] == 0 and \
                m["faasd_records_written_total"] + m["faasd_records_dropped_total"] >= 2000:
            break
        time.sleep(0.1)
    assert m["faasd_records_dropped_total"] > 0, m
    assert m["faasd_records_written_total"] + m["faasd_records_dropped_total"] == 2000, m
    s, doc = api(d, tok, "tiny/invocations?limit=1000")
    written = len(doc["invocations"])
    assert written == min(1000, m["faasd_records_written_total"])
    assert "invocation record queue full (1 records)" in d.log_text()
    assert d.stop() == 0
