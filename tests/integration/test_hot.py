"""Hot instances (SPEC §2, issue 4): runtimes http, python3 and node, reuse,
caps, queueing and throttling, idle timeout, replacement after failures."""
import concurrent.futures
import http.client
import json
import socket
import time

from conftest import HOT_OK, make_tgz

# An http handler: a threaded HTTP/1.1 server on $FAAS_LISTEN.  Every answer
# says which instance (a random id drawn at start) served it, how many
# requests that instance served, and the most it ever served at once.
SRV = r'''#!/usr/bin/python3
import json, os, socket, sys, threading, time, uuid
INST = uuid.uuid4().hex
lock = threading.Lock()
state = {"n": 0, "now": 0, "peak": 0}
mode = os.environ.get("MODE", "")
if mode == "exit":
    sys.stderr.write("cannot start: missing config\n")
    sys.exit(4)
if mode == "never":
    sys.stderr.write("thinking...\n")
    time.sleep(3600)

def answer(c, status, body, extra=""):
    c.sendall(("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
               % (status, extra, len(body))).encode() + body)

def serve(c):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get("content-length", "0"))
        while len(buf) < n:
            d = c.recv(1 << 20)
            if not d:
                return
            buf += d
        body, buf = buf[:n], buf[n:]
        with lock:
            state["n"] += 1
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            path = target.split("?")[0]
            if path == "/crash":
                os._exit(3)
            if path == "/sleep":
                time.sleep(float(target.split("s=")[1]))
            if path == "/oom":
                hog = []
                while True:
                    hog.append(bytearray(8 << 20))
            if path == "/echo":
                answer(c, 200, body)
                continue
            if path == "/big":
                answer(c, 200, b"x" * int(target.split("n=")[1]))
                continue
            if path in ("/stream", "/streamcrash"):
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nfirst\r\n")
                time.sleep(1)
                if path == "/streamcrash":
                    os._exit(3)
                c.sendall(b"4\r\nlast\r\n0\r\n\r\n")
                continue
            if path == "/chunked":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
                continue
            out = {"inst": INST, "n": state["n"], "peak": state["peak"], "method": method,
                   "target": target, "headers": hdrs, "len": len(body)}
            answer(c, 200, json.dumps(out).encode(), "X-Handler: yes\r\n")
        finally:
            with lock:
                state["now"] -= 1

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(os.environ["FAAS_LISTEN"])
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


def deploy_srv(d, tenant, tok, fn, **config):
    return d.deploy(tenant, tok, fn, {"srv.py": (SRV, 0o755)}, runtime="http",
                    handler="srv.py", **config)


def get(d, tenant, fn, tok, path="", **kw):
    s, h, body = d.call(kw.pop("method", "GET"), "/fn/%s/%s%s" % (tenant, fn, path), tok, **kw)
    return s, h, body


def test_http_reuse_and_forwarding(faasd):
    tok = faasd.tenant("hot1")
    deploy_srv(faasd, "hot1", tok, "srv")
    seen = []
    for i in range(5):
        s, h, body = get(faasd, "hot1", "srv", tok, "/a/b%20c?x=1&y=%2F",
                         method="POST", body="abc", headers={"X-Test": "v%d" % i})
        assert s == 200, body
        doc = json.loads(body)
        seen.append(doc)
        assert h["x-faas-cold"] == ("1" if i == 0 else "0"), (i, h)
        assert h["x-handler"] == "yes" and h["x-faas-version"] == "1"
        assert doc["method"] == "POST" and doc["target"] == "/a/b%20c?x=1&y=%2F"
        assert doc["headers"]["x-test"] == "v%d" % i and doc["len"] == 3
        assert "authorization" not in doc["headers"], "the faasd token must not reach the handler"
        assert doc["headers"]["x-faas-invocation-id"] == h["x-faas-invocation-id"]
        assert int(doc["headers"]["x-faas-deadline-ms"]) > time.time() * 1000
    assert len({d["inst"] for d in seen}) == 1, "a hot instance must be reused"
    assert [d["n"] for d in seen] == [1, 2, 3, 4, 5]
    s, h, body = get(faasd, "hot1", "srv", tok)
    assert json.loads(body)["target"] == "/"
    s, h, body = get(faasd, "hot1", "srv", tok, "/chunked")
    assert s == 200 and body == b"hello world"
    s, h, body = get(faasd, "hot1", "srv", tok, method="HEAD")
    assert s == 200 and body == b""


def test_big_bodies_both_ways(faasd):
    tok = faasd.tenant("hotbig")
    deploy_srv(faasd, "hotbig", tok, "srv")
    payload = bytes(range(256)) * (5 * 4096)  # 5 MiB
    s, h, body = get(faasd, "hotbig", "srv", tok, "/echo", method="POST", body=payload)
    assert s == 200 and body == payload
    s, h, body = get(faasd, "hotbig", "srv", tok, "/big?n=%d" % (5 << 20))
    assert s == 200 and len(body) == 5 << 20
    s, h, body = get(faasd, "hotbig", "srv", tok, "/big?n=%d" % (7 << 20))
    assert s == 502 and json.loads(body)["error"]["code"] == "function_error"
    assert "larger than" in json.loads(body)["error"]["message"]


def test_replaced_after_crash_timeout_oom(faasd):
    tok = faasd.tenant("hotfail")
    deploy_srv(faasd, "hotfail", tok, "srv", timeout_s=1, memory_mb=64)
    first = json.loads(get(faasd, "hotfail", "srv", tok)[2])["inst"]
    s, h, body = get(faasd, "hotfail", "srv", tok, "/crash")
    assert s == 502 and json.loads(body)["error"]["code"] == "function_error", body
    assert "exited with status 3" in json.loads(body)["error"]["message"]
    s, h, body = get(faasd, "hotfail", "srv", tok)
    second = json.loads(body)["inst"]
    assert s == 200 and second != first and h["x-faas-cold"] == "1"

    t0 = time.time()
    s, h, body = get(faasd, "hotfail", "srv", tok, "/sleep?s=5")
    assert s == 504 and json.loads(body)["error"]["code"] == "function_timeout"
    assert time.time() - t0 < 3
    s, h, body = get(faasd, "hotfail", "srv", tok)
    third = json.loads(body)["inst"]
    assert s == 200 and third not in (first, second), "a timed-out instance must not be reused"

    s, h, body = get(faasd, "hotfail", "srv", tok, "/oom")
    assert s == 502 and json.loads(body)["error"]["code"] == "function_out_of_memory", body
    s, h, body = get(faasd, "hotfail", "srv", tok)
    assert s == 200 and json.loads(body)["inst"] not in (first, second, third)


def test_init_failures(fresh_faasd):
    d = fresh_faasd("init_timeout_ms = 700\n").start()
    tok = d.tenant("hotinit")
    deploy_srv(d, "hotinit", tok, "exits", env={"MODE": "exit"})
    s, h, body = get(d, "hotinit", "exits", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_init_failed", body
    assert "status 4" in err["message"] and "cannot start: missing config" in err["message"]
    deploy_srv(d, "hotinit", tok, "never", env={"MODE": "never"})
    t0 = time.time()
    s, h, body = get(d, "hotinit", "never", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_init_failed", body
    assert "within 700 ms" in err["message"] and "thinking..." in err["message"]
    assert time.time() - t0 < 5
    d.deploy("hotinit", tok, "nofile", {"x.txt": "x"}, runtime="http", handler="srv.py")
    s, h, body = get(d, "hotinit", "nofile", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_init_failed" and "srv.py" in err["message"]
    # A handler that puts a symlink (to a host socket) at $FAAS_LISTEN never
    # gets the worker to connect outside its sandbox: it never becomes ready.
    d.deploy("hotinit", tok, "link", {"h.sh": (
        "#!/bin/sh\nln -s /proc/1/root/run/systemd/private \"$FAAS_LISTEN\"\n"
        "echo linked >&2\nexec sleep 60\n", 0o755)}, runtime="http", handler="h.sh")
    s, h, body = get(d, "hotinit", "link", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_init_failed" and "linked" in err["message"]
    assert d.stop() == 0


def test_max_instances_under_50_concurrent(faasd):
    tok = faasd.tenant("hotmax")
    deploy_srv(faasd, "hotmax", tok, "srv", max_instances=3)

    def one(_):
        s, h, body = get(faasd, "hotmax", "srv", tok, "/sleep?s=0.15")
        assert s == 200, body
        return json.loads(body)
    with concurrent.futures.ThreadPoolExecutor(50) as ex:
        docs = list(ex.map(one, range(50)))
    # Counted from inside: no more instances than max_instances served,
    # each one invocation at a time, and together exactly these 50.
    served = {}
    for x in docs:
        served[x["inst"]] = max(served.get(x["inst"], 0), x["n"])
    assert len(served) <= 3, served
    assert all(x["peak"] == 1 for x in docs)
    assert sum(served.values()) == 50


def test_concurrency_per_instance(faasd):
    tok = faasd.tenant("hotconc")
    deploy_srv(faasd, "hotconc", tok, "srv", max_instances=1, concurrency_per_instance=4)
    get(faasd, "hotconc", "srv", tok)
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        res = list(ex.map(lambda _: get(faasd, "hotconc", "srv", tok, "/sleep?s=1"), range(4)))
    assert [r[0] for r in res] == [200] * 4
    assert time.time() - t0 < 1.9, "4 invocations should share one instance at once"
    doc = json.loads(get(faasd, "hotconc", "srv", tok)[2])
    assert doc["peak"] == 4


def test_throttled_after_queue_wait(fresh_faasd):
    d = fresh_faasd("queue_wait_ms = 300\n").start()
    tok = d.tenant("hotthr")
    deploy_srv(d, "hotthr", tok, "srv", max_instances=1)
    get(d, "hotthr", "srv", tok)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        res = list(ex.map(lambda _: get(d, "hotthr", "srv", tok, "/sleep?s=1.5"), range(3)))
    codes = sorted(r[0] for r in res)
    assert codes == [200, 429, 429], codes
    for s, h, body in res:
        if s == 429:
            assert json.loads(body)["error"]["code"] == "throttled"
            assert h["retry-after"] == "1"
            assert "max_instances 1" in json.loads(body)["error"]["message"]
    assert d.stop() == 0


def test_waiting_call_gets_the_room_another_version_frees(fresh_faasd):
    """max_instances counts every version of a function: a call to version 2
    that finds version 1's instance busy waits, and once that one is idle it
    is stopped to make room (not left waiting until queue_wait_ms)."""
    d = fresh_faasd("queue_wait_ms = 5000\n").start()
    tok = d.tenant("hotroom")
    deploy_srv(d, "hotroom", tok, "srv", max_instances=1, env={"V": "1"})
    deploy_srv(d, "hotroom", tok, "srv", max_instances=1, env={"V": "2"})
    assert get(d, "hotroom", "srv:1", tok)[0] == 200
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        slow = ex.submit(get, d, "hotroom", "srv:1", tok, "/sleep?s=1")
        time.sleep(0.3)
        t0 = time.time()
        s, h, body = get(d, "hotroom", "srv:2", tok)
        waited = time.time() - t0
        assert slow.result()[0] == 200
    assert s == 200, body
    assert h["x-faas-version"] == "2" and h["x-faas-cold"] == "1"
    # about the 0.7 s left of version 1's call plus a start, far from 5 s
    assert waited < 4, waited
    assert d.stop() == 0


def test_idle_timeout_and_min_instances(faasd):
    tok = faasd.tenant("hotidle")
    deploy_srv(faasd, "hotidle", tok, "zero", idle_timeout_s=1)
    deploy_srv(faasd, "hotidle", tok, "warm", idle_timeout_s=1, min_instances=1)
    # min_instances: started at deploy, before any invocation.
    time.sleep(1.5)
    s, h, body = get(faasd, "hotidle", "warm", tok)
    assert s == 200 and h["x-faas-cold"] == "0", "min_instances must be warm before the first call"
    w = json.loads(body)["inst"]
    a = json.loads(get(faasd, "hotidle", "zero", tok)[2])["inst"]
    time.sleep(2.5)
    s, h, body = get(faasd, "hotidle", "zero", tok)
    assert h["x-faas-cold"] == "1" and json.loads(body)["inst"] != a, "idle instance must stop"
    s, h, body = get(faasd, "hotidle", "warm", tok)
    assert h["x-faas-cold"] == "0" and json.loads(body)["inst"] == w, "min_instances kept warm"
    # Without min_instances in its new version, the function scales to zero.
    deploy_srv(faasd, "hotidle", tok, "warm", idle_timeout_s=1, min_instances=0)
    time.sleep(2.5)
    s, h, body = get(faasd, "hotidle", "warm", tok)
    assert h["x-faas-cold"] == "1" and json.loads(body)["inst"] != w


def test_slow_client_does_not_hold_the_instance(faasd):
    tok = faasd.tenant("hotslow")
    deploy_srv(faasd, "hotslow", tok, "srv", max_instances=1, timeout_s=2)
    get(faasd, "hotslow", "srv", tok)
    # A client asks for 5.5 MiB (more than socket buffers hold) and does
    # not read it.
    n = 5632 << 10
    slow = socket.create_connection(("127.0.0.1", faasd.port))
    slow.sendall(("GET /fn/hotslow/srv/big?n=%d HTTP/1.1\r\nHost: x\r\n"
                  "Authorization: Bearer %s\r\n\r\n" % (n, tok)).encode())
    time.sleep(0.5)
    t0 = time.time()
    for _ in range(3):
        s, h, body = get(faasd, "hotslow", "srv", tok)
        assert s == 200, body
    assert time.time() - t0 < 1.5, "the only instance must be free while the client dawdles"
    time.sleep(2.5)  # past the function timeout: the answer is still whole
    got = 0
    slow.settimeout(10)
    while True:
        d = slow.recv(1 << 20)
        if not d:
            break
        got += len(d)
        if got >= n:
            break
    slow.close()
    assert got >= n


PY_APP = r'''
import base64, json
def event(event, context):
    return {"statusCode": 200, "body": json.dumps({"event": event, "ctx": {
        "id": context.aws_request_id, "name": context.function_name,
        "version": context.function_version, "mem": context.memory_limit_in_mb,
        "left": context.get_remaining_time_in_millis()}})}
