"""Fixtures for faasd's integration tests.

Every test module gets a real faasd process on an ephemeral loopback port
with a temporary state directory, driven over HTTP (http.client, so paths are
sent exactly as written) and through the real faasctl binary.
"""
import gzip
import http.client
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAASD = os.environ.get("FAASD_BIN", os.path.join(ROOT, "build", "faasd"))
FAASCTL = os.environ.get("FAASCTL_BIN", os.path.join(ROOT, "build", "faasctl"))
RUNTIMES = os.path.join(ROOT, "runtimes")
HOT_OK = os.path.join(ROOT, "build", "hot_ok")


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: faasd starts handlers as per-tenant uids")
    if subprocess.run(["id", "faasd"], capture_output=True).returncode != 0:
        pytest.skip("needs the 'faasd' system user (useradd --system faasd)")


class Faasd:
    """A running faasd: start(), call(), stop()."""

    def __init__(self, tmp, config=None, workers=2):
        self.tmp = tmp
        self.state = os.path.join(tmp, "state")
        self.log_path = os.path.join(tmp, "faasd.log")
        self.config_path = os.path.join(tmp, "faasd.conf")
        with open(self.config_path, "w") as f:
            f.write(config or "")
            if "runtime_dir" not in (config or ""):
                f.write("\nruntime_dir = %s\n" % RUNTIMES)
        self.workers = workers
        self.proc = None
        self.port = None

    def start(self, extra_args=(), wait=True):
        self.log = open(self.log_path, "ab")
        self.log_offset = self.log.tell()
        self.proc = subprocess.Popen(
            [FAASD, "--config", self.config_path, "--listen", "127.0.0.1:0",
             "--state-dir", self.state, "--workers", str(self.workers), *extra_args],
            stdout=self.log, stderr=self.log)
        if wait:
            self.wait_ready()
        return self

    def log_text(self, since_start=True):
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("faasd exited early:\n" + self.log_text())
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log_text())
            if m:
                self.port = int(m.group(1))
                try:
                    if self.call("GET", "/readyz")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("faasd did not become ready:\n" + self.log_text())

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def admin(self):
        with open(os.path.join(self.state, "admin.token")) as f:
            return f.read().strip()

    def call(self, method, path, token=None, body=None, headers=None, timeout=60):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def json(self, method, path, token=None, body=None, headers=None):
        status, hdrs, data = self.call(method, path, token, body, headers)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return status, doc

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    # --- helpers for the walk ---

    def tenant(self, name, **quotas):
        status, doc = self.json("POST", "/v1/tenants", self.admin, dict(name=name, **quotas))
        assert status == 201, doc
        return doc["token"]

    def upload(self, tenant, token, archive):
        sha = sha256(archive)
        status, doc = self.json("PUT", "/v1/tenants/%s/code/%s" % (tenant, sha), token, archive)
        assert status in (200, 201), doc
        return sha

    def deploy(self, tenant, token, fn, files, **config):
        sha = self.upload(tenant, token, make_tgz(files))
        body = dict(runtime="exec", handler="handler.sh", code="sha256:" + sha)
        body.update(config)
        status, doc = self.json("PUT", "/v1/tenants/%s/functions/%s" % (tenant, fn), token, body)
        assert status in (200, 201), doc
        return doc

    def children(self):
        """{comm: pid} of faasd's child processes."""
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    stat = f.read()
                with open("/proc/%s/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                out[comm] = int(pid)
        return out


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def assert_no_sanitizer_reports(d):
    """A sanitizer report from any faasd process (gateway, workers) fails the test."""
    with open(d.log_path, errors="replace") as f:
        text = f.read()
    for mark in SANITIZER_MARKS:
        assert mark not in text, "sanitizer report in faasd's log:\n" + text[-4000:]


def sha256(data):
    import hashlib
    return hashlib.sha256(data).hexdigest()


def make_tgz(files, raw_members=None):
    """files: {name: text or (text, mode)}; raw_members: [(TarInfo, bytes|None)]."""
    bio = io.BytesIO()
    # gzip header time 0, as faasctl writes it: the same files give the same
    # bytes (and digest) in any second, so a re-deploy is not a new version
    gz = gzip.GzipFile(fileobj=bio, mode="wb", mtime=0)
    with tarfile.open(fileobj=gz, mode="w") as tar:
        for name, spec in sorted(files.items()):
            text, mode = (spec, 0o755 if name.endswith(".sh") else 0o644) \
                if isinstance(spec, str) else spec
            data = text.encode() if isinstance(text, str) else text
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
        for info, data in raw_members or []:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    gz.close()
    return bio.getvalue()


def sh(script):
    """A handler.sh file with a /bin/sh shebang."""
    return {"handler.sh": ("#!/bin/sh\n" + script, 0o755)}


def _daemons(item):
    args = getattr(item, "funcargs", {})
    d = args.get("faasd")
    made = getattr(args.get("fresh_faasd"), "made", [])
    return ([d] if isinstance(d, Faasd) else []) + list(made)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report carries what faasd logged meanwhile (CI shows
    only the report)."""
    rep = (yield).get_result()
    if rep.when == "setup":
        item._faasd_log_at = {}
        for d in _daemons(item):
            if os.path.exists(d.log_path):
                item._faasd_log_at[d.log_path] = os.path.getsize(d.log_path)
    if rep.when == "call" and rep.failed:
        for d in _daemons(item):
            if not os.path.exists(d.log_path):
                continue
            with open(d.log_path, "rb") as f:
                f.seek(getattr(item, "_faasd_log_at", {}).get(d.log_path, 0))
                text = f.read().decode(errors="replace")
            if len(text) > 16000:
                text = "[...]\n" + text[-16000:]
            rep.sections.append(("faasd log during the test: " + d.log_path, text))


@pytest.fixture(scope="module")
def faasd():
    need_root()
    tmp = tempfile.mkdtemp(prefix="faasd-it-")
    os.chmod(tmp, 0o755)  # the unprivileged gateway must reach STATE
    d = Faasd(tmp).start()
    yield d
    rc = d.stop()
    assert rc == 0, "faasd exited with %s:\n%s" % (rc, d.log_text())
    assert_no_sanitizer_reports(d)


@pytest.fixture
def fresh_faasd():
    """A faasd the test may configure, stop and restart itself."""
    need_root()
    tmp = tempfile.mkdtemp(prefix="faasd-it-")
    os.chmod(tmp, 0o755)
    made = []

    def make(config=None, workers=2):
        d = Faasd(tmp, config, workers)
        made.append(d)
        return d
    make.made = made
    yield make
    for d in made:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    for d in made:
        if os.path.exists(d.log_path):
            assert_no_sanitizer_reports(d)


@pytest.fixture
def faasctl(faasd, tmp_path):
    """Run faasctl with its own config file; returns (rc, stdout, stderr)."""
    def run(*args, env=None, input=None, cwd=None):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
             "HOME": str(tmp_path), "FAASCTL_CONFIG": str(tmp_path / "faasctl.json")}
        e.update(env or {})
        p = subprocess.run([FAASCTL, *args], capture_output=True, text=True, env=e,
                           input=input, cwd=cwd, timeout=60)
        return p.returncode, p.stdout, p.stderr
    return run
