"""faasd runtime shim for python3 (SPEC §2): runs a Lambda-style handler.

Started by the worker inside the sandbox as
``/usr/bin/python3 -u /var/runtime/python3/bootstrap.py``; the code is at
/var/task, the handler is ``$FAAS_HANDLER`` ("module.function", the module
may be dotted).  The shim imports the handler once, then serves HTTP/1.1 on
the unix socket ``$FAAS_LISTEN``: every request the gateway forwards becomes
an API Gateway REST proxy event, ``function(event, context)`` is called, and
its result becomes the response.  Only the standard library is used.

Protocol with the gateway: the gateway sends one request at a time per
connection with Content-Length, and the headers X-Faas-Invocation-Id and
X-Faas-Deadline-Ms (epoch ms).  An uncaught exception answers 502 with
``X-Faas-Function-Error: Unhandled`` and the Lambda error object
({errorMessage, errorType, stackTrace}) as the body; the instance lives on.
An import or syntax error in the handler ends the shim before it listens,
with the reason on stderr: the gateway reports function_init_failed.
"""
# Start-up time is cold-start time: only modules the interpreter has
# loaded anyway, or that are built in, at the top; base64, json and
# traceback are imported where they are needed, and the socket module
# (which pulls in enum and io) is replaced by _socket.
import _socket
import importlib
import os
import select
import sys
import time

MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


class LambdaContext:
    """What a Lambda handler gets as its second argument."""

    def __init__(self, request_id, deadline_ms):
        self.aws_request_id = request_id
        self.function_name = os.environ.get("FAAS_FUNCTION_NAME", "")
        self.function_version = os.environ.get("FAAS_FUNCTION_VERSION", "")
        self.memory_limit_in_mb = os.environ.get("FAAS_MEMORY_MB", "128")
        self.invoked_function_arn = "arn:faasd:lambda:local:%s:function:%s:%s" % (
            os.environ.get("FAAS_TENANT", ""), self.function_name, self.function_version)
        self.log_group_name = "/faasd/%s/%s" % (os.environ.get("FAAS_TENANT", ""),
                                               self.function_name)
        self.log_stream_name = "instance-%d" % os.getpid()
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


def init_fail(kind, message):
    sys.stderr.write("%s: %s\n" % (kind, message))
    sys.stderr.flush()
    sys.exit(1)


def load_handler(spec):
    module_name, _, func_name = spec.rpartition(".")
    if not module_name or not func_name:
        init_fail("Runtime.MalformedHandlerName",
                  "Bad handler '%s': expected module.function" % spec)
    sys.path.insert(0, "/var/task")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:
        init_fail("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s (%s, line %s)"
                  % (module_name, e.msg, os.path.basename(e.filename or "?"), e.lineno))
    except ImportError as e:
        init_fail("Runtime.ImportModuleError",
                  "Unable to import module '%s': %s" % (module_name, e))
    except Exception as e:  # the module itself raised while loading
        import traceback
        init_fail("Runtime.ImportModuleError", "Unable to import module '%s': %s: %s\n%s"
                  % (module_name, type(e).__name__, e, traceback.format_exc()))
    fn = getattr(module, func_name, None)
    if fn is None:
        init_fail("Runtime.HandlerNotFound",
                  "Handler '%s' missing on module '%s'" % (func_name, module_name))
    if not callable(fn):
        init_fail("Runtime.HandlerNotFound",
                  "Handler '%s' of module '%s' is not callable" % (func_name, module_name))
    return fn