def plain(event, context):
    return {"hello": "world"}
def text(event, context):
    return "just text"
def binary(event, context):
    raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else b""
    return {"statusCode": 201, "isBase64Encoded": True,
            "multiValueHeaders": {"X-Multi": ["a", "b"]},
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(raw[::-1]).decode()}
def echo(event, context):
    return {"statusCode": 200, "body": event["body"], "isBase64Encoded": event["isBase64Encoded"]}
class Oops(Exception):
    pass
def boom(event, context):
    raise Oops("it broke")
'''


def deploy_py(d, tenant, tok, fn, handler, files=None, **config):
    return d.deploy(tenant, tok, fn, files or {"app.py": PY_APP}, runtime="python3",
                    handler=handler, **config)


def test_python_lambda_event_and_context(faasd):
    tok = faasd.tenant("pyev")
    deploy_py(faasd, "pyev", tok, "ev", "app.event", memory_mb=256, timeout_s=7)
    conn = http.client.HTTPConnection("127.0.0.1", faasd.port, timeout=30)
    conn.putrequest("PUT", "/fn/pyev/ev/items/42?a=1&a=2&b=x%20y")
    conn.putheader("Authorization", "Bearer " + tok)
    conn.putheader("X-Dup", "one")
    conn.putheader("X-Dup", "two")
    conn.putheader("Content-Length", "5")
    conn.endheaders()
    conn.send(b"hello")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, body
    doc = json.loads(body)
    ev, ctx = doc["event"], doc["ctx"]
    assert ev["httpMethod"] == "PUT" and ev["path"] == "/items/42"
    assert ev["resource"] == "/{proxy+}" and ev["pathParameters"] == {"proxy": "items/42"}
    assert ev["queryStringParameters"] == {"a": "2", "b": "x y"}
    assert ev["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"]}
    hdr = {k.lower(): v for k, v in ev["headers"].items()}
    mhdr = {k.lower(): v for k, v in ev["multiValueHeaders"].items()}
    assert mhdr["x-dup"] == ["one", "two"] and hdr["x-dup"] == "two"
    assert "authorization" not in hdr and not any(k.startswith("x-faas-") for k in hdr)
    assert ev["body"] == "hello" and ev["isBase64Encoded"] is False
    assert ev["requestContext"]["requestId"] == r.getheader("X-Faas-Invocation-Id")
    assert ev["requestContext"]["httpMethod"] == "PUT"
    assert ev["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["id"] == r.getheader("X-Faas-Invocation-Id")
    assert ctx["name"] == "ev" and ctx["version"] == "1" and ctx["mem"] == "256"
    assert 5000 < ctx["left"] <= 7000
    s, h, body = get(faasd, "pyev", "ev", tok)
    ev = json.loads(body)["event"]
    assert ev["body"] is None and ev["queryStringParameters"] is None
    assert ev["pathParameters"] is None and ev["path"] == "/"


def test_python_results_and_base64(faasd):
    tok = faasd.tenant("pyres")
    for fn in ("plain", "text", "binary", "echo"):
        deploy_py(faasd, "pyres", tok, fn, "app." + fn)
    s, h, body = get(faasd, "pyres", "plain", tok)
    assert s == 200 and json.loads(body) == {"hello": "world"}
    assert h["content-type"] == "application/json"
    s, h, body = get(faasd, "pyres", "text", tok)
    assert s == 200 and json.loads(body) == "just text"
    raw = bytes(range(256)) * 8
    conn = http.client.HTTPConnection("127.0.0.1", faasd.port, timeout=30)
    conn.request("POST", "/fn/pyres/binary", raw, {"Authorization": "Bearer " + tok})
    r = conn.getresponse()
    assert r.status == 201 and r.read() == raw[::-1]
    assert r.headers.get_all("X-Multi") == ["a", "b"]
    assert r.getheader("Content-Type") == "application/octet-stream"
    conn.close()
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB, binary: base64 both ways
    s, h, body = get(faasd, "pyres", "echo", tok, method="POST", body=big)
    assert s == 200 and body == big


def test_python_errors(faasd):
    tok = faasd.tenant("pyerr")
    deploy_py(faasd, "pyerr", tok, "boom", "app.boom")
    for _ in range(2):  # the instance survives a function error
        s, h, body = get(faasd, "pyerr", "boom", tok)
        err = json.loads(body)["error"]
        assert s == 502 and err["code"] == "function_error", body
        assert err["message"] == "Oops: it broke"
        d = err["details"]
        assert d["errorType"] == "Oops" and d["errorMessage"] == "it broke"
        assert any("app.py" in line and "boom" in line for line in d["stackTrace"])
        assert not any("/var/runtime" in line for line in d["stackTrace"])
    assert h["x-faas-cold"] == "0"
    deploy_py(faasd, "pyerr", tok, "imp", "app.handler",
              files={"app.py": "import not_a_module_anywhere\n"})
    s, h, body = get(faasd, "pyerr", "imp", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_init_failed"
    assert "Unable to import module 'app'" in err["message"]
    assert "not_a_module_anywhere" in err["message"]
    deploy_py(faasd, "pyerr", tok, "syn", "app.handler", files={"app.py": "def handler(:\n"})
    s, h, body = get(faasd, "pyerr", "syn", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_init_failed"
    assert "Runtime.UserCodeSyntaxError" in err["message"] and "app.py" in err["message"]
    deploy_py(faasd, "pyerr", tok, "missing", "app.nothere")
    s, h, body = get(faasd, "pyerr", "missing", tok)
    err = json.loads(body)["error"]
    assert s == 502 and "Handler 'nothere' missing on module 'app'" in err["message"]


# Node.js handlers in the style of the AWS Lambda developer guide's
# examples (API Gateway proxy integration): async and callback style.
NODE_APP = r'''
exports.handler = async (event, context) => {
    const body = { message: "Hello from Lambda!", path: event.path,
                   name: event.queryStringParameters && event.queryStringParameters.name,
                   requestId: context.awsRequestId, fn: context.functionName,
                   left: context.getRemainingTimeInMillis() };
    return { statusCode: 200, headers: { "Content-Type": "application/json" },
             body: JSON.stringify(body) };
};
exports.callback = (event, context, callback) => {
    callback(null, { statusCode: 202, body: "accepted " + event.httpMethod });
};
exports.plain = async () => ({ items: [1, 2, 3] });
exports.binary = async (event) => ({ statusCode: 200, isBase64Encoded: true,
    body: Buffer.from(Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8")
                      .reverse()).toString("base64") });
