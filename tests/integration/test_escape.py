"""The escape suite: hostile handlers against a real faasd, each walled off
(SPEC §3).  Each probe is a Python or shell handler that tries one thing and
prints what happened; the test asserts the sandbox refused it."""
import concurrent.futures
import json
import os
import time

import pytest

from conftest import sh

PROBE = """#!/usr/bin/python3
import ctypes, errno, json, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = getattr(libc, name)(*args)
    return "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
def attempt(f):
    try:
        r = f()
        return "ok" if r is None else r
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    except Exception as e:
        return type(e).__name__
out = {}
"""


@pytest.fixture(scope="module")
def tenant(faasd):
    return "esc", faasd.tenant("esc")


def assert_nothing_left(faasd, tenant):
    """No process runs (or lingers as a zombie) under the tenant's host uid."""
    from test_invoke import host_processes_of
    uid = faasd.json("GET", "/v1/tenants/%s" % tenant, faasd.admin)[1]["tenant"]["uid"]
    time.sleep(0.3)
    assert host_processes_of(uid) == []


def probe(faasd, tenant, name, body, **config):
    t, tok = tenant
    code = PROBE + body + "\nprint(json.dumps(out))\n"
    faasd.deploy(t, tok, name, {"handler.sh": (code, 0o755)}, **config)
    s, h, data = faasd.call("GET", "/fn/%s/%s" % (t, name), tok)
    assert s == 200, data
    return json.loads(data)


def test_host_files_invisible(faasd, tenant):
    out = probe(faasd, tenant, "files", """
for p in ["/etc/shadow", "/root", "/home", "/etc/faasd", "/work", "/boot", "/var/lib",
          "%s", "%s/db/faasd.db", "/sys/fs/cgroup", "/var/run/docker.sock",
          "/run/systemd"]:
    out[p] = attempt(lambda: os.listdir(p) if os.path.isdir(p) else open(p).read(1))
out["root"] = sorted(os.listdir("/"))
out["run"] = os.listdir("/run")  # only a mount point (hot instances get a tmpfs)
out["var"] = sorted(os.listdir("/var"))
out["dev"] = sorted(os.listdir("/dev"))
out["etc"] = sorted(os.listdir("/etc"))
""" % (faasd.state, faasd.state))
    for p, r in out.items():
        if p.startswith("/"):
            assert r == "ENOENT", (p, r)
    assert out["root"] == ["bin", "dev", "etc", "lib", "lib32", "lib64", "proc", "run", "sbin",
                           "tmp", "usr", "var"] or set(out["root"]) <= {
        "bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "tmp",
        "usr", "var"}, out["root"]
    assert out["run"] == []
    assert out["var"] == ["runtime", "task"], out["var"]
    assert out["dev"] == ["fd", "full", "null", "random", "stderr", "stdin", "stdout",
                          "urandom", "zero"]
    assert "shadow" not in out["etc"] and "passwd" in out["etc"]


def test_read_only_code_and_system(faasd, tenant):
    out = probe(faasd, tenant, "writes", """
out["usr"] = attempt(lambda: open("/usr/evil", "w"))
out["bin"] = attempt(lambda: open("/usr/bin/evil", "w"))
out["task"] = attempt(lambda: open("/var/task/evil", "w"))
out["handler"] = attempt(lambda: open("/var/task/handler.sh", "a"))
out["etc"] = attempt(lambda: open("/etc/passwd", "a"))
out["rootdir"] = attempt(lambda: os.mkdir("/evil"))
out["chmod"] = attempt(lambda: os.chmod("/var/task/handler.sh", 0o777))
out["tmp"] = attempt(lambda: open("/tmp/ok", "w").write("x") and None)
""")
    for k in ("usr", "bin", "task", "handler", "etc", "rootdir", "chmod"):
        assert out[k] in ("EROFS", "EACCES", "EPERM"), (k, out[k])
    assert out["tmp"] == "ok"


def test_processes_and_signals(faasd, tenant):
    out = probe(faasd, tenant, "procs", """
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
out["kill_host"] = attempt(lambda: os.kill(%d, 9))
out["kill_init"] = attempt(lambda: os.kill(1, 9))
out["hostname"] = socket.gethostname()
""" % faasd.proc.pid)
    assert out["pids"][:2] == [1, 2] and len(out["pids"]) <= 3, out["pids"]
    assert out["kill_host"] == "ESRCH"
    assert out["kill_init"] in ("ok", "EPERM")  # no effect on the host either way
    assert out["hostname"] == "faasd"
    assert faasd.proc.poll() is None


