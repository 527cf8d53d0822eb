"""Raw HTTP: authentication, authorisation and bad input of every kind.

Each bad request must get a clear JSON error and leave stored data as it was.
"""
import io
import json
import tarfile

import pytest

import itertools

from conftest import make_tgz, sha256

_n = itertools.count()


def err(doc):
    assert isinstance(doc, dict) and "error" in doc, doc
    return doc["error"]["code"], doc["error"]["message"]


def test_health(faasd):
    assert faasd.json("GET", "/healthz") == (200, {"status": "ok"})
    status, doc = faasd.json("GET", "/readyz")
    assert status == 200 and doc["workers"] == 2


def test_tokens(faasd):
    tok = faasd.tenant("auth-a")
    other = faasd.tenant("auth-b")
    status, doc = faasd.json("GET", "/v1/whoami", tok)
    assert status == 200 and doc["tenant"] == "auth-a" and doc["scope"] == "owner"

    status, doc = faasd.json("GET", "/v1/whoami")
    assert status == 401 and "missing token" in err(doc)[1]
    status, doc = faasd.json("GET", "/v1/whoami", "fsk_" + "A" * 43)
    assert status == 401 and err(doc)[0] == "unauthorized"
    status, doc = faasd.json("GET", "/v1/whoami", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert status == 401

    # Another tenant's token is refused; admin-only endpoints too.
    status, doc = faasd.json("GET", "/v1/tenants/auth-a/functions", other)
    assert status == 403 and "another tenant" in err(doc)[1]
    status, doc = faasd.json("GET", "/v1/tenants", tok)
    assert status == 403
    status, doc = faasd.json("DELETE", "/v1/tenants/auth-b", tok)
    assert status == 403

    # Scopes: an invoke key cannot read functions or make keys.
    status, doc = faasd.json("POST", "/v1/tenants/auth-a/keys", tok, {"scope": "invoke"})
    assert status == 201
    inv, inv_id = doc["token"], doc["key"]["id"]
    status, doc = faasd.json("GET", "/v1/tenants/auth-a/functions", inv)
    assert status == 403 and "'deploy'" in err(doc)[1]
    status, doc = faasd.json("POST", "/v1/tenants/auth-a/keys", inv, {"scope": "owner"})
    assert status == 403
    status, doc = faasd.json("POST", "/v1/tenants/auth-a/keys", tok, {"scope": "admin"})
    assert status == 400
    status, doc = faasd.json("POST", "/v1/tenants/auth-a/keys", tok, {"scope": "owner", "x": 1})
    assert status == 400 and "'x'" in err(doc)[1]

    # Keys are listed without secrets; revocation is immediate.
    status, doc = faasd.json("GET", "/v1/tenants/auth-a/keys", tok)
    assert status == 200 and len(doc["keys"]) == 2
    assert all("token" not in k and "hash" not in k for k in doc["keys"])
    assert faasd.json("GET", "/v1/whoami", inv)[0] == 200
    status, doc = faasd.json("DELETE", "/v1/tenants/auth-a/keys/" + inv_id, tok)
    assert status == 200
    status, doc = faasd.json("GET", "/v1/whoami", inv)
    assert status == 401 and "revoked" in err(doc)[1]
    status, doc = faasd.json("DELETE", "/v1/tenants/auth-a/keys/" + inv_id, tok)
    assert status == 404
    # Another tenant cannot revoke a's keys through its own URL.
    status, doc = faasd.json("DELETE", "/v1/tenants/auth-b/keys/" + inv_id, other)
    assert status == 404

    # Token hashes only: the database never holds a token.
    import sqlite3
    import os
    db = sqlite3.connect(os.path.join(faasd.state, "db", "faasd.db"))
    blob = b"".join(bytes(str(r), "utf8") for r in db.execute("SELECT * FROM keys"))
    assert tok.encode() not in blob and faasd.admin.encode() not in blob
    db.close()


@pytest.mark.parametrize("name", ["..", "%2e%2e", "a" * 64, "caf%C3%A9", "Acme", "-x", "a_b"])
def test_bad_names_in_urls(faasd, name):
    status, doc = faasd.json("GET", "/v1/tenants/%s/functions" % name, faasd.admin)
    assert status in (400, 404), (name, status, doc)
    if status == 400:
        assert err(doc)[0] == "invalid_name"
    status, doc = faasd.json("POST", "/fn/x/%s" % name, faasd.admin, "body")
    assert status in (400, 404), (name, status, doc)


@pytest.mark.parametrize("name", ["..", "a" * 64, "café", "UPPER", "", "a/b", 7])
def test_bad_tenant_names(faasd, name):
    before = faasd.json("GET", "/v1/tenants", faasd.admin)[1]
    status, doc = faasd.json("POST", "/v1/tenants", faasd.admin, {"name": name})
    assert status == 400, doc
    assert "name" in err(doc)[1]
    assert faasd.json("GET", "/v1/tenants", faasd.admin)[1] == before


def test_tenant_lifecycle(faasd):
    status, doc = faasd.json("POST", "/v1/tenants", faasd.admin,
                             {"name": "life", "max_functions": 1, "max_memory_mb": 256})
    assert status == 201 and doc["tenant"]["quotas"]["max_functions"] == 1
    owner = doc["token"]
    status, doc = faasd.json("POST", "/v1/tenants", faasd.admin, {"name": "life"})
    assert status == 409 and "already exists" in err(doc)[1]
    status, doc = faasd.json("POST", "/v1/tenants", faasd.admin, {"name": "q", "max_functions": -1})
    assert status == 400 and "max_functions" in err(doc)[1]
    # Quotas are enforced at deploy.
    faasd.deploy("life", owner, "one", {"handler.sh": "#!/bin/sh\necho 1\n"})
    sha_ = faasd.upload("life", owner, make_tgz({"handler.sh": "#!/bin/sh\necho 2\n"}))
    status, doc = faasd.json("PUT", "/v1/tenants/life/functions/two", owner,
                             {"runtime": "exec", "handler": "handler.sh", "code": "sha256:" + sha_})
    assert status == 403 and err(doc)[0] == "quota_exceeded"
    status, doc = faasd.json("PUT", "/v1/tenants/life/functions/one", owner,
                             {"runtime": "exec", "handler": "handler.sh", "code": "sha256:" + sha_,
                              "memory_mb": 512})
    assert status == 422 and "memory_mb" in err(doc)[1]
    status, doc = faasd.json("DELETE", "/v1/tenants/life", faasd.admin)
    assert status == 200
    status, doc = faasd.json("GET", "/v1/whoami", owner)
    assert status == 401, "a deleted tenant's keys stop working at once"
    assert faasd.json("GET", "/v1/tenants/life", faasd.admin)[0] == 404


def test_bad_json_and_config(faasd):
    tok = faasd.tenant("cfg")
    code = faasd.upload("cfg", tok, make_tgz({"handler.sh": "#!/bin/sh\necho ok\n"}))
    base = {"runtime": "exec", "handler": "handler.sh", "code": "sha256:" + code}
    url = "/v1/tenants/cfg/functions/f"
    assert faasd.json("PUT", url, tok, base)[0] == 201

    def versions():
        return faasd.json("GET", url + "/versions", tok)[1]
    before = versions()
    cases = [
        (b"{not json", 400, "invalid_json", "not valid JSON"),
        (b"", 400, "invalid_json", "empty"),
        (b"[1,2]", 400, "invalid_json", "object"),
        (b'{"runtime":"exec","runtime":"exec"}', 400, "invalid_json", "duplicate"),
        (dict(base, colour="red"), 400, "invalid_config", "unknown key 'colour'"),
        (dict(base, memory_mb="128"), 400, "invalid_config", "memory_mb: must be an integer"),
        (dict(base, memory_mb=8), 400, "invalid_config", "memory_mb: must be between 16 and 10240"),
        (dict(base, timeout_s=0), 400, "invalid_config", "timeout_s"),
        (dict(base, public="yes"), 400, "invalid_config", "public"),
        (dict(base, env={"REQUEST_METHOD": "x"}), 400, "invalid_config", "REQUEST_METHOD"),
        (dict(base, env={"FAAS_X": "x"}), 400, "invalid_config", "FAAS_"),
        (dict(base, handler="../../bin/sh"), 400, "invalid_config", "handler"),
        (dict(base, name="other"), 400, "invalid_config", "differs"),
        (dict(base, ignore=[".git"]), 400, "invalid_config", "ignore"),
        (dict(base, code="sha256:" + "0" * 64), 422, "code_not_found", "not uploaded"),
        (dict(base, code="md5:abc"), 400, "invalid_config", "code"),
        (dict(base, runtime="ruby"), 400, "invalid_config", "runtime"),
        (dict(base, env={"AWS_LAMBDA_FUNCTION_NAME": "x"}), 400, "invalid_config", "AWS_LAMBDA_"),
        (dict(base, network="host"), 403, "forbidden", "host"),
        ({k: v for k, v in base.items() if k != "runtime"}, 400, "invalid_config", "runtime"),
    ]
    for body, status, code_, text in cases:
        s, doc = faasd.json("PUT", url, tok, body)
        assert s == status, (body, s, doc)
        c, m = err(doc)
        assert c == code_ and text in m, (body, doc)
    assert versions() == before, "bad input changed stored versions"
    s, doc = faasd.json("PUT", url + "?alias=12", tok, base)
    assert s == 400
    s, doc = faasd.json("PATCH", url, tok, base)
    assert s == 405
    big = b'{"runtime":"' + b"x" * (2 << 20) + b'"}'
    s, doc = faasd.json("PUT", url, tok, big)
    assert s == 413
    assert versions() == before


def test_versions_and_aliases(faasd):
    tok = faasd.tenant("vers")
    faasd.deploy("vers", tok, "f", {"handler.sh": "#!/bin/sh\necho one\n"})
    doc = faasd.deploy("vers", tok, "f", {"handler.sh": "#!/bin/sh\necho one\n"})
    assert doc["created"] is False and doc["version"]["number"] == 1
    doc = faasd.deploy("vers", tok, "f", {"handler.sh": "#!/bin/sh\necho two\n"})
    assert doc["created"] is True and doc["version"]["number"] == 2
    code2 = doc["version"]["code"]
    # Deploy to staging only: live stays on 2.
    s, doc = faasd.json("PUT", "/v1/tenants/vers/functions/f?alias=staging", tok,
                        {"runtime": "exec", "handler": "handler.sh", "code": code2, "timeout_s": 3})
    assert s == 201 and doc["version"]["number"] == 3 and doc["alias"] == "staging"
    s, doc = faasd.json("GET", "/v1/tenants/vers/functions/f/aliases", tok)
    assert doc["aliases"]["live"]["version"] == 2 and doc["aliases"]["staging"]["version"] == 3
    assert faasd.call("GET", "/fn/vers/f", tok)[2] == b"two\n"
    assert faasd.call("GET", "/fn/vers/f:1", tok)[2] == b"one\n"
    assert faasd.call("GET", "/fn/vers/f:staging", tok)[1]["x-faas-version"] == "3"
    assert faasd.call("GET", "/fn/vers/f:9", tok)[0] == 404
    assert faasd.call("GET", "/fn/vers/f:nope", tok)[0] == 404
    s, doc = faasd.json("GET", "/v1/tenants/vers/functions/f/versions/2", tok)
    assert s == 200 and doc["number"] == 2 and doc["config"]["runtime"] == "exec"
    assert faasd.json("GET", "/v1/tenants/vers/functions/f/versions/7", tok)[0] == 404
    # Versions are never reused after a delete.
    assert faasd.json("DELETE", "/v1/tenants/vers/functions/f", tok)[0] == 200
    doc = faasd.deploy("vers", tok, "f", {"handler.sh": "#!/bin/sh\necho again\n"})
    assert doc["version"]["number"] == 4
    assert faasd.json("GET", "/v1/tenants/vers/functions/f/deployments", tok)[0] == 200


def tar_member(name, type_=tarfile.REGTYPE, data=b"x", mode=0o644, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mode = mode
    info.linkname = linkname
    if type_ == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


@pytest.mark.parametrize("members,status,text", [
    ([tar_member("../evil")], 422, "'..'"),
    ([tar_member("a/../../evil")], 422, "'..'"),
    ([tar_member("/etc/evil")], 422, "absolute"),
    ([tar_member("link", tarfile.SYMTYPE, linkname="../../../etc/shadow")], 422, "symbolic link"),
    ([tar_member("link", tarfile.SYMTYPE, linkname="/etc/shadow")], 422, "symbolic link"),
    ([tar_member("hard", tarfile.LNKTYPE, linkname="../../etc/passwd")], 422, "hard link"),
    ([tar_member("dev", tarfile.CHRTYPE)], 422, "device"),
    ([tar_member("fifo", tarfile.FIFOTYPE)], 422, "device, FIFO"),
    ([tar_member("suid", data=b"#!/bin/sh\n", mode=0o4755)], 422, "setuid"),
    ([tar_member("sgid", data=b"#!/bin/sh\n", mode=0o2755)], 422, "setgid"),
])
def test_hostile_archives(faasd, members, status, text):
    tenant = "arch-%d" % next(_n)
    tok = faasd.tenant(tenant)
    archive = make_tgz({"ok.txt": "fine"}, members)
    digest = sha256(archive)
    s, doc = faasd.json("PUT", "/v1/tenants/%s/code/%s" % (tenant, digest), tok, archive)
    assert s == status, doc
    assert text in err(doc)[1], doc
    assert faasd.call("HEAD", "/v1/tenants/%s/code/%s" % (tenant, digest), tok)[0] == 404
    import os
    assert not os.path.exists("/tmp/evil") and not os.path.exists("/etc/evil")


def test_code_upload_errors(faasd):
    tok = faasd.tenant("upload")
    archive = make_tgz({"handler.sh": "#!/bin/sh\necho hi\n"})
    wrong = "0" * 64
    s, doc = faasd.json("PUT", "/v1/tenants/upload/code/" + wrong, tok, archive)
    assert s == 400 and err(doc)[0] == "digest_mismatch"
    s, doc = faasd.json("PUT", "/v1/tenants/upload/code/XYZ", tok, archive)
    assert s == 400 and "64 lowercase hex" in err(doc)[1]
    garbage = b"not a tarball at all"
    s, doc = faasd.json("PUT", "/v1/tenants/upload/code/" + sha256(garbage), tok, garbage)
    assert s == 422 and err(doc)[0] == "invalid_archive"
    # Tar bomb: 300 MiB of zeros compresses to a few hundred KiB.
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 300 << 20

        class Zeros(io.RawIOBase):
            left = 300 << 20

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n
        tar.addfile(info, Zeros())
    bomb = bio.getvalue()
    assert len(bomb) < 2 << 20
    s, doc = faasd.json("PUT", "/v1/tenants/upload/code/" + sha256(bomb), tok, bomb)
    assert s == 413 and "unpacks to more than" in err(doc)[1]
    many = make_tgz({"f%05d" % i: "" for i in range(10001)})
    s, doc = faasd.json("PUT", "/v1/tenants/upload/code/" + sha256(many), tok, many)
    assert s == 413 and "entries" in err(doc)[1]
    # Uploads are per tenant: another tenant does not see this digest.
    s, _ = faasd.json("PUT", "/v1/tenants/upload/code/" + sha256(archive), tok, archive)
    assert s == 201
    other = faasd.tenant("upload-other")
    assert faasd.call("HEAD", "/v1/tenants/upload-other/code/" + sha256(archive), other)[0] == 404
    assert faasd.call("HEAD", "/v1/tenants/upload/code/" + sha256(archive), other)[0] == 403
    # Uploading needs a deploy-scope token.
    inv = faasd.json("POST", "/v1/tenants/upload/keys", tok, {"scope": "invoke"})[1]["token"]
    s, doc = faasd.json("PUT", "/v1/tenants/upload/code/" + sha256(archive), inv, archive)
    assert s == 403
    # Over the compressed limit: refused from Content-Length alone, at once
    # for a client waiting on 100-continue or for an absurd size.
    s, _, _ = faasd.call("PUT", "/v1/tenants/upload/code/" + wrong, tok,
                         headers={"Content-Length": str(51 << 20), "Expect": "100-continue"})
    assert s == 413
    s, _, _ = faasd.call("PUT", "/v1/tenants/upload/code/" + wrong, tok,
                         headers={"Content-Length": str(1 << 40)})
    assert s == 413
    # Just over: the body is read and dropped, and the client sees the 413.
    s, _, body = faasd.call("PUT", "/v1/tenants/upload/code/" + wrong, tok, b"x" * ((50 << 20) + 1))
    assert s == 413 and b"exceeds the limit" in body


def test_unknown_routes(faasd):
    assert faasd.json("GET", "/nope")[0] == 404
    assert faasd.json("GET", "/v1/tenants/a/b/c/d/e/f/g/h/i")[0] == 404
    assert faasd.json("GET", "/async/a/b")[0] == 405  # POST only
    assert faasd.json("GET", "/v1/tenants/a/secrets")[0] == 501