exports.boom = async () => { throw new RangeError("out of range"); };
exports.cberr = (event, context, callback) => callback(new Error("callback failed"));
'''


def test_node_handlers(faasd):
    tok = faasd.tenant("nodes")
    for fn in ("handler", "callback", "plain", "binary", "boom", "cberr"):
        faasd.deploy("nodes", tok, fn, {"index.js": NODE_APP}, runtime="node",
                     handler="index." + fn)
    s, h, body = get(faasd, "nodes", "handler", tok, "/greet?name=ann")
    doc = json.loads(body)
    assert s == 200 and doc["message"] == "Hello from Lambda!" and doc["name"] == "ann"
    assert doc["path"] == "/greet" and doc["fn"] == "handler"
    assert doc["requestId"] == h["x-faas-invocation-id"] and 0 < doc["left"] <= 30000
    s, h, body = get(faasd, "nodes", "callback", tok, method="DELETE")
    assert s == 202 and body == b"accepted DELETE"
    s, h, body = get(faasd, "nodes", "plain", tok)
    assert s == 200 and json.loads(body) == {"items": [1, 2, 3]}
    raw = bytes(range(256))
    s, h, body = get(faasd, "nodes", "binary", tok, method="POST", body=raw)
    assert s == 200 and body == raw[::-1]
    s, h, body = get(faasd, "nodes", "boom", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_error" and err["message"] == "RangeError: out of range"
    assert err["details"]["errorType"] == "RangeError"
    s, h, body = get(faasd, "nodes", "cberr", tok)
    assert s == 502 and json.loads(body)["error"]["message"] == "Error: callback failed"
    faasd.deploy("nodes", tok, "gone", {"index.js": NODE_APP}, runtime="node",
                 handler="missing.handler")
    s, h, body = get(faasd, "nodes", "gone", tok)
    err = json.loads(body)["error"]
    assert s == 502 and err["code"] == "function_init_failed" and "missing" in err["message"]


def test_bench_handler_runs_hot(faasd):
    """bench/hot_ok.c, the handler make bench measures, answers through faasd."""
    tok = faasd.tenant("hotok")
    with open(HOT_OK, "rb") as f:
        faasd.deploy("hotok", tok, "ok", {"ok": (f.read(), 0o755)}, runtime="http",
                     handler="ok")
    for _ in range(3):
        s, h, body = get(faasd, "hotok", "ok", tok)
        assert s == 200 and body == b"ok\n"
    assert h["x-faas-cold"] == "0"


def test_api_work_does_not_stall_invocations(faasd):
    """Code uploads and other API calls run off the HTTP event loops: while
    a 30 MiB archive is uploaded and unpacked, invocations stay fast."""
    import os
    import threading
    tok = faasd.tenant("hotapi")
    with open(HOT_OK, "rb") as f:
        faasd.deploy("hotapi", tok, "ok", {"ok": (f.read(), 0o755)}, runtime="http",
                     handler="ok")
    get(faasd, "hotapi", "ok", tok)
    big = make_tgz({"blob.bin": (os.urandom(30 << 20), 0o644), "h.sh": "#!/bin/sh\necho\n"})
    done = threading.Event()

    def upload():
        try:
            faasd.upload("hotapi", tok, big)
        finally:
            done.set()
    t = threading.Thread(target=upload)
    t.start()
    lat = []
    while not done.is_set():
        t0 = time.perf_counter()
        s, h, body = get(faasd, "hotapi", "ok", tok)
        lat.append(time.perf_counter() - t0)
        assert s == 200 and body == b"ok\n"
    t.join()
    assert lat, "the upload finished before any invocation"
    assert max(lat) < 0.25, "an invocation took %.0f ms during an upload" % (max(lat) * 1000)


def test_response_streamed(faasd):
    """The head and the first bytes reach the client while the handler is
    still writing; a handler that dies mid-stream cuts the response off
    (the head is gone already) and is replaced."""
    tok = faasd.tenant("hotstream")
    deploy_srv(faasd, "hotstream", tok, "srv")
    get(faasd, "hotstream", "srv", tok)
    sk = socket.create_connection(("127.0.0.1", faasd.port))
    t0 = time.time()
    sk.sendall(("GET /fn/hotstream/srv/stream HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer %s\r\n\r\n" % tok).encode())
    got = b""
    while b"first" not in got:
        d = sk.recv(65536)
        assert d, got
        got += d
    assert time.time() - t0 < 0.8, "the first bytes waited for the whole answer"
    assert got.startswith(b"HTTP/1.1 200") and b"X-Faas-Invocation-Id" in got
    while not got.endswith(b"0\r\n\r\n"):
        d = sk.recv(65536)
        assert d, got
        got += d
    assert time.time() - t0 >= 0.9 and b"last" in got
    sk.close()
    first = json.loads(get(faasd, "hotstream", "srv", tok)[2])["inst"]
    conn = http.client.HTTPConnection("127.0.0.1", faasd.port, timeout=30)
    conn.request("GET", "/fn/hotstream/srv/streamcrash", headers={"Authorization": "Bearer " + tok})
    r = conn.getresponse()
    assert r.status == 200
    try:
        body = r.read()
        cut = False
    except http.client.IncompleteRead:
        cut = True
    assert cut, "a response cut by a crash must not look complete: %r" % body
    conn.close()
    s, h, body = get(faasd, "hotstream", "srv", tok)
    assert s == 200 and json.loads(body)["inst"] != first


# The handlers the Lambda console creates for a new function, as they are.
LAMBDA_CONSOLE_PY = """import json

def lambda_handler(event, context):
    # TODO implement
    return {
        'statusCode': 200,
        'body': json.dumps('Hello from Lambda!')
    }
"""
LAMBDA_CONSOLE_NODE = """export const handler = async (event) => {
  // TODO implement
  const response = {
    statusCode: 200,
    body: JSON.stringify('Hello from Lambda!'),
  };
  return response;
};
"""


def test_lambda_console_defaults(faasd):
    tok = faasd.tenant("console")
    faasd.deploy("console", tok, "py", {"lambda_function.py": LAMBDA_CONSOLE_PY},
                 runtime="python3", handler="lambda_function.lambda_handler")
    faasd.deploy("console", tok, "node", {"index.mjs": LAMBDA_CONSOLE_NODE}, runtime="node",
                 handler="index.handler")
    for fn in ("py", "node"):
        s, h, body = get(faasd, "console", fn, tok)
        assert s == 200 and json.loads(body) == "Hello from Lambda!", (fn, body)


# A slow handler that holds many requests at once: asyncio on $FAAS_LISTEN,
# each answer after SLOW_S seconds.
SLOW_SRV = r'''#!/usr/bin/python3
import asyncio, os

