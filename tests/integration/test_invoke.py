"""Invocations of exec handlers: the CGI contract of SPEC §2, failures,
limits, identity, and that slow handlers never hold anyone else up."""
import concurrent.futures
import json
import os
import time

from conftest import make_tgz, sh


def test_cgi_contract(faasd):
    tok = faasd.tenant("cgi")
    faasd.deploy("cgi", tok, "env", sh(
        'echo "Status: 201 Created"\n'
        'echo "Content-Type: application/json"\n'
        'echo "X-Custom: yes"\n'
        'echo\n'
        'body=$(cat)\n'
        'printf \'{"method":"%s","path":"%s","query":"%s","ctype":"%s","len":"%s",'
        '"hdr":"%s","auth":"%s","body":"%s","fn":"%s","ver":"%s","id":"%s","greet":"%s",'
        '"proxy":"%s"}\' '
        '"$REQUEST_METHOD" "$PATH_INFO" "$QUERY_STRING" "$CONTENT_TYPE" "$CONTENT_LENGTH" '
        '"$HTTP_X_TEST_HEADER" "$HTTP_AUTHORIZATION" "$body" "$FAAS_FUNCTION_NAME" '
        '"$FAAS_FUNCTION_VERSION" "$FAAS_INVOCATION_ID" "$GREETING" "$HTTP_PROXY"\n'),
        env={"GREETING": "hello"})
    s, h, body = faasd.call("PUT", "/fn/cgi/env/some/path?a=1&b=%20x", tok, "payload",
                            {"Content-Type": "text/x-test", "X-Test-Header": "v1",
                             "Proxy": "http://evil"})
    assert s == 201, body
    assert h["content-type"] == "application/json" and h["x-custom"] == "yes"
    doc = json.loads(body)
    assert doc["method"] == "PUT" and doc["path"] == "/some/path"
    assert doc["query"] == "a=1&b=%20x" and doc["ctype"] == "text/x-test"
    assert doc["len"] == "7" and doc["body"] == "payload" and doc["hdr"] == "v1"
    assert doc["auth"] == "", "the faasd token must not reach function code"
    assert doc["proxy"] == "", "httpoxy: Proxy header must not become HTTP_PROXY"
    assert doc["fn"] == "env" and doc["ver"] == "1" and doc["greet"] == "hello"
    assert doc["id"] == h["x-faas-invocation-id"]
    assert h["x-faas-version"] == "1" and h["x-faas-cold"] == "1"
    assert float(h["x-faas-duration-ms"]) > 0
    s, h, body = faasd.call("GET", "/fn/cgi/env", tok)
    assert json.loads(body)["path"] == "/"
    assert "REPORT id=" in faasd.log_text() and "fn=cgi/env v=1" in faasd.log_text()


def test_plain_output_and_binary_body(faasd):
    tok = faasd.tenant("plain")
    faasd.deploy("plain", tok, "cat", sh("exec cat\n"))
    payload = bytes(range(256)) * 4096
    s, h, body = faasd.call("POST", "/fn/plain/cat", tok, payload)
    assert s == 200 and body == payload
    assert h["content-type"].startswith("text/plain")


def test_failures(faasd):
    tok = faasd.tenant("fail")
    faasd.deploy("fail", tok, "crash", sh("echo oops >&2\nexit 3\n"))
    s, h, body = faasd.call("GET", "/fn/fail/crash", tok)
    doc = json.loads(body)
    assert s == 502 and doc["error"]["code"] == "function_error"
    assert "status 3" in doc["error"]["message"] and "x-faas-invocation-id" in h
    faasd.deploy("fail", tok, "partial", sh('echo "Status: 400"\necho\necho bad input\nexit 1\n'))
    s, h, body = faasd.call("GET", "/fn/fail/partial", tok)
    assert s == 400 and body == b"bad input\n"
    faasd.deploy("fail", tok, "slow", sh("sleep 10\necho late\n"), timeout_s=1)
    t0 = time.time()
    s, h, body = faasd.call("GET", "/fn/fail/slow", tok)
    assert s == 504 and json.loads(body)["error"]["code"] == "function_timeout"
    assert time.time() - t0 < 5
    faasd.deploy("fail", tok, "badhdr", sh('echo "Status: xyz"\necho\n'))
    s, h, body = faasd.call("GET", "/fn/fail/badhdr", tok)
    assert s == 502 and "Status" in json.loads(body)["error"]["message"]
    faasd.deploy("fail", tok, "noexec", {"handler.sh": ("#!/bin/sh\necho hi\n", 0o644)})
    s, h, body = faasd.call("GET", "/fn/fail/noexec", tok)
    assert s == 502
    faasd.deploy("fail", tok, "missing", sh("true\n"), handler="nope.sh")
    s, h, body = faasd.call("GET", "/fn/fail/missing", tok)
    assert s == 502
    faasd.deploy("fail", tok, "killed", sh("kill -SEGV $$\n"))
    s, h, body = faasd.call("GET", "/fn/fail/killed", tok)
    assert s == 502 and "signal" in json.loads(body)["error"]["message"]