def unquote(text, plus=False):
    """Percent-decoding (and '+' as space in queries), as UTF-8."""
    if plus:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25 and i + 2 < len(raw):
            try:
                out.append(int(raw[i + 1:i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(c)
        i += 1
    return out.decode("utf-8", "replace")


def parse_qsl(query):
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((unquote(k, True), unquote(v, True)))
    return pairs


def make_event(method, target, headers, body):
    """The API Gateway REST (v1) proxy event of one request."""
    path, _, query = target.partition("?")
    path = unquote(path) or "/"
    hdr = {k.lower(): v for k, v in headers}
    single, multi = {}, {}
    for name, value in headers:
        if name.lower().startswith("x-faas-"):
            continue
        single[name] = value
        multi.setdefault(name, []).append(value)
    qs, mqs = None, None
    if query:
        qs, mqs = {}, {}
        for k, v in parse_qsl(query):
            qs[k] = v
            mqs.setdefault(k, []).append(v)
    if body:
        try:
            text, b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            import base64
            text, b64 = base64.b64encode(body).decode("ascii"), True
    else:
        text, b64 = None, False
    now = int(time.time() * 1000)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": qs,
        "multiValueQueryStringParameters": mqs,
        "pathParameters": {"proxy": path[1:]} if path != "/" else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "stage": "live",
            "requestId": hdr.get("x-faas-invocation-id", ""),
            "requestTimeEpoch": now,
            "accountId": os.environ.get("FAAS_TENANT", ""),
            "apiId": "faasd",
            "domainName": hdr.get("host", ""),
            "identity": {"sourceIp": hdr.get("x-forwarded-for", ""),
                         "userAgent": hdr.get("user-agent", "")},
        },
        "body": text,
        "isBase64Encoded": b64,
    }


def to_http(result):
    """(status, [(name, value)], body bytes) of a handler's result."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = []
        for k, v in (result.get("headers") or {}).items():
            headers.append((str(k), str(v)))
        for k, vs in (result.get("multiValueHeaders") or {}).items():
            for v in vs or []:
                headers.append((str(k), str(v)))
        body = result.get("body")
        if body is None:
            data = b""
        elif result.get("isBase64Encoded"):
            import base64
            data = base64.b64decode(body)
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            import json
            data = json.dumps(body).encode("utf-8")
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return status, headers, data
    import json
    return 200, [("Content-Type", "application/json")], json.dumps(result).encode("utf-8")


def response_bytes(status, headers, body):
    lines = ["HTTP/1.1 %d X" % status]
    for k, v in headers:
        if k.lower() in ("content-length", "transfer-encoding", "connection"):
            continue
        if "\r" in k or "\n" in k or "\r" in v or "\n" in v:
            continue
        lines.append("%s: %s" % (k, v))
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


def error_response(exc):
    import json
    import traceback

    # The shim's own frames are not the user's business (as in Lambda).
    tb = [f for f in traceback.extract_tb(exc.__traceback__)
          if not f.filename.startswith("/var/runtime/")]
    err = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(tb),
    }
    sys.stderr.write("[ERROR] %s: %s\n%s" % (err["errorType"], err["errorMessage"],
                                             "".join(traceback.format_exception(exc))))
    body = json.dumps(err).encode("utf-8")
    return response_bytes(502, [("Content-Type", "application/json"),
                                ("X-Faas-Function-Error", "Unhandled")], body)


def invoke(handler, method, target, headers, body):
    hdr = {k.lower(): v for k, v in headers}
    try:
        deadline = int(hdr.get("x-faas-deadline-ms", "0"))
    except ValueError:
        deadline = 0
    if not deadline:
        deadline = time.time() * 1000 + int(os.environ.get("FAAS_TIMEOUT_S", "30")) * 1000
    ctx = LambdaContext(hdr.get("x-faas-invocation-id", ""), deadline)
    try:
        result = handler(make_event(method, target, headers, body), ctx)
        return response_bytes(*to_http(result))
    except Exception as e:  # the handler's failure, not ours
        return error_response(e)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()


def sendall(sock, data):
    view = memoryview(data)
    while view:
        n = sock.send(view)
        view = view[n:]


def parse_one(buf):
    """(method, target, headers, body, used) of the first request in buf,
    None when incomplete; raises ValueError on a malformed one."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise ValueError("request head too large")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers, length = [], 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        value = value.strip()
        headers.append((name, value))
        if name.lower() == "content-length":
            length = int(value)
    if length < 0 or length > MAX_BODY:
        raise ValueError("bad Content-Length")
    total = end + 4 + length
    if len(buf) < total:
        return None
    return method, target, headers, bytes(buf[end + 4:total]), total


def serve(handler, path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    ls = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(128)
    poll = select.poll()
    poll.register(ls.fileno(), select.POLLIN)
    conns = {}
    while True:
        for fd, _ in poll.poll():
            if fd == ls.fileno():
                cfd, _ = ls._accept()
                conns[cfd] = Conn(_socket.socket(fileno=cfd))
                poll.register(cfd, select.POLLIN)
                continue
            c = conns[fd]
            try:
                chunk = c.sock.recv(262144)
            except OSError:
                chunk = b""
            if chunk:
                c.buf += chunk
                try:
                    while True:
                        req = parse_one(c.buf)
                        if req is None:
                            break
                        method, target, headers, body, used = req
                        del c.buf[:used]
                        sendall(c.sock, invoke(handler, method, target, headers, body))
                    continue
                except (ValueError, OSError):
                    pass
            poll.unregister(fd)
            del conns[fd]
            c.sock.close()


def main():
    listen = os.environ.get("FAAS_LISTEN")
    spec = os.environ.get("FAAS_HANDLER", "")
    if not listen:
        init_fail("Runtime.InvalidEnvironment", "FAAS_LISTEN is not set")
    os.chdir("/var/task")
    handler = load_handler(spec)
    if "logging" in sys.modules:
        # The handler uses logging: its records reach stderr as in Lambda
        # (a handler on the root logger), without costing others the import.
        import logging
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
        logging.getLogger().addHandler(h)
    serve(handler, listen)


if __name__ == "__main__":
    main()
