"""faasd as a daemon: restarts, signals, drain, state, config, systemd."""
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from conftest import FAASD, HOT_OK, sh


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_first_start_and_restart_keep_state(fresh_faasd):
    d = fresh_faasd().start()
    tokfile = os.path.join(d.state, "admin.token")
    assert os.stat(tokfile).st_mode & 0o777 == 0o600
    assert "created the admin token: " + tokfile in d.log_text()
    admin = d.admin
    tok = d.tenant("keep")
    d.deploy("keep", tok, "f", sh("echo kept\n"))
    d.proc.kill()  # kill -9: no chance to clean up
    d.proc.wait()
    d.start()
    assert "created the admin token" not in d.log_text()
    assert d.admin == admin
    assert d.call("GET", "/fn/keep/f", tok)[2] == b"kept\n"
    assert d.stop() == 0


def test_leftover_sandboxes_cleaned_after_kill9(fresh_faasd):
    d = fresh_faasd().start()
    tok = d.tenant("crash")
    d.deploy("crash", tok, "slow", sh("sleep 30\n"))
    def call():
        try:
            d.call("GET", "/fn/crash/slow", tok, timeout=10)
        except OSError:
            pass  # faasd is killed under it: expected
    t = threading.Thread(target=call)
    t.daemon = True
    t.start()
    time.sleep(1.0)
    uid = d.json("GET", "/v1/tenants/crash", d.admin)[1]["tenant"]["uid"]
    from test_invoke import host_processes_of
    assert host_processes_of(uid), "the handler should be running"
    d.proc.kill()  # kill -9 the parent: children follow through their death signal
    d.proc.wait()
    wait_for(lambda: not host_processes_of(uid), timeout=5)
    d.start()
    assert d.call("GET", "/readyz")[0] == 200
    text = d.log_text()
    assert "removed" in text and "sandbox cgroups left by an earlier run" in text, text
    assert d.stop() == 0


def test_children_restart(fresh_faasd):
    d = fresh_faasd().start()
    tok = d.tenant("restart")
    d.deploy("restart", tok, "f", sh("echo up\n"))
    kids = d.children()
    assert set(kids) == {"faasd-gateway", "faasd-worker0", "faasd-worker1"}, kids
    gw_uid = os.stat("/proc/%d" % kids["faasd-gateway"]).st_uid
    assert gw_uid != 0, "the gateway must not run as root"
    status = open("/proc/%d/status" % kids["faasd-gateway"]).read()
    assert "CapEff:\t0000000000000000" in status and "CapBnd:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status
    # Workers keep only KILL, SETGID, SETUID, NET_ADMIN, SYS_ADMIN (bits 5-7, 12, 21).
    wstatus = open("/proc/%d/status" % kids["faasd-worker0"]).read()
    assert "CapEff:\t00000000002010e0" in wstatus and "CapBnd:\t00000000002010e0" in wstatus, \
        [l for l in wstatus.splitlines() if l.startswith("Cap")]

    os.kill(kids["faasd-worker0"], signal.SIGKILL)
    wait_for(lambda: d.children().get("faasd-worker0", kids["faasd-worker0"]) != kids["faasd-worker0"])
    assert "worker 0 was killed by signal 9" in d.log_text()
    for _ in range(6):
        assert d.call("GET", "/fn/restart/f", tok)[2] == b"up\n"
    # The new worker0 clears its predecessor's cgroups and gets its pool
    # of blank sandboxes back (their names would clash otherwise).
    wait_for(lambda: "removed" in d.log_text() and "previous run" in d.log_text())
    assert "sandbox pool stopped" not in d.log_text(), d.log_text()

    os.kill(kids["faasd-gateway"], signal.SIGKILL)
    wait_for(lambda: d.children().get("faasd-gateway", kids["faasd-gateway"]) != kids["faasd-gateway"])
    wait_for(lambda: d.call("GET", "/readyz")[0] == 200 if _up(d) else False)
    assert d.call("GET", "/fn/restart/f", tok)[2] == b"up\n"
    assert "gateway was killed by signal 9 (Killed); restarting" in d.log_text()
    assert d.stop() == 0


def _up(d):
    try:
        d.call("GET", "/healthz", timeout=2)
        return True
    except OSError:
        return False


def test_sigterm_drains(fresh_faasd):
    d = fresh_faasd().start()
    tok = d.tenant("drain")
    d.deploy("drain", tok, "slow", sh("sleep 2\necho finished\n"))
    result = {}

    def call():
        result["r"] = d.call("GET", "/fn/drain/slow", tok)
    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert result["r"][0] == 200 and result["r"][2] == b"finished\n"
    assert d.proc.wait(20) == 0
    assert not d.children()


