"""Aliases, weighted routing and progressive deployments (SPEC §6, issue 5),
driven over HTTP and through faasctl against a real faasd."""
import collections
import concurrent.futures
import json
import os
import signal
import time

from conftest import HOT_OK

APP = '''import os, time
def handler(event, context):
    if os.environ.get("SLEEP_MS"):
        time.sleep(int(os.environ["SLEEP_MS"]) / 1000)
    if os.environ.get("FAIL"):
        return {"statusCode": 500, "body": "broken"}
    return {"statusCode": 200, "body": "v" + context.function_version}
'''


def versions(d, tenant, tok, fn, n):
    """Deploy n versions of a hot handler (only their env differs)."""
    with open(HOT_OK, "rb") as f:
        code = {"ok": (f.read(), 0o755)}
    for i in range(n):
        d.deploy(tenant, tok, fn, code, runtime="http", handler="ok", env={"N": str(i)})


def api(d, tok, method, path, body=None):
    return d.json(method, "/v1/tenants/" + path, tok, body)


def served(d, tenant, fn, tok, n, key=None, workers=8):
    """X-Faas-Version of n calls, counted."""
    def one(i):
        h = {"X-Faas-Route-Key": key(i)} if key else {}
        s, hd, _ = d.call("GET", "/fn/%s/%s" % (tenant, fn), tok, headers=h)
        assert s == 200
        return hd["x-faas-version"]
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return collections.Counter(ex.map(one, range(n)))