def test_body_limit(faasd):
    tok = faasd.tenant("limits")
    faasd.deploy("limits", tok, "wc", sh("wc -c\n"))
    s, h, body = faasd.call("POST", "/fn/limits/wc", tok, b"x" * (6 << 20))
    assert s == 200 and body.strip() == str(6 << 20).encode()
    s, h, body = faasd.call("POST", "/fn/limits/wc", tok, b"x" * ((6 << 20) + 1))
    assert s == 413 and json.loads(body)["error"]["code"] == "payload_too_large"


def test_header_limit(faasd):
    # A request head is read into a 16 KiB per-connection pool: 10 KiB of
    # headers (API Gateway's own limit) pass, and a head too big for the
    # pool gets 431, not a hang or a reset.
    tok = faasd.tenant("hdrs")
    faasd.deploy("hdrs", tok, "echo", sh('printf "%s" "$HTTP_X_BIG" | wc -c\n'))
    for n in (100, 10240):
        s, h, body = faasd.call("GET", "/fn/hdrs/echo", tok, headers={"X-Big": "a" * n})
        assert s == 200 and body.strip() == str(n).encode(), (n, s, body[:200])
    s, h, body = faasd.call("GET", "/fn/hdrs/echo", tok, headers={"X-Big": "a" * 20000})
    assert s == 431, (s, body[:200])
    assert faasd.call("GET", "/fn/hdrs/echo", tok)[0] == 200