def test_no_privilege(faasd, tenant):
    out = probe(faasd, tenant, "priv", """
import subprocess
out["mount"] = call("mount", b"none", b"/tmp", b"tmpfs", 0, None)
out["unshare_user"] = call("unshare", 0x10000000)
out["unshare_net"] = call("unshare", 0x40000000)
out["setns"] = call("setns", 0, 0)
out["ptrace"] = call("ptrace", 0, 0, 0, 0)
out["chroot"] = call("chroot", b"/tmp")
out["setuid0"] = call("setuid", 0)
out["bpf"] = call("syscall", 321, 0, 0, 0)
out["keyctl"] = call("syscall", 250, 0, 0, 0)
out["perf"] = call("syscall", 298, 0, 0, 0, 0, 0)
out["kexec"] = call("syscall", 246, 0, 0, 0, 0)
out["init_module"] = call("syscall", 175, 0, 0, 0)
out["settime"] = call("syscall", 227, 0, 0)
out["userfaultfd"] = call("syscall", 323, 0)
out["io_uring"] = call("syscall", 425, 1, 0)
out["personality"] = call("personality", 0x0040000)
status = open("/proc/self/status").read()
out["caps"] = [l for l in status.splitlines() if l.startswith(("CapEff", "CapPrm", "CapBnd", "CapAmb"))]
out["nnp"] = [l for l in status.splitlines() if l.startswith("NoNewPrivs")]
out["mounts_nosuid"] = all("nosuid" in l.split()[5] for l in open("/proc/self/mountinfo")
                           if l.split()[4] in ("/usr", "/tmp", "/var/task"))
suid = [p for p in ("/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/newgrp")
        if os.path.exists(p) and os.stat(p).st_mode & 0o4000]
out["suid_present"] = bool(suid)
if suid:
    r = subprocess.run([suid[0], "--help"], capture_output=True, text=True)
    out["suid_euid_after"] = os.geteuid()
    out["suid_ran_as_root"] = "uid=0" in r.stdout
""")
    assert out["setuid0"] in ("EPERM", "EINVAL")  # uid 0 is not even mapped
    for k in ("mount", "unshare_user", "unshare_net", "setns", "ptrace", "chroot",
              "bpf", "keyctl", "perf", "kexec", "init_module", "settime", "userfaultfd",
              "io_uring", "personality"):
        assert out[k] in ("EPERM", "ENOSYS"), (k, out[k])
    for line in out["caps"]:
        assert line.endswith("0000000000000000"), line
    assert out["nnp"] == ["NoNewPrivs:\t1"]
    assert out["mounts_nosuid"]
    if out["suid_present"]:
        assert out["suid_euid_after"] == 1000 and not out["suid_ran_as_root"]


def test_network_none(faasd, tenant):
    out = probe(faasd, tenant, "net", """
out["faasd"] = attempt(lambda: socket.create_connection(("127.0.0.1", %d), timeout=2) and None)
out["ifaces"] = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:])
out["raw"] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) and None)
out["packet"] = attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW) and None)
out["route"] = attempt(lambda: socket.create_connection(("192.0.2.1", 80), timeout=2) and None)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); out["loopback"] = "ok"
""" % faasd.port)
    assert out["faasd"] == "ECONNREFUSED", "faasd's port must not be reachable"
    assert out["ifaces"] == ["lo"]
    assert out["raw"] in ("EPERM", "EACCES")
    assert out["packet"] in ("EAFNOSUPPORT", "EPERM")
    assert out["route"] in ("ENETUNREACH", "EHOSTUNREACH")
    assert out["loopback"] == "ok", "loopback works inside the sandbox"


def test_other_tenants_code_invisible(faasd, tenant):
    other = faasd.tenant("esc-victim")
    faasd.deploy("esc-victim", other, "secret", sh("echo the secret is 42\n"))
    code_root = os.path.join(faasd.state, "code")
    out = probe(faasd, tenant, "snoop", """
out["code"] = attempt(lambda: os.listdir("%s"))
out["task"] = sorted(os.listdir("/var/task"))
""" % code_root)
    assert out["code"] == "ENOENT"
    assert out["task"] == ["handler.sh"]


