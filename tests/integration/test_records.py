"""Invocation records, logs and the REPORT line (SPEC §7, issue 6), driven
over HTTP and through faasctl against a real faasd."""
import json
import os
import sqlite3
import uuid
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
    # One sequential caller: one instance, cold once.  The record says
    # what the caller was told.
    assert colds == [True, False, False]
    assert [r["cold"] for r in recs] == colds
    assert all(r["init_ms"] == 0 for r in recs if not r["cold"])
    assert all(r["status"] == "ok" and r["response_bytes"] == 3 for r in recs)


LOGGING_PY = r"""
import sys, threading
print("init says hello")
sys.stderr.write("init warns\n")
def handler(event, context):
    print("handling " + event["path"])
    sys.stderr.write("err " + event["path"] + "\n")
    if event["path"] == "/later":
        # written once the answer is out: the instance is idle by then
        threading.Timer(0.2, lambda: print("late line", flush=True)).start()
    if event["path"] == "/flood":
        sys.stdout.write("y" * 300000)
    if event["path"] == "/boom":
        raise ValueError("bad input")
    return {"statusCode": 200, "body": "ok"}
"""

LOGGING_JS = r"""
console.log('node init');
exports.handler = async (event) => {
    console.log('node handling ' + event.path);
    console.error('node err');
    return { statusCode: 200, body: 'ok' };
};
"""


def call_rec(d, tok, tenant, path):
    s, h, body = d.call("GET", path, tok)
    return s, h, record(d, tok, tenant, h["x-faas-invocation-id"])


def test_hot_instances_output_in_their_records(faasd):
    tok = faasd.tenant("rhlog")
    faasd.deploy("rhlog", tok, "py", {"app.py": LOGGING_PY}, runtime="python3",
                 handler="app.handler")
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/py/a")
    assert s == 200 and h["x-faas-cold"] == "1"
    # the cold start keeps its init output, then its own lines
    assert r["logs"]["stdout"] == "init says hello\nhandling /a\n", r["logs"]
    assert r["logs"]["stderr"] == "init warns\nerr /a\n", r["logs"]
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/py/b")
    assert s == 200 and h["x-faas-cold"] == "0"
    assert r["logs"] == {"stdout": "handling /b\n", "stderr": "err /b\n"}, "only its own"
    assert r["truncated"] == {"stdout": False, "stderr": False}
    # a line written while idle goes to the next invocation of the instance
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/py/later")
    assert r["logs"]["stdout"] == "handling /later\n"
    time.sleep(0.6)
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/py/c")
    assert r["logs"]["stdout"] == "late line\nhandling /c\n", r["logs"]
    # far more than the pipe holds, past the cap: kept up to the cap, the
    # rest read and dropped (the handler never blocks), the next call clean
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/py/flood")
    assert s == 200
    assert len(r["logs"]["stdout"]) == 65536 and r["truncated"]["stdout"] is True
    assert r["logs"]["stdout"].startswith("handling /flood\nyyy")
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/py/d")
    assert r["logs"]["stdout"] == "handling /d\n" and r["truncated"]["stdout"] is False
    # an uncaught exception: the runtime's report is in the record's stderr
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/py/boom")
    assert s == 502 and r["status"] == "error"
    assert r["logs"]["stderr"].startswith("err /boom\n[ERROR] ValueError: bad input\n")
    assert "Traceback" in r["logs"]["stderr"]
    # the lines API gives them by stream
    s, doc = api(faasd, tok, "rhlog/functions/py/logs?since=1h")
    assert s == 200
    mine = [(ln["stream"], ln["text"]) for ln in doc["lines"]
            if ln["invocation_id"] == h["x-faas-invocation-id"]]
    assert ("stdout", "handling /boom") in mine and ("stderr", "err /boom") in mine, mine

    faasd.deploy("rhlog", tok, "js", {"index.js": LOGGING_JS}, runtime="node",
                 handler="index.handler")
    s, h, r = call_rec(faasd, tok, "rhlog", "/fn/rhlog/js/x")
    assert s == 200
    assert r["logs"]["stdout"] == "node init\nnode handling /x\n", r["logs"]
    assert r["logs"]["stderr"] == "node err\n"