def host_processes_of(uid):
    """pids of host processes whose real uid is uid."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                for line in f:
                    if line.startswith("Uid:") and int(line.split()[1]) == uid:
                        found.append(int(pid))
        except OSError:
            pass
    return found


def test_output_caps(faasd):
    tok = faasd.tenant("caps")
    faasd.deploy("caps", tok, "big", sh("head -c 7340032 /dev/zero\n"))
    s, h, body = faasd.call("GET", "/fn/caps/big", tok)
    assert s == 502 and b"more than 6291456 bytes of output" in body
    faasd.deploy("caps", tok, "exact", sh("head -c 6291455 /dev/zero\n"))
    s, h, body = faasd.call("GET", "/fn/caps/exact", tok)
    assert s == 200 and len(body) == 6291455
    # Noisy stderr is capped for the logs but does not fail the call.
    faasd.deploy("caps", tok, "noisy", sh("head -c 1000000 /dev/zero >&2; echo fine\n"))
    s, h, body = faasd.call("GET", "/fn/caps/noisy", tok)
    assert s == 200 and body == b"fine\n"
    # Files in /tmp are not capped by the output limit.
    faasd.deploy("caps", tok, "tmpfile", sh(
        "head -c 20000000 /dev/zero > /tmp/f && wc -c < /tmp/f\n"), memory_mb=128)
    s, h, body = faasd.call("GET", "/fn/caps/tmpfile", tok)
    assert s == 200 and body.strip() == b"20000000"


def test_identity_and_cleanup(faasd):
    a = faasd.tenant("who-a")
    b = faasd.tenant("who-b")
    script = sh("cat /proc/self/uid_map; id -u; id -G\n"
                "(sleep 30; echo leaked) >/dev/null 2>&1 &\n")
    faasd.deploy("who-a", a, "id", script)
    faasd.deploy("who-b", b, "id", script)
    out_a = faasd.call("GET", "/fn/who-a/id", a)[2].decode().split()
    out_b = faasd.call("GET", "/fn/who-b/id", b)[2].decode().split()
    # uid_map: "<inside> <host> <count>", then id -u, id -G.
    assert out_a[0] == "1000" and out_a[2] == "1" and out_a[3] == "1000" and out_a[4] == "1000"
    host_a, host_b = int(out_a[1]), int(out_b[1])
    assert host_a != 0 and host_b != 0 and host_a != host_b, \
        "two tenants never share a host uid"
    assert host_a == faasd.json("GET", "/v1/tenants/who-a", faasd.admin)[1]["tenant"]["uid"]
    # The background child died with the invocation: nothing runs as the
    # tenant's host uid any more.
    time.sleep(0.3)
    assert host_processes_of(host_a) == [] and host_processes_of(host_b) == []


def test_public_and_private(faasd):
    tok = faasd.tenant("pub")
    other = faasd.tenant("pub-other")
    faasd.deploy("pub", tok, "open", sh("echo open\n"), public=True)
    faasd.deploy("pub", tok, "closed", sh("echo closed\n"))
    assert faasd.call("GET", "/fn/pub/open")[2] == b"open\n"
    s, _, body = faasd.call("GET", "/fn/pub/closed")
    assert s == 401
    assert faasd.call("GET", "/fn/pub/closed", other)[0] == 403
    # Strangers cannot tell a private function from a missing one.
    assert faasd.call("GET", "/fn/pub/does-not-exist")[0] == 401
    assert faasd.call("GET", "/fn/pub/does-not-exist", tok)[0] == 404
    assert faasd.call("GET", "/fn/pub/closed", faasd.admin)[2] == b"closed\n"
    # The Authorization header of a public function belongs to the app.
    faasd.deploy("pub", tok, "hdr", sh('echo "$HTTP_AUTHORIZATION"\n'), public=True)
    assert faasd.call("GET", "/fn/pub/hdr", headers={"Authorization": "App xyz"})[2] == b"App xyz\n"


def test_slow_handlers_do_not_block(faasd):
    tok = faasd.tenant("busy")
    faasd.deploy("busy", tok, "slow", sh("sleep 5\necho done\n"), max_instances=100)
    faasd.deploy("busy", tok, "fast", sh("echo fast\n"))
    faasd.call("GET", "/fn/busy/fast", tok)  # warm the page cache
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=50)
    futs = [pool.submit(faasd.call, "GET", "/fn/busy/slow", tok) for _ in range(50)]
    time.sleep(1.0)  # all 50 are in flight now
    assert not any(f.done() for f in futs)
    health, fast = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        assert faasd.call("GET", "/healthz")[0] == 200
        health.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        s, _, body = faasd.call("GET", "/fn/busy/fast", tok)
        fast.append(time.perf_counter() - t0)
        assert s == 200 and body == b"fast\n"
    results = [f.result() for f in futs]
    assert all(r[0] == 200 and r[2] == b"done\n" for r in results)
    # Blocked behind the 50 slow ones, a call would take 5 s; the bounds
    # leave room for a noisy host (an ASan run once took 53 ms for one
    # fast call while the machine's neighbours stole 30% of its CPU).
    assert max(health) < 0.05, health
    assert sorted(fast)[2] < 0.05 and max(fast) < 0.25, fast


def test_many_cold_invocations_keep_workers_up(faasd):
    """Hundreds of back-to-back cold invocations from several clients: every
    one answered in full, and no worker dies on the way (the answer leaves
    before the sandbox is torn down, so both events of an instance can land
    in one batch)."""
    tok = faasd.tenant("burst")
    faasd.deploy("burst", tok, "f", sh("echo \"n=$QUERY_STRING\"\n"))
    before = faasd.log_text()

    def one(i):
        return faasd.call("GET", "/fn/burst/f?%d" % i, tok)

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        results = list(ex.map(one, range(300)))
    for i, (status, _, body) in enumerate(results):
        assert status == 200 and body == b"n=%d\n" % i, (i, status, body)
    after = faasd.log_text()[len(before):]
    assert "was killed by signal" not in after and "exited with" not in after, after