def wait_state(d, tok, path, want, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s, doc = api(d, tok, "GET", path)
        assert s == 200, doc
        if doc["deployment"]["state"] == want:
            return doc["deployment"]
        time.sleep(0.2)
    raise AssertionError("deployment did not become %s: %s" % (want, doc))


def test_alias_validation_and_qualifiers(faasd):
    tok = faasd.tenant("al")
    versions(faasd, "al", tok, "f", 3)
    p = "al/functions/f/aliases/"
    s, doc = api(faasd, tok, "PUT", p + "beta", {"version": 1, "weights": {"2": 10, "3": 20}})
    assert s == 201 and doc["alias"]["weights"] == {"2": 10, "3": 20}
    bad = [
        ({"version": 1, "weights": {"2": 60, "3": 41}}, 400, "invalid_weights", "101"),
        ({"version": 1, "weights": {"2": -1}}, 400, "invalid_weights", "0 to 100"),
        ({"version": 1, "weights": {"2": 1.5}}, 400, "invalid_weights", "whole"),
        ({"version": 1, "weights": {"x": 5}}, 400, "invalid_weights", "not a version"),
        ({"version": 1, "weights": {"1": 5}}, 400, "invalid_weights", "own version"),
        ({"version": 1, "weights": {"9": 5}}, 422, "version_not_found", "9"),
        ({"version": 7}, 422, "version_not_found", "7"),
        ({"version": 0}, 400, "invalid_request", "version"),
        ({"version": 1, "extra": 1}, 400, "invalid_request", "extra"),
    ]
    for body, status, code, text in bad:
        s, doc = api(faasd, tok, "PUT", p + "beta", body)
        assert s == status and doc["error"]["code"] == code, (body, doc)
        assert text in doc["error"]["message"], (body, doc)
    s, doc = api(faasd, tok, "GET", p + "beta")
    assert doc["alias"]["version"] == 1 and doc["alias"]["weights"] == {"2": 10, "3": 20}, \
        "refused writes must not change the alias"
    for name, why in (("123", "all digits"), ("Beta", "alias")):
        s, doc = api(faasd, tok, "PUT", p + name, {"version": 1})
        assert s == 400 and why in doc["error"]["message"], doc
    s, doc = api(faasd, tok, "GET", p + "nope")
    assert s == 404 and doc["error"]["code"] == "alias_not_found"
    s, doc = api(faasd, tok, "PUT", "al/functions/nofn/aliases/x", {"version": 1})
    assert s == 404 and doc["error"]["code"] == "function_not_found"
    # qualifiers
    for q, want in ((":2", "2"), (":1", "1"), ("", "3")):
        s, h, _ = faasd.call("GET", "/fn/al/f" + q, tok)
        assert s == 200 and h["x-faas-version"] == want
    s, doc = api(faasd, tok, "PUT", p + "one", {"version": 2})
    s, h, _ = faasd.call("GET", "/fn/al/f:one", tok)
    assert h["x-faas-version"] == "2"
    s, doc = api(faasd, tok, "DELETE", p + "one")
    assert s == 200
    s, h, _ = faasd.call("GET", "/fn/al/f:one", tok)
    assert s == 404
    # an invoke token cannot touch aliases
    s, doc = faasd.json("POST", "/v1/tenants/al/keys", tok, {"scope": "invoke"})
    s, doc = api(faasd, doc["token"], "PUT", p + "beta", {"version": 2})
    assert s == 403


def test_weighted_distribution_and_stickiness(faasd):
    tok = faasd.tenant("wd")
    versions(faasd, "wd", tok, "f", 3)
    s, doc = api(faasd, tok, "PUT", "wd/functions/f/aliases/live",
                 {"version": 1, "weights": {"2": 20, "3": 30}})
    assert s == 200, doc
    n = 3000
    got = served(faasd, "wd", "f", tok, n)
    # binomial bounds, 5 standard deviations
    for v, p in (("1", .5), ("2", .2), ("3", .3)):
        sd = (n * p * (1 - p)) ** .5
        assert abs(got[v] - n * p) < 5 * sd, (v, got)
    keys = ["user-%d" % i for i in range(300)]
    first = {}
    for k in keys:
        s, h, _ = faasd.call("GET", "/fn/wd/f", tok, headers={"X-Faas-Route-Key": k})
        first[k] = h["x-faas-version"]
    for k in keys[:100]:
        for _ in range(3):
            s, h, _ = faasd.call("GET", "/fn/wd/f", tok, headers={"X-Faas-Route-Key": k})
            assert h["x-faas-version"] == first[k], "route key %s moved" % k
    on2 = sum(1 for v in first.values() if v == "2")
    assert 20 < on2 < 100, on2


def test_canary_rolls_back_under_traffic_and_wait_fails(faasd, faasctl, tmp_path):
    tok = faasd.tenant("cr")
    env = {"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": tok}
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(APP)
    (app / "faas.json").write_text(json.dumps(
        {"name": "f", "runtime": "python3", "handler": "app.handler"}))
    rc, out, err = faasctl("deploy", str(app), env=env)
    assert rc == 0, err
    (app / "faas.json").write_text(json.dumps(
        {"name": "f", "runtime": "python3", "handler": "app.handler", "env": {"FAIL": "1"}}))
    import subprocess
    import threading
    stop = threading.Event()
    seen = collections.Counter()

    def traffic():
        while not stop.is_set():
            s, h, _ = faasd.call("GET", "/fn/cr/f", tok)
            seen[(h.get("x-faas-version"), s)] += 1
    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        t0 = time.time()
        rc, out, err = faasctl("deploy", str(app), "--strategy", "canary:50:5m",
                               "--max-error-rate", "10", "--min-invocations", "10", "--wait",
                               env=env)
        took = time.time() - t0
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert rc == 1, (out, err)
    assert "rolled back" in err and "error rate" in err and "max_error_rate 10%" in err, err
    assert took < 60, "rollback must not wait for the 5 min step"
    assert seen[("2", 500)] > 0, seen
    s, doc = api(faasd, tok, "GET", "cr/functions/f/aliases/live")
    assert doc["alias"]["version"] == 1 and doc["alias"]["weights"] == {}
    s, doc = api(faasd, tok, "GET", "cr/functions/f/deployments")
    d = doc["deployments"][0]
    assert d["state"] == "rolled_back" and d["figures"]["invocations"] >= 10
    assert d["figures"]["error_rate"] > 10
    s, h, body = faasd.call("GET", "/fn/cr/f", tok)
    assert s == 200 and h["x-faas-version"] == "1"


def test_healthy_canary_and_linear_complete(faasd, faasctl):
    tok = faasd.tenant("hc")
    versions(faasd, "hc", tok, "f", 3)
    api(faasd, tok, "PUT", "hc/functions/f/aliases/live", {"version": 1})
    s, doc = api(faasd, tok, "POST", "hc/functions/f/deployments",
                 {"version": 2, "strategy": "canary:30:2s"})
    assert s == 201 and doc["deployment"]["state"] == "in_progress", doc
    dep = doc["deployment"]
    assert dep["weight"] == 30 and dep["steps_total"] == 1
    s, al = api(faasd, tok, "GET", "hc/functions/f/aliases/live")
    assert al["alias"]["weights"] == {"2": 30} and al["alias"]["deployment"] == dep["id"]
    got = served(faasd, "hc", "f", tok, 200)
    assert got["2"] > 20 and got["1"] > 80, got
    d = wait_state(faasd, tok, "hc/functions/f/deployments/%d" % dep["id"], "succeeded")
    assert d["steps"][0]["invocations"] >= 20
    s, al = api(faasd, tok, "GET", "hc/functions/f/aliases/live")
    assert al["alias"]["version"] == 2 and al["alias"]["weights"] == {}
    assert al["alias"]["previous_version"] == 1
    # linear through faasctl, followed with --wait
    env = {"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": tok}
    s, doc = api(faasd, tok, "POST", "hc/functions/f/deployments",
                 {"version": 3, "strategy": "linear:40:1s"})
    dep = doc["deployment"]
    assert dep["steps_total"] == 2 and dep["weight"] == 40
    d = wait_state(faasd, tok, "hc/functions/f/deployments/%d" % dep["id"], "succeeded")
    assert [s["weight"] for s in d["steps"]] == [40, 80]
    rc, out, err = faasctl("deployments", "f", env=env)
    assert rc == 0 and "succeeded" in out
    rc, out, err = faasctl("rollback", "f", env=env)
    assert rc == 0 and "v2" in out, (out, err)
    s, h, _ = faasd.call("GET", "/fn/hc/f", tok)
    assert h["x-faas-version"] == "2"


def test_p95_breach_rolls_back(faasd):
    tok = faasd.tenant("pb")
    with open(HOT_OK, "rb") as f:
        code = {"ok": (f.read(), 0o755)}
    faasd.deploy("pb", tok, "f", code, runtime="http", handler="ok")
    slow = APP
    from conftest import make_tgz  # noqa: F401
    faasd.deploy("pb", tok, "f", {"app.py": slow}, runtime="python3", handler="app.handler",
                 env={"SLEEP_MS": "150"}, max_instances=10, **{})
    api(faasd, tok, "PUT", "pb/functions/f/aliases/live", {"version": 1})
    s, doc = api(faasd, tok, "POST", "pb/functions/f/deployments",
                 {"version": 2, "strategy": "canary:50:5m", "max_p95_ms": 50,
                  "min_invocations": 5})
    assert s == 201, doc
    dep = doc["deployment"]
    deadline = time.time() + 30
    while time.time() < deadline:
        served(faasd, "pb", "f", tok, 20, workers=4)
        s, doc = api(faasd, tok, "GET", "pb/functions/f/deployments/%d" % dep["id"])
        if doc["deployment"]["state"] != "in_progress":
            break
    d = doc["deployment"]
    assert d["state"] == "rolled_back", d
    assert "p95" in d["reason"] and "max_p95_ms 50" in d["reason"], d["reason"]
    assert d["figures"]["p95_ms"] > 100


def test_conflicts_and_bad_requests(faasd, faasctl, tmp_path):
    tok = faasd.tenant("cf")
    versions(faasd, "cf", tok, "f", 3)
    p = "cf/functions/f/deployments"
    for body, code, text in (
            ({"version": 2, "strategy": "canary:150:1m"}, "invalid_strategy", "1 to 99"),
            ({"version": 2, "strategy": "canary:10:5x"}, "invalid_strategy", "duration"),
            ({"version": 2, "strategy": "blue"}, "invalid_strategy", "blue"),
            ({"version": 2, "max_error_rate": 150}, "invalid_request", "max_error_rate"),
            ({"version": 2, "min_invocations": 0}, "invalid_request", "min_invocations"),
            ({"version": 2, "alias": "12"}, "invalid_name", "digits"),
            ({"strategy": "all-at-once"}, "invalid_request", "version"),
            ({"version": 2, "bogus": 1}, "invalid_request", "bogus")):
        s, doc = api(faasd, tok, "POST", p, body)
        assert s == 400 and doc["error"]["code"] == code and text in doc["error"]["message"], \
            (body, doc)
    s, doc = api(faasd, tok, "POST", p, {"version": 9})
    assert s == 422 and doc["error"]["code"] == "version_not_found"
    s, doc = api(faasd, tok, "POST", p, {"version": 3})
    assert s == 409 and doc["error"]["code"] == "already_deployed"
    api(faasd, tok, "PUT", "cf/functions/f/aliases/live", {"version": 1})
    s, doc = api(faasd, tok, "POST", p, {"version": 2, "strategy": "canary:10:10m"})
    assert s == 201
    dep = doc["deployment"]["id"]
    s, doc = api(faasd, tok, "POST", p, {"version": 3, "strategy": "canary:10:10m"})
    assert s == 409 and doc["error"]["code"] == "deployment_in_progress"
    s, doc = api(faasd, tok, "PUT", "cf/functions/f/aliases/live", {"version": 3})
    assert s == 409 and doc["error"]["code"] == "deployment_in_progress"
    s, doc = api(faasd, tok, "POST", p + "/%d/abort" % dep)
    assert s == 200 and doc["deployment"]["state"] == "aborted"
    s, doc = api(faasd, tok, "POST", p + "/%d/abort" % dep)
    assert s == 409 and doc["error"]["code"] == "not_in_progress"
    s, doc = api(faasd, tok, "GET", p + "/999")
    assert s == 404 and doc["error"]["code"] == "deployment_not_found"
    s, doc = api(faasd, tok, "GET", "cf/functions/f/aliases/live")
    assert doc["alias"]["version"] == 1 and doc["alias"]["weights"] == {}
    api(faasd, tok, "PUT", "cf/functions/f/aliases/live", {"version": 1, "weights": {"2": 5}})
    s, doc = api(faasd, tok, "POST", p, {"version": 3, "strategy": "canary:10:10m"})
    assert s == 409 and doc["error"]["code"] == "alias_weighted"
    s, doc = api(faasd, tok, "GET", p + "?limit=0")
    assert s == 400 and "limit" in doc["error"]["message"]
    env = {"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": tok}
    rc, out, err = faasctl("deploy", str(tmp_path), "--name", "f", "--runtime", "exec",
                           "--handler", "h.sh", "--strategy", "canary:10", env=env)
    assert rc == 2 and "--strategy" in err, err
    rc, out, err = faasctl("alias", "set", "f", "live", "1", "--weight", "2=101", env=env)
    assert rc == 2 and "--weight" in err
    rc, out, err = faasctl("alias", "set", "f", "live", "1", "--weight", "2=60",
                           "--weight", "3=50", env=env)
    assert rc == 1 and "110" in err, err
    rc, out, err = faasctl("alias", "set", "f", "canary", "2", "--weight", "3=25", env=env)
    assert rc == 0 and "v2 75%, v3 25%" in out, out
    rc, out, err = faasctl("alias", "list", "f", env=env)
    assert rc == 0 and "canary" in out and "live" in out
    rc, out, err = faasctl("alias", "delete", "f", "canary", env=env)
    assert rc == 0
    rc, out, err = faasctl("abort", "f", "nope", env=env)
    assert rc == 2
    for flag, value in (("--max-error-rate", "150"), ("--max-error-rate", "abc"),
                        ("--min-invocations", "0"), ("--max-p95-ms", "-3")):
        rc, out, err = faasctl("deploy", str(tmp_path), "--name", "f", "--runtime", "exec",
                               "--handler", "h.sh", "--strategy", "canary:10:1m", flag, value,
                               env=env)
        assert rc == 2 and flag in err, (flag, value, err)
    rc, out, err = faasctl("deployments", "f", "--limit", "0", env=env)
    assert rc == 2 and "--limit" in err
    # an alias that never moved has nothing to roll back to
    api(faasd, tok, "PUT", "cf/functions/f/aliases/solo", {"version": 2})
    s, doc = api(faasd, tok, "POST", "cf/functions/f/aliases/solo/rollback")
    assert s == 409 and doc["error"]["code"] == "no_previous_version"
    s, doc = api(faasd, tok, "GET", "cf/functions/f/aliases/solo")
    assert doc["alias"]["version"] == 2
    rc, out, err = faasctl("rollback", "f", "solo", env=env)
    assert rc == 1 and "never pointed" in err
    s, doc = api(faasd, tok, "GET", "cf/functions/f/versions")
    assert len(doc["versions"]) == 3, "no faasctl refusal deployed anything"


def test_concurrent_alias_updates_are_whole(faasd):
    tok = faasd.tenant("cc")
    versions(faasd, "cc", tok, "f", 4)
    configs = [{"version": 1, "weights": {"2": 50}}, {"version": 3, "weights": {"4": 25}},
               {"version": 2, "weights": {}}, {"version": 4, "weights": {"1": 10, "3": 10}}]
    path = "cc/functions/f/aliases/x"

    def writer(i):
        for k in range(40):
            s, doc = api(faasd, tok, "PUT", path, configs[(i + k) % 4])
            assert s in (200, 201), doc

    def reader(_):
        bad = []
        for _ in range(80):
            s, doc = api(faasd, tok, "GET", path)
            if s == 200:
                a = doc["alias"]
                if {"version": a["version"], "weights": a["weights"]} not in configs:
                    bad.append(a)
        return bad
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        ws = [ex.submit(writer, i) for i in range(4)]
        rs = [ex.submit(reader, i) for i in range(4)]
        for w in ws:
            w.result()
        for r in rs:
            assert r.result() == []


def test_deployment_resumes_after_restart_and_kill9(fresh_faasd):
    d = fresh_faasd().start()
    tok = d.tenant("rs")
    versions(d, "rs", tok, "f", 3)
    api(d, tok, "PUT", "rs/functions/f/aliases/live", {"version": 1})
    for version, sig in ((2, signal.SIGTERM), (3, signal.SIGKILL)):
        s, doc = api(d, tok, "POST", "rs/functions/f/deployments",
                     {"version": version, "strategy": "canary:20:8s"})
        assert s == 201, doc
        dep = doc["deployment"]["id"]
        time.sleep(3.5)
        if sig == signal.SIGKILL:
            d.proc.send_signal(sig)
            d.proc.wait()
        else:
            assert d.stop() == 0
        d.start()
        s, doc = api(d, tok, "GET", "rs/functions/f/deployments/%d" % dep)
        dd = doc["deployment"]
        assert dd["state"] == "in_progress" and dd["step"] == 1
        assert dd["step_elapsed_ms"] >= 2000, dd
        s, al = api(d, tok, "GET", "rs/functions/f/aliases/live")
        assert al["alias"]["weights"] == {str(version): 20}, "weights unchanged"
        assert "resumed at step 1" in d.log_text()
        t0 = time.time()
        wait_state(d, tok, "rs/functions/f/deployments/%d" % dep, "succeeded", timeout=20)
        assert time.time() - t0 < 7, "the time already spent counts"
    assert d.stop() == 0
