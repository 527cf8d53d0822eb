"""Asynchronous invocations (SPEC §8): queued durably before the 202, run
like synchronous ones with records of trigger "async", retried with a
backoff, the dead letter listed and re-driven, results POSTed to
X-Callback-Url; driven over HTTP and faasctl against a real faasd."""
import http.server
import json
import os
import subprocess
import threading
import time

from conftest import FAASCTL, FAASD, sh

# An exec handler that answers with what it was given.
ECHO = sh("printf 'Content-Type: application/json\\n\\n'\n"
          "printf '{\"path\": \"%s\", \"query\": \"%s\", \"x_test\": \"%s\", \"auth\": \"%s\", "
          "\"trigger\": \"%s\", \"body\": \"%s\"}' \"$PATH_INFO\" \"$QUERY_STRING\" "
          "\"$HTTP_X_TEST\" \"$HTTP_AUTHORIZATION\" \"$HTTP_X_FAAS_TRIGGER\" \"$(cat)\"\n")


def wait_state(d, tok, tenant, aid, states, timeout=20):
    deadline = time.time() + timeout
    doc = None
    while time.time() < deadline:
        s, doc = d.json("GET", "/v1/tenants/%s/async/%s" % (tenant, aid), tok)
        assert s == 200, doc
        if doc["state"] in states:
            return doc
        time.sleep(0.05)
    raise AssertionError("async %s did not reach %s: %s" % (aid, states, doc))


def queue(d, tok, path, body=b"", headers=None):
    s, h, data = d.call("POST", path, tok, body=body, headers=headers)
    assert s == 202, data
    doc = json.loads(data)
    assert doc["state"] == "queued" and h["location"] == doc["location"]
    return doc["id"], h