# An http handler's accept-and-read loop, up to the request's path; the
# tests below add what it does with each request.
SRV_LOOP = r"""#!/usr/bin/python3
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(os.environ["FAAS_LISTEN"])
s.listen(8)
while True:
    c, _ = s.accept()
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                break
            buf += d
        if b"\r\n\r\n" not in buf:
            break
        head, _, buf = buf.partition(b"\r\n\r\n")
        path = head.split(b" ")[1].decode()
"""

STREAM_SRV = SRV_LOOP + r"""        if path != "/quiet":
            sys.stderr.write("before head %s\n" % path)
            sys.stderr.flush()
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        time.sleep(0.3)
        sys.stderr.write("during stream %s\n" % path)
        sys.stderr.flush()
        c.sendall(b"4\r\nlast\r\n0\r\n\r\n")
"""


def test_streamed_answer_record_keeps_output_before_its_head(faasd):
    """A streamed answer's record is written with its head: it keeps what
    the handler wrote before the head; what it writes while streaming goes
    to the instance's next invocation."""
    tok = faasd.tenant("rstrm")
    faasd.deploy("rstrm", tok, "s", {"srv.py": (STREAM_SRV, 0o755)}, runtime="http",
                 handler="srv.py")
    s, h, body = faasd.call("GET", "/fn/rstrm/s/one", tok)
    assert s == 200 and body == b"firstlast"
    r1 = record(faasd, tok, "rstrm", h["x-faas-invocation-id"])
    s, h, body = faasd.call("GET", "/fn/rstrm/s/two", tok)
    r2 = record(faasd, tok, "rstrm", h["x-faas-invocation-id"])
    assert r1["logs"]["stderr"] == "before head /one\n", r1["logs"]
    assert r2["logs"]["stderr"] == "during stream /one\nbefore head /two\n", r2["logs"]
    # nothing before its head: still nothing of what came during it
    s, h, body = faasd.call("GET", "/fn/rstrm/s/quiet", tok)
    r3 = record(faasd, tok, "rstrm", h["x-faas-invocation-id"])
    s, h, body = faasd.call("GET", "/fn/rstrm/s/three", tok)
    r4 = record(faasd, tok, "rstrm", h["x-faas-invocation-id"])
    assert r3["logs"]["stderr"] == "during stream /two\n", r3["logs"]
    assert r4["logs"]["stderr"] == "during stream /quiet\nbefore head /three\n", r4["logs"]


SPLIT_SRV = SRV_LOOP + r"""        sys.stdout.write("start %s\n" % path)
        sys.stdout.flush()
        c.sendall(b"HTTP/1.1 200 OK\r\n")
        sys.stderr.write("between %s\n" % path)
        sys.stderr.flush()
        c.sendall(b"Content-Length: 2\r\n\r\nok")
"""


def test_hot_output_stays_with_its_invocation_under_load(faasd):
    """Many invocations at once over a few instances, each handler logging
    before its answer and between the two writes of its answer's head: every
    record holds its own lines and no other (the pipes are read once the
    whole answer is in, before the instance gets another invocation)."""
    import concurrent.futures
    tok = faasd.tenant("rsplit")
    faasd.deploy("rsplit", tok, "s", {"srv.py": (SPLIT_SRV, 0o755)}, runtime="http",
                 handler="srv.py", max_instances=3)

    def one(i):
        s, h, body = faasd.call("GET", "/fn/rsplit/s/p%d" % i, tok)
        assert s == 200 and body == b"ok", (s, body)
        return i, h["x-faas-invocation-id"]

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        done = list(ex.map(one, range(240)))
    wrong = []
    for i, inv in done:
        r = record(faasd, tok, "rsplit", inv)
        want = {"stdout": "start /p%d\n" % i, "stderr": "between /p%d\n" % i}
        if r["logs"] != want:
            wrong.append((i, r["logs"]))
    assert not wrong, wrong[:5]


def test_hot_init_failure_output_in_its_record(faasd):
    tok = faasd.tenant("rinit")
    faasd.deploy("rinit", tok, "bad",
                 {"app.py": "print('starting up')\nimport no_such_module\n"},
                 runtime="python3", handler="app.handler")
    s, h, r = call_rec(faasd, tok, "rinit", "/fn/rinit/bad")
    assert s == 502 and r["error"]["code"] == "function_init_failed", r
    assert r["logs"]["stdout"] == "starting up\n"
    assert "no_such_module" in r["logs"]["stderr"]
    assert "no_such_module" in r["error"]["message"], "the message quotes its output"


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