async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            n = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    n = int(line.split(b":")[1])
            if n:
                await reader.readexactly(n)
            await asyncio.sleep(float(os.environ["SLOW_S"]))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    srv = await asyncio.start_unix_server(serve, os.environ["FAAS_LISTEN"], backlog=4096)
    async with srv:
        await srv.serve_forever()

asyncio.run(main())
'''


def test_thousands_of_concurrent_slow_invocations(faasd):
    """Issue 4: one gateway holds thousands of slow invocations at once and
    keeps serving everything else meanwhile (2,000 clients, a handler that
    answers each after 3 s)."""
    import resource
    import selectors

    n, slow = 2000, 3.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < n + 256:
        import pytest
        pytest.skip("needs %d file descriptors" % (n + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 256), hard))
    tok = faasd.tenant("hotmany")
    faasd.deploy("hotmany", tok, "slow", {"srv.py": (SLOW_SRV, 0o755)}, runtime="http",
                 handler="srv.py", max_instances=3, min_instances=3,
                 concurrency_per_instance=700, timeout_s=60, env={"SLOW_S": str(slow)})
    s, h, body = get(faasd, "hotmany", "slow", tok)
    assert s == 200 and body == b"slow"
    raw = ("GET /fn/hotmany/slow HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n"
           % tok).encode()
    sel = selectors.DefaultSelector()
    socks = []
    t0 = time.time()
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", faasd.port))
        c.sendall(raw)
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ, bytearray())
        socks.append(c)
    # Meanwhile the gateway answers other requests at once.
    t1 = time.time()
    assert faasd.call("GET", "/healthz")[0] == 200
    assert faasd.call("GET", "/v1/whoami", tok)[0] == 200
    assert time.time() - t1 < 1.0, "the HTTP server must not wait for the slow invocations"
    done = 0
    while done < n and time.time() - t0 < 60:
        for key, _ in sel.select(timeout=1):
            d = key.fileobj.recv(65536)
            key.data.extend(d)
            if not d or key.data.endswith(b"slow"):
                assert key.data.startswith(b"HTTP/1.1 200 "), bytes(key.data[:300])
                sel.unregister(key.fileobj)
                done += 1
    took = time.time() - t0
    answers = [sel.get_key(c).data if c in sel.get_map() else None for c in socks]
    bad = [a for a in answers if a is not None]
    for c in socks:
        c.close()
    assert done == n, "%d of %d answered in %.1f s" % (done, n, took)
    assert not bad
    # 2,000 at 3 s each, 2,100 at a time: about one round, never a queue.
    assert took < 3 * slow + 10, took