def test_sighup_reloads(fresh_faasd):
    d = fresh_faasd().start()
    tok = d.tenant("hup")
    d.deploy("hup", tok, "wc", sh("wc -c\n"))
    assert d.call("POST", "/fn/hup/wc", tok, b"x" * 5000)[0] == 200
    with open(d.config_path, "w") as f:
        f.write("max_body_bytes = 4096\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in d.log_text())
    wait_for(lambda: d.call("POST", "/fn/hup/wc", tok, b"x" * 5000)[0] == 413)
    # A broken file is refused and the running settings kept.
    with open(d.config_path, "w") as f:
        f.write("max_body_bytes = lots\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed" in d.log_text())
    assert d.call("POST", "/fn/hup/wc", tok, b"x" * 100)[0] == 200
    assert d.stop() == 0


def test_bad_config_and_flags(fresh_faasd, tmp_path):
    d = fresh_faasd(config="wrokers = 3\n")
    p = subprocess.run([FAASD, "--config", d.config_path, "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "unknown setting 'wrokers'" in p.stderr and ":1:" in p.stderr
    p = subprocess.run([FAASD, "--config", str(tmp_path / "missing.conf")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "missing.conf" in p.stderr
    p = subprocess.run([FAASD, "--listen", "nonsense", "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "listen" in p.stderr
    p = subprocess.run([FAASD, "--workers", "0"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "workers" in p.stderr
    p = subprocess.run([FAASD, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--state-dir" in p.stdout
    p = subprocess.run([FAASD, "--user", "no-such-user", "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "useradd" in p.stderr


def gateway_loops(d):
    """How many HTTP event loops (gw-loop threads) d's gateway runs."""
    gw = d.children()["faasd-gateway"]
    names = []
    for t in os.listdir("/proc/%d/task" % gw):
        with open("/proc/%d/task/%s/comm" % (gw, t)) as f:
            names.append(f.read().strip())
    return names.count("gw-loop")


def test_http_loops_setting(fresh_faasd, tmp_path):
    """http_loops sets the gateway's event loops; by default half the
    CPUs, at least one; out of range it is refused, naming the key."""
    d = fresh_faasd().start()
    assert gateway_loops(d) == min(8, max(1, (os.cpu_count() or 1) // 2))  # GW_MAX_LOOPS
    assert d.call("GET", "/healthz")[0] == 200
    assert d.stop() == 0
    d = fresh_faasd(config="http_loops = 3\n").start()
    assert gateway_loops(d) == 3
    tok = d.tenant("loops")
    with open(HOT_OK, "rb") as f:
        d.deploy("loops", tok, "ok", {"ok": (f.read(), 0o755)}, runtime="http", handler="ok")
    assert all(d.call("GET", "/fn/loops/ok", tok)[0] == 200 for _ in range(20))
    assert d.stop() == 0
    bad = fresh_faasd(config="http_loops = 9\n")
    p = subprocess.run([FAASD, "--config", bad.config_path, "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "http_loops" in p.stderr and "between 0 and 8" in p.stderr, \
        p.stderr


def test_unreachable_state_dir(tmp_path):
    os.chmod(tmp_path, 0o700)
    p = subprocess.run([FAASD, "--listen", "127.0.0.1:0", "--state-dir", str(tmp_path / "state")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "not reachable by unprivileged users" in p.stderr, p.stderr


def test_newer_database_refused(fresh_faasd):
    d = fresh_faasd().start()
    assert d.stop() == 0
    db = sqlite3.connect(os.path.join(d.state, "db", "faasd.db"))
    db.execute("PRAGMA user_version = 999")
    db.close()
    d.start(wait=False)
    assert d.proc.wait(10) == 1
    assert "newer than this faasd supports" in d.log_text()


def test_sd_notify(fresh_faasd, tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(15)
    os.environ["NOTIFY_SOCKET"] = sock_path
    try:
        d = fresh_faasd().start()
    finally:
        del os.environ["NOTIFY_SOCKET"]
    msg = s.recv(4096).decode()
    assert "READY=1" in msg
    d.proc.send_signal(signal.SIGTERM)
    assert "STOPPING=1" in s.recv(4096).decode()
    assert d.proc.wait(20) == 0
    s.close()


def _subtrees():
    """faasd cgroup subtrees on this host (v1: per controller; v2: one)."""
    found = set()
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        for name in dirs:
            if name.startswith("faasd-") and name != "faasd-unit":
                found.add(os.path.join(root, name))
        if root.count("/") > 6:
            dirs[:] = []
    return found


def test_second_daemon_leaves_the_first_ones_sandboxes_alone(faasd, fresh_faasd):
    # Two faasd started from the same cgroup (as tests and benchmarks do):
    # the second one's start-up cleanup and its stop must not take the
    # first one's hot instance (or its blank sandboxes) for leftovers.
    import json
    from test_hot import deploy_srv, get
    tok = faasd.tenant("twod")
    deploy_srv(faasd, "twod", tok, "srv")
    first = json.loads(get(faasd, "twod", "srv", tok)[2])["inst"]
    before = _subtrees()
    other = fresh_faasd().start()
    assert other.call("GET", "/readyz")[0] == 200
    mine = _subtrees() - before
    assert mine, "the second daemon has a subtree of its own"
    s, h, body = get(faasd, "twod", "srv", tok)
    assert s == 200 and h["x-faas-cold"] == "0", (s, h, body)
    assert json.loads(body)["inst"] == first, "the first daemon's instance was killed"
    assert "removed" not in other.log_text(), other.log_text()
    assert other.stop() == 0
    assert not (_subtrees() & mine), "a clean stop removes the daemon's subtree"
    s, h, body = get(faasd, "twod", "srv", tok)
    assert s == 200 and json.loads(body)["inst"] == first
    assert "sandbox pool stopped" not in faasd.log_text()