class Catcher:
    """An HTTP server that keeps what is POSTed to it (the callbacks)."""

    def __init__(self):
        got = self.got = []
        ev = self.ev = threading.Event()

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                got.append(({k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(n), self.path))
                self.send_response(204)
                self.end_headers()
                ev.set()

            def log_message(self, *a):
                pass

        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/done" % self.srv.server_address[1]

    def wait(self, n=1, timeout=20):
        deadline = time.time() + timeout
        while len(self.got) < n and time.time() < deadline:
            time.sleep(0.05)
        assert len(self.got) >= n, "no callback came"
        return self.got[n - 1]

    def close(self):
        self.srv.shutdown()


def test_async_runs_like_a_call_and_calls_back(faasd):
    tok = faasd.tenant("asy")
    faasd.deploy("asy", tok, "echo", ECHO)
    cb = Catcher()
    try:
        aid, h = queue(faasd, tok, "/async/asy/echo/some/path?x=1&y=two", b"hello",
                       {"X-Test": "kept", "X-Callback-Url": cb.url})
        assert h["location"] == "/v1/tenants/asy/invocations/" + aid
        assert h["x-faas-async-id"] == aid
        hdrs, body, path = cb.wait()
    finally:
        cb.close()
    assert path == "/done"
    got = json.loads(body)
    # the request as it came, without the caller's token
    assert got == {"path": "/some/path", "query": "x=1&y=two", "x_test": "kept", "auth": "",
                   "trigger": "async", "body": "hello"}, got
    assert hdrs["x-faas-async-id"] == aid and hdrs["x-faas-async-result"] == "succeeded"
    assert hdrs["x-faas-status"] == "200" and hdrs["content-type"] == "application/json"
    doc = wait_state(faasd, tok, "asy", aid, ("succeeded",))
    assert doc["attempts"] == 1 and doc["last_http_status"] == 200
    assert doc["callback"]["http_status"] == 204 and doc["callback_url"] == cb.url
    assert hdrs["x-faas-invocation-id"] == doc["last_invocation_id"]
    # the Location: the async state and, once written, its attempt's record
    deadline = time.time() + 10
    while True:
        s, rec = faasd.json("GET", h["location"], tok)
        assert s == 200, rec
        if rec["last_attempt"] or time.time() > deadline:
            break
        time.sleep(0.05)
    assert rec["id"] == aid and rec["trigger"] == "async" and rec["async"]["state"] == "succeeded"
    last = rec["last_attempt"]
    assert last["id"] == doc["last_invocation_id"] and last["trigger"] == "async"
    assert last["status"] == "ok" and last["request_bytes"] == 5
    # and the record is an ordinary one: listed, with its trigger
    s, lst = faasd.json("GET", "/v1/tenants/asy/invocations?function=echo", tok)
    assert s == 200 and [r["trigger"] for r in lst["invocations"]] == ["async"]
    # a synchronous call stays "http", whatever it claims
    s, h2, _ = faasd.call("POST", "/fn/asy/echo", tok, body="x",
                          headers={"X-Faas-Trigger": "schedule"})
    assert s == 200
    deadline = time.time() + 10
    while True:
        s, r2 = faasd.json("GET", "/v1/tenants/asy/invocations/" + h2["x-faas-invocation-id"],
                           tok)
        if s == 200 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert s == 200 and r2["trigger"] == "http"
    # a callback nobody answers: the invocation still succeeded, the
    # callback's failure is kept and logged
    import socket
    sk = socket.socket()
    sk.bind(("127.0.0.1", 0))
    dead = "http://127.0.0.1:%d/gone" % sk.getsockname()[1]
    sk.close()
    aid, _ = queue(faasd, tok, "/async/asy/echo", b"x", {"X-Callback-Url": dead})
    deadline = time.time() + 20
    while True:
        doc = wait_state(faasd, tok, "asy", aid, ("succeeded",))
        if doc["callback"]["error"] or time.time() > deadline:
            break
        time.sleep(0.1)
    assert doc["callback"]["http_status"] is None and doc["callback"]["error"], doc
    assert "callback to its X-Callback-Url failed" in faasd.log_text()


def test_async_retries_dead_letter_and_redrive(fresh_faasd):
    d = fresh_faasd(config="async_retry_delay_s = 1\nasync_retries = 2\n").start()
    tok = d.tenant("dl")
    d.deploy("dl", tok, "flaky", sh("echo 'not today' >&2\nexit 3\n"))
    t0 = time.time()
    aid, _ = queue(d, tok, "/async/dl/flaky", b"x")
    doc = wait_state(d, tok, "dl", aid, ("failed",), timeout=30)
    took = time.time() - t0
    # the first attempt, a retry a second later, another two seconds later
    assert doc["attempts"] == 3 and doc["max_retries"] == 2, doc
    assert took >= 3.0, took
    assert doc["last_http_status"] == 502 and "from the function" in doc["last_error"]
    assert "retry queued" in d.log_text() and "no retry left" in d.log_text()
    s, lst = d.json("GET", "/v1/tenants/dl/async?state=failed", tok)
    assert s == 200 and [a["id"] for a in lst["async_invocations"]] == [aid]
    s, lst = d.json("GET", "/v1/tenants/dl/async?state=succeeded", tok)
    assert s == 200 and lst["async_invocations"] == []
    s, _, metrics = d.call("GET", "/metrics", d.admin)
    assert s == 200 and b'faasd_async_invocations{state="failed"} 1\n' in metrics
    assert b'faasd_async_invocations{state="queued"} 0\n' in metrics
    # every attempt left its record
    deadline = time.time() + 10
    while True:
        s, recs = d.json("GET", "/v1/tenants/dl/invocations?function=flaky", tok)
        if len(recs["invocations"]) == 3 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert [(r["trigger"], r["status"]) for r in recs["invocations"]] == [("async", "error")] * 3
    # fixed, then re-driven: it runs again and succeeds
    d.deploy("dl", tok, "flaky", sh("echo fine\n"))
    s, doc = d.json("POST", "/v1/tenants/dl/async/%s/redrive" % aid, tok)
    assert s == 200 and doc["state"] in ("queued", "running", "succeeded"), doc
    doc = wait_state(d, tok, "dl", aid, ("succeeded",))
    assert doc["attempts"] == 1 and doc["last_http_status"] == 200
    # only the dead letter is re-driven
    s, doc = d.json("POST", "/v1/tenants/dl/async/%s/redrive" % aid, tok)
    assert s == 409 and doc["error"]["code"] == "not_failed" and aid in doc["error"]["message"]
    assert d.stop() == 0


def test_async_survives_kill9(fresh_faasd, tmp_path):
    d = fresh_faasd()
    d.start()
    tok = d.tenant("dur")
    d.deploy("dur", tok, "slow", sh("sleep 2\necho done\n"), timeout_s=10)
    aid, _ = queue(d, tok, "/async/dur/slow")
    wait_state(d, tok, "dur", aid, ("running",))
    d.proc.kill()  # kill -9 while its attempt runs
    d.proc.wait()
    d.start()
    doc = wait_state(d, tok, "dur", aid, ("succeeded",), timeout=30)
    assert doc["attempts"] == 2 and doc["last_http_status"] == 200
    assert "1 async invocations were cut off by the last stop: queued again" in d.log_text()
    # queued and not yet run when the daemon stops: run after the start
    d.deploy("dur", tok, "later", sh("echo later\n"))
    with open(d.config_path, "a") as f:
        f.write("\nasync_runners = 1\n")
    assert d.stop() == 0
    d.start()
    first, _ = queue(d, tok, "/async/dur/slow")
    second, _ = queue(d, tok, "/async/dur/later")
    assert d.stop() == 0  # drains the running one; the queued one stays
    d.start()
    for aid in (first, second):
        assert wait_state(d, tok, "dur", aid, ("succeeded",), timeout=30)["attempts"] == 1
    assert d.stop() == 0


def test_async_bad_input(faasd):
    tok = faasd.tenant("asybad")
    other = faasd.tenant("asyother")
    faasd.deploy("asybad", tok, "f", sh("echo ok\n"))
    s, doc = faasd.json("GET", "/async/asybad/f", tok)
    assert s == 405 and doc["error"]["allowed"] == "POST"
    s, doc = faasd.json("POST", "/async/asybad/nope", tok)
    assert s == 404 and doc["error"]["code"] == "function_not_found"
    s, doc = faasd.json("POST", "/async/asybad/f")
    assert s == 401
    s, doc = faasd.json("POST", "/async/asybad/f", other)
    assert s == 403
    for url, why in (("ftp://x/y", "http:// or https://"), ("http://", "no host"),
                     ("http://a b/", "without spaces")):
        s, doc = faasd.json("POST", "/async/asybad/f", tok, headers={"X-Callback-Url": url})
        assert s == 400 and doc["error"]["code"] == "invalid_callback_url", doc
        assert why in doc["error"]["message"], doc
    s, doc = faasd.json("POST", "/async/asybad/f", tok, body=b"x" * ((1 << 20) + 1))
    assert s == 413 and doc["error"]["code"] == "payload_too_large"
    s, doc = faasd.json("POST", "/async/Bad_Tenant/f", tok)
    assert s == 400
    s, doc = faasd.json("GET", "/v1/tenants/asybad/async?state=lost", tok)
    assert s == 400 and doc["error"]["code"] == "invalid_query" and "state" in doc["error"]["message"]
    s, doc = faasd.json("GET", "/v1/tenants/asybad/async?colour=red", tok)
    assert s == 400 and "colour" in doc["error"]["message"]
    s, doc = faasd.json("GET", "/v1/tenants/asybad/async?limit=0", tok)
    assert s == 400 and "limit" in doc["error"]["message"]
    s, doc = faasd.json("GET", "/v1/tenants/asybad/async/not-an-id", tok)
    assert s == 400 and "not-an-id" in doc["error"]["message"]
    s, doc = faasd.json("GET", "/v1/tenants/asybad/async/%s/redrive" % ("0" * 8 + "-0000-7000-8000-" + "0" * 12), tok)
    assert s == 405
    # nothing was queued by any of it
    s, lst = faasd.json("GET", "/v1/tenants/asybad/async", tok)
    assert s == 200 and lst["async_invocations"] == []
    # tenants see only their own
    aid, _ = queue(faasd, tok, "/async/asybad/f")
    for path in ("/v1/tenants/asyother/async/" + aid, "/v1/tenants/asyother/invocations/" + aid):
        s, doc = faasd.json("GET", path, other)
        assert s == 404, doc
    s, doc = faasd.json("POST", "/v1/tenants/asyother/async/%s/redrive" % aid, other)
    assert s == 404
    s, doc = faasd.json("GET", "/v1/tenants/asybad/async/" + aid, other)
    assert s == 403
    # a made-up runner token opens nothing
    fake = "fsi_" + "0" * 64
    for method, path in (("GET", "/fn/asybad/f"), ("GET", "/v1/whoami"),
                         ("GET", "/v1/tenants/asybad/async")):
        s, doc = faasd.json(method, path, fake)
        assert s == 401, (path, doc)


def test_faasctl_invoke_async(faasd, faasctl):
    tok = faasd.tenant("asyctl")
    faasd.deploy("asyctl", tok, "hi", sh("echo \"hi $(cat)\"\n"))
    env = {"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": tok}
    rc, out, err = faasctl("invoke", "hi", "--async", "--data", "there", env=env)
    assert rc == 0, err
    aid = out.strip()
    assert len(aid) == 36
    wait_state(faasd, tok, "asyctl", aid, ("succeeded",))
    deadline = time.time() + 10
    while True:
        rc, out, err = faasctl("invocations", "show", aid, env=env)
        if "Newest attempt" in out or time.time() > deadline:
            break
        time.sleep(0.1)
    assert rc == 0 and "Async invocation " + aid in out and "succeeded after 1 of 3" in out, out
    assert "(async)" in out and "status     ok (HTTP 200)" in out, out
    rc, out, err = faasctl("invoke", "hi", "--async", "--json", env=env)
    assert rc == 0 and json.loads(out)["state"] == "queued"
    rc, out, err = faasctl("invoke", "hi", "--async", "--method", "GET", env=env)
    assert rc == 2 and "POST" in err
    rc, out, err = faasctl("invoke", "nope", "--async", env=env)
    assert rc == 1 and "no function 'nope'" in out + err, (out, err)


def test_async_settings_refused_out_of_range(fresh_faasd, tmp_path):
    for line, key, rng in (("async_retries = 11", "async_retries", "between 0 and 10"),
                           ("async_retry_delay_s = 0", "async_retry_delay_s", "between 1 and 86400"),
                           ("async_runners = 65", "async_runners", "between 1 and 64"),
                           ("max_async_body_bytes = 12", "max_async_body_bytes", "between 1024")):
        bad = fresh_faasd(config=line + "\n")
        p = subprocess.run([FAASD, "--config", bad.config_path,
                            "--state-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2 and key in p.stderr and rng in p.stderr, p.stderr


def test_async_stop_while_runners_start(fresh_faasd):
    """SIGTERM right after queueing: attempts the gateway had begun finish
    in the drain, the others are given up uncounted (a connection made
    after the loops stopped accepting would wait in the backlog until the
    drain timeout), and run once after the next start."""
    d = fresh_faasd(config="drain_timeout_s = 20\n")
    d.start()
    tok = d.tenant("stp")
    d.deploy("stp", tok, "nap", sh("sleep 0.3\necho rested\n"))
    ids = []
    for _ in range(4):
        ids += [queue(d, tok, "/async/stp/nap")[0] for _ in range(4)]
        t0 = time.time()
        assert d.stop() == 0
        assert time.time() - t0 < 8, "the drain waited for a request nobody would serve"
        assert "drain timeout" not in d.log_text()
        d.start()
    for aid in ids:
        doc = wait_state(d, tok, "stp", aid, ("succeeded",), timeout=30)
        assert doc["attempts"] == 1, doc
    assert d.stop() == 0


def test_schedule_fires_once_per_slot(fresh_faasd):
    """A cron schedule fires at its minute as an async invocation with
    trigger "schedule" and a scheduled event as body; not at deploy, and a
    restart within the minute does not fire the slot again."""
    d = fresh_faasd()
    d.start()
    tok = d.tenant("cron")
    # deploy early in a minute, so that the first slot comes within the test
    while time.time() % 60 > 50:
        time.sleep(0.5)
    d.deploy("cron", tok, "tick", sh("cat >&2\necho ticked\n"), schedule="* * * * *")
    time.sleep(1.5)
    s, lst = d.json("GET", "/v1/tenants/cron/async", tok)
    assert s == 200 and lst["async_invocations"] == [], "fired at deploy"
    deadline = time.time() + 75
    while time.time() < deadline:
        s, lst = d.json("GET", "/v1/tenants/cron/async?state=succeeded", tok)
        if lst["async_invocations"]:
            break
        time.sleep(0.2)
    assert len(lst["async_invocations"]) == 1, lst
    a = lst["async_invocations"][0]
    assert a["trigger"] == "schedule" and a["function"] == "tick" and a["attempts"] == 1
    fired = time.time()
    assert fired % 60 < 20, "fired at second %.1f of the minute" % (fired % 60)
    assert "schedule of cron/tick fired for" in d.log_text()
    # its record, with the event the handler got
    deadline = time.time() + 10
    while True:
        s, rec = d.json("GET", "/v1/tenants/cron/invocations/" + a["id"], tok)
        if rec.get("last_attempt") or time.time() > deadline:
            break
        time.sleep(0.1)
    last = rec["last_attempt"]
    assert last["trigger"] == "schedule" and last["status"] == "ok"
    ev = json.loads(last["logs"]["stderr"])
    assert ev["detail-type"] == "Scheduled Event" and ev["schedule"] == "* * * * *"
    assert ev["time"].endswith(":00Z") and ev["function"] == "tick"
    # a restart within the same minute: the slot is not fired again
    assert d.stop() == 0
    d.start()
    time.sleep(2)
    if time.time() % 60 > 2 and time.time() - fired < 55:
        s, lst = d.json("GET", "/v1/tenants/cron/async", tok)
        assert len(lst["async_invocations"]) == 1, lst
    assert d.stop() == 0


def test_store_under_concurrent_api_and_async_load(fresh_faasd):
    """Many clients reading the API while async calls are queued, run and
    settled: every answer is a success. The store's statements were once
    finalized after its lock was released, which under this load made
    about a third of the answers 5xx (SQLITE_BUSY, garbled rows)."""
    d = fresh_faasd()
    d.start()
    tok = d.tenant("load")
    d.deploy("load", tok, "f", sh("echo ok\n"))
    stop = time.time() + 5
    bad, count = [], [0]

    def reader(path):
        while time.time() < stop:
            s, _, body = d.call("GET", path, tok)
            count[0] += 1
            if s != 200:
                bad.append((path, s, body[:200]))

    def poster():
        while time.time() < stop:
            s, _, body = d.call("POST", "/async/load/f", tok, body=b"x")
            count[0] += 1
            if s != 202:
                bad.append(("POST /async", s, body[:200]))

    paths = ["/v1/tenants/load", "/v1/tenants/load/functions",
             "/v1/tenants/load/async?limit=5", "/v1/tenants/load/invocations?limit=5"]
    threads = [threading.Thread(target=reader, args=(p,)) for p in paths * 2]
    threads += [threading.Thread(target=poster) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count[0] > 500 and bad == [], (count[0], bad[:5])
    assert "(store:" not in d.log_text() and "cannot settle" not in d.log_text()
    assert d.stop() == 0


def test_faasctl_async_dead_letter(fresh_faasd, tmp_path):
    """faasctl async lists the dead letter and re-drives from it; bad
    flags exit 2 naming the problem, a redrive the server refuses exits 1."""
    d = fresh_faasd(config="async_retries = 0\n").start()
    tok = d.tenant("dlctl")
    d.deploy("dlctl", tok, "bad", sh("exit 3\n"))
    aid, _ = queue(d, tok, "/async/dlctl/bad", b"x")
    wait_state(d, tok, "dlctl", aid, ("failed",))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "FAASCTL_URL": d.url, "FAASCTL_TOKEN": tok}

    def ctl(*args):
        p = subprocess.run([FAASCTL, *args], capture_output=True, text=True, env=env,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = ctl("async", "--state", "failed")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "FUNCTION", "STATE"], out
    assert len(lines) == 2 and lines[1].split()[:5] == [aid, "bad", "failed", "async", "1/1"], out
    rc, out, err = ctl("--json", "async", "--state", "succeeded", "--limit", "5")
    assert rc == 0 and json.loads(out) == {"async_invocations": []}, out
    d.deploy("dlctl", tok, "bad", sh("echo fixed\n"))
    rc, out, err = ctl("async", "redrive", aid)
    assert rc == 0 and aid in out and "queued again" in out, (out, err)
    wait_state(d, tok, "dlctl", aid, ("succeeded",))
    rc, out, err = ctl("async")
    assert rc == 0 and "succeeded" in out.splitlines()[1], out
    # bad input, and a refusal from the server
    rc, out, err = ctl("async", "redrive", aid)
    assert rc == 1 and "has not failed" in out + err, (out, err)
    rc, out, err = ctl("async", "redrive")
    assert rc == 2 and "needs one async invocation ID" in err
    rc, out, err = ctl("async", "--state", "lost")
    assert rc == 2 and "'lost' is not one of queued" in err
    rc, out, err = ctl("async", "--limit", "0")
    assert rc == 2 and "--limit needs a number from 1 to 1000" in err
    rc, out, err = ctl("async", "--colour", "red")
    assert rc == 2 and "unknown argument '--colour'" in err
    rc, out, err = ctl("async", "redrive", "not-an-id")
    assert rc == 1 and "not-an-id" in out + err, (out, err)
    assert d.stop() == 0
