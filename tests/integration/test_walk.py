"""The path a newcomer walks, through faasctl exactly as a user types it."""
import json
import os

from conftest import FAASCTL

def test_walking_skeleton(faasd, faasctl, tmp_path):
    tokfile = os.path.join(faasd.state, "admin.token")
    rc, out, err = faasctl("login", "--url", faasd.url, "--token-file", tokfile)
    assert rc == 0, err
    assert "admin" in out
    rc, out, err = faasctl("whoami")
    assert rc == 0 and "scope:  admin" in out

    rc, out, err = faasctl("tenant", "create", "walk")
    assert rc == 0, err
    token = out.strip().splitlines()[-1]
    assert token.startswith("fsk_")
    rc, out, err = faasctl("tenant", "list")
    assert rc == 0 and "walk" in out

    rc, out, err = faasctl("login", "--url", faasd.url, "--token", token)
    assert rc == 0, err
    assert "walk" in out

    fn = tmp_path / "hello"
    fn.mkdir()
    (fn / "handler.sh").write_text('#!/bin/sh\necho "Hello, $(cat)!"\n')
    (fn / "handler.sh").chmod(0o755)
    (fn / ".git").mkdir()
    (fn / ".git" / "junk").write_text("x" * 1000)
    (fn / "faas.json").write_text(json.dumps(
        {"name": "hello", "runtime": "exec", "handler": "handler.sh", "ignore": [".git"]}))
    rc, out, err = faasctl("deploy", str(fn))
    assert rc == 0, err
    assert "version 1" in out and "/fn/walk/hello" in out

    rc, out, err = faasctl("invoke", "hello", "--data", "world")
    assert rc == 0, err
    assert out == "Hello, world!\n"

    # Unchanged tree: same digest, no upload, no new version.
    rc, out, err = faasctl("deploy", str(fn))
    assert rc == 0 and "unchanged" in out and "uploaded" not in out, out

    # A config change from a flag makes version 2 and moves live.
    rc, out, err = faasctl("deploy", str(fn), "--env", "GREETING=hi", "--timeout", "5")
    assert rc == 0 and "version 2" in out, out
    rc, out, err = faasctl("versions", "hello")
    assert rc == 0 and out.count("exec") == 2
    rc, out, err = faasctl("invoke", "hello:1", "--data", "v1")
    assert rc == 0 and out == "Hello, v1!\n"

    rc, out, err = faasctl("--json", "invoke", "hello", "--data", "x")
    assert rc == 0
    doc = json.loads(out)
    assert doc["status"] == 200 and doc["headers"]["X-Faas-Version"] == "2"

    rc, out, err = faasctl("list")
    assert rc == 0 and "hello" in out and "v2" in out
    rc, out, err = faasctl("info", "hello", "--json")
    assert rc == 0 and json.loads(out)["latest_version"] == 2

    rc, out, err = faasctl("key", "create", "--scope", "invoke", "--name", "app")
    assert rc == 0, err
    invoke_token = out.strip().splitlines()[-1]
    rc, out, err = faasctl("invoke", "hello", "--data", "app",
                           env={"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": invoke_token,
                                "FAASCTL_TENANT": "walk"})
    assert rc == 0 and out == "Hello, app!\n", err
    # An invoke key cannot deploy: server refuses, exit 1.
    rc, out, err = faasctl("deploy", str(fn), "--memory", "256",
                           env={"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": invoke_token,
                                "FAASCTL_TENANT": "walk"})
    assert rc == 1 and "deploy" in err, err

    rc, out, err = faasctl("delete", "hello")
    assert rc == 0
    rc, out, err = faasctl("invoke", "hello")
    assert rc == 1 and "function_not_found" in err

def test_faasctl_usage_errors(faasd, faasctl, tmp_path):
    rc, out, err = faasctl("whoami")
    assert rc == 2 and "not logged in" in err
    rc, out, err = faasctl("frobnicate")
    assert rc == 2 and "unknown command" in err
    for cmd in (["login"], ["whoami"], ["tenant"], ["key"], ["deploy"], ["list"], ["info"],
                ["versions"], ["delete"], ["invoke"]):
        rc, out, err = faasctl(*cmd, "--help")
        assert rc == 0 and "Usage: faasctl" in out, (cmd, out, err)
    rc, out, err = faasctl("login", "--url", faasd.url, "--token", "fsk_nope")
    assert rc == 1 and "unknown or revoked token" in err
    rc, out, err = faasctl("login", "--url", "http://127.0.0.1:1", "--token", "fsk_x")
    assert rc == 1 and "cannot reach faasd" in err
    rc, out, err = faasctl("login", "--url", faasd.url, "--token-file", str(tmp_path / "missing"))
    assert rc == 2 and "cannot read token file" in err

    env = {"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": faasd.tenant("usage")}
    d = tmp_path / "bad"
    d.mkdir()
    (d / "faas.json").write_text('{"name": "bad", "runtime": "exec", "handler": "h", "colour": 1}')
    rc, out, err = faasctl("deploy", str(d), env=env)
    assert rc == 2 and "unknown key 'colour'" in err
    (d / "faas.json").write_text('{"name": "bad", "runtime": "exec", "handler": "h", "memory_mb": "lots"}')
    rc, out, err = faasctl("deploy", str(d), env=env)
    assert rc == 2 and "memory_mb" in err and "integer" in err
    (d / "faas.json").write_text('{"name": "bad", ')
    rc, out, err = faasctl("deploy", str(d), env=env)
    assert rc == 2 and "faas.json" in err
    rc, out, err = faasctl("deploy", str(tmp_path / "nowhere"), env=env)
    assert rc == 2 and "not a directory" in err
    (d / "faas.json").write_text('{"name": "bad", "runtime": "exec", "handler": "h"}')
    rc, out, err = faasctl("deploy", str(d), "--strategy", "canary:10:5x", env=env)
    assert rc == 2 and "--strategy" in err and "duration" in err
    rc, out, err = faasctl("invoke", "Bad..Name", env=env)
    assert rc == 2
    rc, out, err = faasctl("tenant", "create", "x", env=env)
    assert rc == 1 and "admin" in err
    # Nothing was deployed by any of this.
    status, doc = faasd.json("GET", "/v1/tenants/usage/functions", env["FAASCTL_TOKEN"])
    assert status == 200 and doc["functions"] == []

def test_deploy_is_deterministic(faasd, faasctl, tmp_path):
    env = {"FAASCTL_URL": faasd.url, "FAASCTL_TOKEN": faasd.tenant("determ")}
    d = tmp_path / "fn"
    d.mkdir()
    (d / "handler.sh").write_text("#!/bin/sh\necho same\n")
    (d / "handler.sh").chmod(0o755)
    (d / "faas.json").write_text('{"name": "same", "runtime": "exec", "handler": "handler.sh"}')
    rc, out1, err = faasctl("--json", "deploy", str(d), env=env)
    assert rc == 0, err
    os.utime(d / "handler.sh", (0, 12345))
    rc, out2, err = faasctl("--json", "deploy", str(d), env=env)
    assert rc == 0, err
    v1, v2 = json.loads(out1)["version"], json.loads(out2)["version"]
    assert v1["code"] == v2["code"] and v1["number"] == v2["number"]
