"""Revoked tokens (SPEC section 8; src/api/revoke.h): a logout revokes its token on the
server, for every copy of it and every server on the same database, at once; deleting a
user or replacing their role revokes every token they hold, from the CLI while `baram
standalone` serves; the deny list keeps a token until its exp (plus the verifier's 60 s
leeway) and then purges it.

Each token is used once before it is revoked, so the server's verified-token cache holds
it: the revocation must get past that cache. Tokens come from real logins (POST
/api/v1/auth/token) or `baram token`; one is signed here with the home's secret.key
(hmac), to make an exp that is already inside the leeway. The deny list is read straight
from the home's SQLite file.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest

from conftest import db_query
from api_util import ADMIN_PASSWORD, ApiServer, add_user, alive_cleanup, check_problem, \
    free_port, make_home, token
from daemon_util import Daemon

PW = "pw-" + "x" * 8


@pytest.fixture
def b(tmp_path):
    return make_home(tmp_path)


@pytest.fixture
def servers():
    made = []
    yield made
    alive_cleanup(made)


def api(b, tmp_path, servers, name="api"):
    s = ApiServer(b, tmp_path / (name + ".log")).start()
    servers.append(s)
    return s


def login(srv, name, password):
    r = srv.request("POST", "/api/v1/auth/token", body={"username": name, "password": password})
    assert r.status == 200, r
    return r.json["access_token"]


def ok(srv, tok):
    r = srv.get("/api/v1/dags", token=tok)
    assert r.status == 200, r


def refused(srv, tok, path="/api/v1/dags"):
    p = check_problem(srv.get(path, token=tok), 401)
    assert "revoked" in p["detail"], p


def claims(tok):
    part = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def deny_list(b):
    return dict(db_query(b, "SELECT jti, exp_at FROM revoked_tokens"))


def test_logout_revokes_the_token_and_every_copy_of_it(b, tmp_path, servers):
    one = api(b, tmp_path, servers, "one")
    two = api(b, tmp_path, servers, "two")  # a second `baram api` on the same database
    tok = login(one, "admin", ADMIN_PASSWORD)
    copy = str(tok)  # the same token, as another client (a script, a second tab) holds it
    other = login(one, "admin", ADMIN_PASSWORD)
    for srv in (one, two):
        ok(srv, tok)
        ok(srv, copy)
    r = one.request("POST", "/api/v1/auth/logout", token=tok)
    assert r.status == 204, r
    # At once, on both servers, for both holders, on every route that needs a token.
    for srv in (one, two):
        refused(srv, tok)
        refused(srv, copy, "/api/v1/users")
        ok(srv, other)  # another session of the same user stands
    check_problem(one.request("POST", "/api/v1/auth/logout", token=copy), 401)
    assert claims(tok)["jti"] in deny_list(b)
    # Logging out needs a token, and takes no body.
    check_problem(one.request("POST", "/api/v1/auth/logout"), 401)
    check_problem(one.request("POST", "/api/v1/auth/logout", token=other, body={"x": 1}), 400)
    # A fresh login after the logout works.
    ok(two, login(two, "admin", ADMIN_PASSWORD))
    assert "Bearer" not in one.log() and tok not in one.log() + two.log()


def test_deleting_a_user_from_the_cli_revokes_at_once_while_standalone_serves(b, tmp_path):
    add_user(b, "op", "operator", PW)
    add_user(b, "vi", "viewer", PW)
    port = free_port()
    d = Daemon(b, ["--listen", "127.0.0.1:%d" % port], tmp_path / "standalone.log")
    d.start()
    try:
        d.wait_log("api listening")
        srv = ApiServer(b, tmp_path / "unused.log")  # only its client: the standalone serves
        srv.port = port
        op_login, op_minted = login(srv, "op", PW), token(b, "op")
        vi = login(srv, "vi", PW)
        for t in (op_login, op_minted, vi):
            ok(srv, t)
        r = b("users", "delete", "op")
        assert r.rc == 0, r
        # The very next request: no waiting for a poll.
        refused(srv, op_login)
        refused(srv, op_minted)
        ok(srv, vi)

        # Replacing a role (users add --update) revokes the old role's tokens; a login in the
        # same second gets a token that stands.
        r = b("users", "add", "vi", "--role", "admin", "--update", env={"BARAM_PASSWORD": PW})
        assert r.rc == 0, r
        refused(srv, vi)
        new = login(srv, "vi", PW)
        assert claims(new)["role"] == "admin"
        ok(srv, new)
        assert srv.get("/api/v1/users", token=new).status == 200
        # Deleting through the API revokes as well.
        add_user(b, "gone", "viewer", PW)
        gone = login(srv, "gone", PW)
        ok(srv, gone)
        r = srv.request("DELETE", "/api/v1/users/gone", token=new)
        assert r.status == 204, r
        refused(srv, gone)
        d.assert_alive()
    finally:
        assert d.stop() == 0, d.log()


def test_a_login_overlapping_a_role_change_gets_no_token_that_stands(b, tmp_path, servers):
    """A login checks the password and role it read, then issues: a `users add --update`
    committed in between must still refuse the token (it was won with the old password and
    carries the old role). Logins with the old password run back to back while the CLI
    replaces the user, so one is in flight when the change commits; every token they got must
    be refused once the CLI is done. A login that reads the new row fails (401); one the
    throttle turns away (429) gets nothing: both are fine, neither is a token."""
    import threading
    srv = api(b, tmp_path, servers)
    old_pw, new_pw = "old-" + "x" * 8, "new-" + "y" * 8
    overlapping, deadline, rnd = 0, time.monotonic() + 40, 0
    while overlapping < 3 and time.monotonic() < deadline:
        name = "race%d" % rnd
        rnd += 1
        add_user(b, name, "admin", old_pw)
        got, go = [], threading.Event()

        def logins():
            go.set()
            for _ in range(200):
                t0 = time.monotonic()
                r = srv.request("POST", "/api/v1/auth/token",
                                body={"username": name, "password": old_pw})
                got.append((t0, time.monotonic(), r.status,
                            r.json["access_token"] if r.status == 200 else None))
                if r.status != 200:
                    return

        th = threading.Thread(target=logins)
        th.start()
        go.wait()
        r = b("users", "add", name, "--role", "viewer", "--update",
              env={"BARAM_PASSWORD": new_pw})
        done = time.monotonic()
        assert r.rc == 0, r
        th.join(timeout=60)
        assert not th.is_alive()
        assert got and got[-1][2] in (401, 429), got[-1]
        for t0, t1, status, tok in got:
            if status != 200:
                continue
            # Won with the old password: refused now, whenever it was issued.
            refused(srv, tok, "/api/v1/users")
            # In flight when the CLI was done, and still answered 200: it read the old row
            # before the change committed and issued around the commit.
            overlapping += t0 < done < t1
    assert overlapping >= 1, "no login overlapped the change in %d rounds" % rnd
    # The round's last login failed (401), so the name is throttled for a moment: wait it out.
    for _ in range(10):
        r = srv.request("POST", "/api/v1/auth/token", body={"username": name, "password": new_pw})
        if r.status != 429:
            break
        time.sleep(float(r.headers.get("retry-after", "1")) + 0.1)
    assert r.status == 200, r
    new = r.json["access_token"]
    assert claims(new)["role"] == "viewer"
    ok(srv, new)
    check_problem(srv.get("/api/v1/users", token=new), 403)


def hs256(b, payload):
    key = bytes.fromhex((b.home / "secret.key").read_text().strip())

    def enc(obj):
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = enc({"alg": "HS256", "typ": "JWT"}) + "." + enc(payload)
    sig = hmac.new(key, head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def test_the_deny_list_is_purged_after_exp(b, tmp_path, servers):
    srv = api(b, tmp_path, servers)
    now = int(time.time())
    # Past its exp but inside the 60 s leeway: still accepted, for about 4 more seconds.
    old = hs256(b, {"sub": "admin", "role": "admin", "iss": "baram", "aud": "baram",
                    "iat": now - 3600, "exp": now - 56, "jti": "about-to-expire"})
    ok(srv, old)
    assert srv.request("POST", "/api/v1/auth/logout", token=old).status == 204
    refused(srv, old)
    assert deny_list(b) == {"about-to-expire": (now - 56) * 1000}
    # Once exp + leeway is past, no verifier takes the token: the next logout purges its row.
    while time.time() < now - 56 + 60 + 1.5:
        time.sleep(0.2)
    p = check_problem(srv.get("/api/v1/dags", token=old), 401)
    assert "expired" in p["detail"], p
    fresh = token(b, "admin")
    assert srv.request("POST", "/api/v1/auth/logout", token=fresh).status == 204
    assert set(deny_list(b)) == {claims(fresh)["jti"]}
    refused(srv, fresh)


def test_a_token_with_a_far_exp_is_revoked_without_overflow(b, tmp_path, servers):
    """A token whose exp is as far as a JSON number goes (an identity provider's, or one signed
    with the key) keeps its deny-list row until that exp: every server that reads the row, at
    its logout and after a restart, must answer and refuse the token, not overflow adding
    the leeway to it."""
    srv = api(b, tmp_path, servers)
    now = int(time.time())
    far = hs256(b, {"sub": "admin", "role": "admin", "iss": "baram", "aud": "baram",
                    "iat": now, "exp": 1e16, "jti": "far-away"})
    ok(srv, far)
    assert srv.request("POST", "/api/v1/auth/logout", token=far).status == 204
    refused(srv, far)
    ok(srv, token(b, "admin"))
    # A server started afterwards reads the row when it loads its snapshot.
    later = api(b, tmp_path, servers, "later")
    ok(later, token(b, "admin"))
    refused(later, far)
    assert srv.proc.poll() is None and later.proc.poll() is None