def test_memory_bomb(faasd, tenant):
    t, tok = tenant
    faasd.deploy(t, tok, "membomb", sh(
        "exec /usr/bin/python3 -c 'x = []\nwhile True: x.append(bytearray(1 << 20))'\n"),
        memory_mb=32)
    s, h, body = faasd.call("GET", "/fn/%s/membomb" % t, tok)
    assert s == 502 and json.loads(body)["error"]["code"] == "function_out_of_memory", body
    assert faasd.call("GET", "/healthz")[0] == 200
    # Instance cgroups are recycled: a later invocation that lands in the
    # cgroup of the bomb must not be reported as out of memory.
    faasd.deploy(t, tok, "small", sh("echo fine\n"), memory_mb=32)
    for _ in range(12):
        s, h, body = faasd.call("GET", "/fn/%s/small" % t, tok)
        assert s == 200 and body == b"fine\n", body


def test_tmp_is_bounded(faasd, tenant):
    t, tok = tenant
    faasd.deploy(t, tok, "fill", sh(
        "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; df -k /tmp | tail -1\n"),
        memory_mb=128)
    s, h, body = faasd.call("GET", "/fn/%s/fill" % t, tok)
    assert s == 200 and b"No space left on device" in body, body


def test_fd_exhaustion(faasd, tenant):
    out = probe(faasd, tenant, "fds", """
fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    out["err"] = errno.errorcode[e.errno]
out["count"] = len(fds)
""")
    assert out["err"] == "EMFILE" and out["count"] < 1024


def test_cpu_spin_times_out(faasd, tenant):
    t, tok = tenant
    faasd.deploy(t, tok, "spin", sh("while :; do :; done\n"), timeout_s=1)
    t0 = time.time()
    s, h, body = faasd.call("GET", "/fn/%s/spin" % t, tok)
    assert s == 504 and json.loads(body)["error"]["code"] == "function_timeout"
    assert time.time() - t0 < 4
    # Nothing of it is left, not even a zombie waiting for the host's init.
    assert_nothing_left(faasd, t)


def test_background_child_killed(faasd, tenant):
    t, tok = tenant
    faasd.deploy(t, tok, "daemonize", sh(
        "setsid sh -c 'sleep 60' >/dev/null 2>&1 < /dev/null &\n"
        "nohup sleep 61 >/dev/null 2>&1 &\necho started\n"))
    s, h, body = faasd.call("GET", "/fn/%s/daemonize" % t, tok)
    assert s == 200 and body == b"started\n"
    assert_nothing_left(faasd, t)


def test_fork_bomb_contained(faasd, tenant):
    t, tok = tenant
    victim = faasd.tenant("esc-bystander")
    faasd.deploy("esc-bystander", victim, "fast", sh("echo fast\n"))
    faasd.call("GET", "/fn/esc-bystander/fast", victim)
    faasd.deploy(t, tok, "bomb", sh("b() { b | b & }; b\nsleep 5\n"), timeout_s=4)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    bomb = pool.submit(faasd.call, "GET", "/fn/%s/bomb" % t, tok)
    time.sleep(0.5)
    lat = []
    for _ in range(60):
        t0 = time.perf_counter()
        s, _, body = faasd.call("GET", "/fn/esc-bystander/fast", victim)
        lat.append(time.perf_counter() - t0)
        assert s == 200 and body == b"fast\n"
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1]
    s, h, body = bomb.result()
    assert s in (200, 502, 504), body
    # Starved, the bystander would wait for the bomb's 4 s; served, it takes
    # milliseconds.  The p99 bound leaves room for a host whose neighbours
    # steal a third of its CPU (CI failed once at 162 ms that way); the
    # median keeps the typical call honest.
    p50 = lat[len(lat) // 2]
    assert p50 < 0.05, "another tenant's median was %.1f ms during the fork bomb" % (p50 * 1000)
    assert p99 < 0.3, "another tenant's p99 was %.1f ms during the fork bomb" % (p99 * 1000)
    assert_nothing_left(faasd, t)


def test_host_network_only_when_allowed(faasd):
    tok = faasd.tenant("net-denied")
    from conftest import make_tgz
    sha_ = faasd.upload("net-denied", tok, make_tgz(sh("cat /proc/net/dev\n")))
    s, doc = faasd.json("PUT", "/v1/tenants/net-denied/functions/f", tok,
                        {"runtime": "exec", "handler": "handler.sh", "code": "sha256:" + sha_,
                         "network": "host"})
    assert s == 403 and "network" in doc["error"]["message"]
    tok2 = faasd.tenant("net-allowed", allow_host_network=True)
    faasd.deploy("net-allowed", tok2, "f", sh("cat /proc/net/dev\n"), network="host")
    s, h, body = faasd.call("GET", "/fn/net-allowed/f", tok2)
    ifaces = [l.split(b":")[0].strip() for l in body.splitlines()[2:]]
    assert s == 200 and len(ifaces) > 1, ifaces