def test_faasctl_follow_reconnects_after_a_restart(fresh_faasd, tmp_path):
    import socket
    import subprocess
    from conftest import FAASCTL
    with socket.socket() as so:  # a port to come back on
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    d = fresh_faasd().start(("--listen", "127.0.0.1:%d" % port))
    tok = d.tenant("rre")
    d.deploy("rre", tok, "f", sh("echo \"hello $QUERY_STRING\" >&2\nprintf ok\n"))
    d.call("GET", "/fn/rre/f?one", tok)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "FAASCTL_URL": d.url, "FAASCTL_TOKEN": tok,
           "FAASCTL_CONFIG": str(tmp_path / "c.json")}
    p = subprocess.Popen([FAASCTL, "--json", "logs", "f", "--follow", "--since", "1h"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert json.loads(p.stdout.readline())["text"] == "hello one"
        assert d.stop() == 0
        d.start(("--listen", "127.0.0.1:%d" % port))
        d.call("GET", "/fn/rre/f?two", tok)
        line = json.loads(p.stdout.readline())
        assert line["text"] == "hello two", "after the cursor: nothing twice"
    finally:
        p.send_signal(2)
        assert p.wait(10) == 0
    assert "reconnecting" in p.stderr.read()
    r = subprocess.run([FAASCTL, "logs", "f", "--follow", "--since", "whenever"], env=env,
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "since" in r.stderr, "a refused stream is not retried"
    assert d.stop() == 0


def test_faasctl_follow_stops_on_a_stream_it_cannot_read(tmp_path):
    """A server whose stream lines are not JSON: faasctl says so and exits
    1 rather than reconnecting for ever."""
    import http.server
    import subprocess
    import threading
    from conftest import FAASCTL

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            self.wfile.write(b"this is not json\n")

        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
               "FAASCTL_URL": "http://127.0.0.1:%d" % srv.server_port, "FAASCTL_TOKEN": "x",
               "FAASCTL_CONFIG": str(tmp_path / "c.json")}
        r = subprocess.run([FAASCTL, "--tenant", "t", "logs", "f", "--follow"], env=env,
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "not JSON" in r.stderr, (r.returncode, r.stderr)
    finally:
        srv.shutdown()


class Stream:
    """GET …/logs?follow=1, read a JSON line at a time (blank keep-alives
    skipped)."""

    def __init__(self, d, tok, path, timeout=10):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
        self.conn.request("GET", "/v1/tenants/" + path,
                          headers={"Authorization": "Bearer " + tok})
        self.resp = self.conn.getresponse()

    def next(self):
        while True:
            line = self.resp.readline()
            if not line:
                return None  # the stream ended
            if line.strip():
                return json.loads(line)

    def close(self):
        self.conn.close()


def test_follow_stream_serves_new_lines_and_resumes(fresh_faasd):
    d = fresh_faasd().start()
    tok = d.tenant("rstr")
    other = d.tenant("rstr2")
    d.deploy("rstr", tok, "f", sh("echo \"hello $QUERY_STRING\" >&2\nprintf ok\n"))
    d.deploy("rstr2", other, "f", sh("echo \"other $QUERY_STRING\" >&2\nprintf ok\n"))
    s, h, _ = d.call("GET", "/fn/rstr/f?past", tok)
    record(d, tok, "rstr", h["x-faas-invocation-id"])
    st = Stream(d, tok, "rstr/functions/f/logs?follow=1&since=1h")
    assert st.resp.status == 200
    assert st.resp.getheader("Content-Type") == "application/x-ndjson"
    first = st.next()
    assert first["text"] == "hello past" and first["stream"] == "stderr"
    # lines that come later, in order; another tenant's same-named function
    # never shows up
    for i in range(3):
        d.call("GET", "/fn/rstr2/f?x%d" % i, other)
        s, h, _ = d.call("GET", "/fn/rstr/f?n%d" % i, tok)
        ln = st.next()
        assert ln["text"] == "hello n%d" % i, ln
        assert ln["invocation_id"] == h["x-faas-invocation-id"]
        last = ln["seq"]
    st.close()
    # resumed from its cursor: what came meanwhile, nothing twice
    d.call("GET", "/fn/rstr/f?gap", tok)
    st = Stream(d, tok, "rstr/functions/f/logs?follow=1&since=seq:%d" % last)
    assert st.next()["text"] == "hello gap"
    d.call("GET", "/fn/rstr/f?after", tok)
    assert st.next()["text"] == "hello after"
    # other tenants' tokens, bad values: refused as for the page answer
    s, doc = api(d, other, "rstr/functions/f/logs?follow=1")
    assert s == 403
    for q in ("follow=yes", "follow=1&since=seq:-1", "follow=1&limit=0"):
        s, doc = api(d, tok, "rstr/functions/f/logs?" + q)
        assert s == 400 and doc["error"]["code"] == "invalid_query", (q, doc)
    s, doc = api(d, tok, "rstr/functions/nope/logs?follow=1")
    assert s == 404
    # faasd stopping ends the stream at once (no drain wait for it)
    t0 = time.time()
    assert d.stop() == 0
    assert st.next() is None
    assert time.time() - t0 < 5
    st.close()


def test_follow_stream_slow_reader_loses_nothing(fresh_faasd):
    """A reader far behind (megabytes of lines) gets every line once, in
    order: the writer stops buffering for it and pages from SQLite."""
    d = fresh_faasd("log_level = debug\n").start()
    tok = d.tenant("rslow")
    # 64 KiB of stderr per call: 1024 lines of 63 characters and a newline
    d.deploy("rslow", tok, "f", sh(
        "awk -v q=\"$QUERY_STRING\" 'BEGIN { for (i = 0; i < 1024; i++) "
        "printf \"%s %057d\\n\", q, i }' >&2\nprintf ok\n"))
    st = Stream(d, tok, "rslow/functions/f/logs?follow=1", timeout=60)
    assert st.resp.status == 200
    ids = []
    for i in range(120):  # 7.5 MiB of lines, more than the sockets hold
        s, h, _ = d.call("GET", "/fn/rslow/f?c%03d" % i, tok)
        assert s == 200
        ids.append(h["x-faas-invocation-id"])
    got, seqs = {}, []
    while len(seqs) < 120 * 1024:
        ln = st.next()
        assert ln is not None, "stream ended after %d lines" % len(seqs)
        seqs.append(ln["seq"])
        got.setdefault(ln["invocation_id"], []).append(ln["text"])
    st.close()
    assert seqs == sorted(seqs), "in commit order"
    assert list(got) == ids, "every invocation, once, in order"
    for i, inv in enumerate(ids):
        assert got[inv] == ["c%03d %057d" % (i, n) for n in range(1024)], inv
    assert "fell behind" in d.log_text(), "the paging path was taken"
    assert d.stop() == 0


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
    s, doc = api(d, tok, "cap/functions/big/logs?follow=1")
    assert s == 409 and doc["error"]["code"] == "records_off", doc
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
        # ids are stored as the UUID's 16 bytes (schema 005)
        db.executemany("UPDATE invocations SET started_us = started_us - ? WHERE id = ?",
                       [(3 * 86400 * 10**6, uuid.UUID(i).bytes) for i in ids[:4]])
        assert db.total_changes == 4
    db.close()
    d.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        s, doc = api(d, tok, "ret/invocations")
        if len(doc["invocations"]) == 2:
            break
        time.sleep(0.1)
    assert sorted(r["id"] for r in doc["invocations"]) == sorted(ids[4:])
    # The listing hides expired records at once; the writer prunes them on
    # its own schedule, and says so in the log after the delete commits.
    want = "pruned 4 invocation records older than 2 days"
    deadline = time.time() + 10
    while want not in d.log_text() and time.time() < deadline:
        time.sleep(0.1)
    assert want in d.log_text()
    assert d.stop() == 0
    # deleted, not only hidden
    db = sqlite3.connect(os.path.join(d.state, "db", "faasd.db"))
    assert db.execute("SELECT count(*) FROM invocations").fetchone()[0] == 2
    db.close()


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
