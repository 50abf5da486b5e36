"""Users and tokens from the command line (SPEC sections 3, 4, 8): `baram init`
makes the first admin, `baram users add|list|delete`, `baram token`.

Passwords are checked against the stored argon2id hashes with the system's
libsodium (ctypes), tokens against HOME/secret.key with Python's hmac: the
real hash and the real signature, not just the CLI's word.
"""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import pty
import select
import subprocess
import threading
import time

import pytest

from api_util import ApiServer, alive_cleanup, check_problem, token
from conftest import BIN, TIMEOUT, db_query

_sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
assert _sodium.sodium_init() >= 0


def password_ok(hash_str, password):
    return _sodium.crypto_pwhash_str_verify(hash_str.encode(), password.encode(),
                                            ctypes.c_ulonglong(len(password.encode()))) == 0


def stored(home, name):
    rows = db_query(home, "SELECT role, password_hash FROM users WHERE name = ?", name)
    return rows[0] if rows else None


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def init(baram, **env):
    r = baram("init", env=env)
    assert r.rc == 0, r
    return r


def test_init_makes_admin_with_generated_password_once(baram, home):
    r = init(baram)
    lines = [l.strip() for l in r.out.splitlines() if l.strip()]
    pw = [l for l in lines if len(l) == 20 and " " not in l]
    assert len(pw) == 1, r
    assert "only once" in r.out
    role, h = stored(home, "admin")
    assert role == "admin"
    assert h.startswith("$argon2id$")
    assert pw[0] not in h
    assert password_ok(h, pw[0])
    assert not password_ok(h, pw[0] + "x")
    # Again: nothing new, no password shown, the admin kept.
    r2 = init(baram)
    assert pw[0] not in r2.out and "password" not in r2.out, r2
    assert stored(home, "admin")[1] == h
    # The password is nowhere in the home's files.
    for f in home.rglob("*"):
        if f.is_file():
            assert pw[0].encode() not in f.read_bytes(), f


def test_init_into_an_empty_folder_creates_the_home(baram, home):
    home.mkdir()  # made for it (or a mount point): empty, so the home is new
    r = init(baram, BARAM_ADMIN_PASSWORD="Env-Pass-123")
    assert "created home" in r.out and "already exists" not in r.out, r
    assert stored(home, "admin")[0] == "admin"
    r = init(baram)  # now it holds the home
    assert "already exists" in r.out and "created home" not in r.out, r


def test_init_admin_password_from_env(baram, home):
    r = init(baram, BARAM_ADMIN_PASSWORD="Env-Pass-123")
    assert "Env-Pass-123" not in r.out and "Env-Pass-123" not in r.err
    assert "BARAM_ADMIN_PASSWORD" in r.out
    assert password_ok(stored(home, "admin")[1], "Env-Pass-123")
    assert (os.stat(home / "secret.key").st_mode & 0o777) == 0o600


def test_init_keeps_users_made_before(baram, home):
    init(baram, BARAM_ADMIN_PASSWORD="first-pass")
    (home / "secret.key").unlink()
    r = init(baram, BARAM_ADMIN_PASSWORD="second-pass")
    assert "new secret.key" in r.out
    assert password_ok(stored(home, "admin")[1], "first-pass")


def test_users_add_sources(baram, home):
    init(baram)
    r = baram("users", "add", "bob", "--role", "operator", env={"BARAM_PASSWORD": "bob-pw-123"})
    assert r.rc == 0, r
    assert "bob-pw-123" not in r.out + r.err
    role, h = stored(home, "bob")
    assert role == "operator" and password_ok(h, "bob-pw-123")

    r = baram("users", "add", "carol@example.com", "--role", "viewer", "--password-stdin",
              input="carol pw with spaces\n")
    assert r.rc == 0, r
    assert password_ok(stored(home, "carol@example.com")[1], "carol pw with spaces")

    # --password-stdin wins over BARAM_PASSWORD.
    r = baram("users", "add", "dan", "--role", "viewer", "--password-stdin", input="from-stdin",
              env={"BARAM_PASSWORD": "from-env"})
    assert r.rc == 0, r
    assert password_ok(stored(home, "dan")[1], "from-stdin")


def test_users_add_refusals(baram, home):
    init(baram)
    # No source of password (stdin is not a terminal): exit 2.
    r = baram("users", "add", "eve", "--role", "viewer")
    assert r.rc == 2, r
    assert "BARAM_PASSWORD" in r.err and "--password-stdin" in r.err
    # Empty passwords.
    r = baram("users", "add", "eve", "--role", "viewer", env={"BARAM_PASSWORD": ""})
    assert r.rc == 2 and "empty" in r.err, r
    r = baram("users", "add", "eve", "--role", "viewer", "--password-stdin", input="\n")
    assert r.rc == 2 and "empty" in r.err, r
    # Bad names and roles.
    for args in (["eve"], ["eve", "--role", "root"], ["bad/name", "--role", "viewer"],
                 ["..", "--role", "viewer"], ["x" * 65, "--role", "viewer"], []):
        r = baram("users", "add", *args, env={"BARAM_PASSWORD": "pw-12345"})
        assert r.rc == 2, (args, r)
    assert stored(home, "eve") is None
    # A duplicate: refused (1) unless --update.
    r = baram("users", "add", "admin", "--role", "viewer", env={"BARAM_PASSWORD": "pw2-12345"})
    assert r.rc == 1 and "exists" in r.err, r
    assert stored(home, "admin")[0] == "admin"
    r = baram("users", "add", "admin", "--role", "admin", "--update",
              env={"BARAM_PASSWORD": "new-admin-pw"})
    assert r.rc == 0, r
    assert password_ok(stored(home, "admin")[1], "new-admin-pw")


def test_passwords_have_8_characters_at_least(baram, home, tmp_path):
    """One rule for every new password: users add (BARAM_PASSWORD, --password-stdin), the
    first admin's BARAM_ADMIN_PASSWORD at init, and POST /api/v1/users."""
    r = baram("init", env={"BARAM_ADMIN_PASSWORD": "a"})
    assert r.rc == 2 and "shorter than 8 characters" in r.err and "'a'" not in r.err, r
    assert not home.exists()  # refused before anything was made
    init(baram, BARAM_ADMIN_PASSWORD="12345678")
    for pw in ("a", "1234567", "\u00e4" * 7):  # 7 characters in 14 bytes: still too short
        r = baram("users", "add", "eve", "--role", "viewer", env={"BARAM_PASSWORD": pw})
        assert r.rc == 2 and "shorter than 8 characters" in r.err, (pw, r)
        r = baram("users", "add", "eve", "--role", "viewer", "--password-stdin",
                  input=pw + "\n")
        assert r.rc == 2 and "shorter than 8 characters" in r.err, (pw, r)
    assert stored(home, "eve") is None
    r = baram("users", "add", "eve", "--role", "viewer", env={"BARAM_PASSWORD": "\u00e4" * 8})
    assert r.rc == 0, r
    # the API: 400 problem+json, nothing stored; 8 characters are enough
    srv = ApiServer(baram, tmp_path / "api.log").start()
    try:
        tok = token(baram)
        for pw in ("a", "1234567", "\u00e4" * 7):
            p = check_problem(srv.request("POST", "/api/v1/users", token=tok,
                                          body={"name": "fay", "role": "viewer",
                                                "password": pw}), 400)
            assert "shorter than 8 characters" in p["detail"], p
        assert stored(home, "fay") is None
        r = srv.request("POST", "/api/v1/users", token=tok,
                        body={"name": "fay", "role": "viewer", "password": "12345678"})
        assert r.status == 201, r
        assert password_ok(stored(home, "fay")[1], "12345678")
    finally:
        srv.stop()
        alive_cleanup([srv])


def test_users_add_without_home(baram, home):
    r = baram("users", "add", "bob", "--role", "viewer", env={"BARAM_PASSWORD": "pw-12345"})
    assert r.rc == 2 and "baram init" in r.err, r


def test_users_add_prompts_on_terminal_without_echo(baram, home):
    init(baram)
    master, slave = pty.openpty()
    env = dict(baram.env)
    proc = subprocess.Popen([BIN, "users", "add", "tty-user", "--role", "viewer"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env,
                            cwd=str(baram.dags))
    os.close(slave)
    seen = b""

    def read_until(word, timeout=20):
        nonlocal seen
        end = time.monotonic() + timeout
        while word not in seen and time.monotonic() < end:
            rd, _, _ = select.select([master], [], [], 0.2)
            if rd:
                try:
                    seen += os.read(master, 1024)
                except OSError:
                    break
        assert word in seen, seen

    read_until(b"Password: ")
    os.write(master, b"Secret-Tty-1\n")
    read_until(b"again: ")
    os.write(master, b"Secret-Tty-1\n")
    out, _ = proc.communicate(timeout=TIMEOUT)
    try:
        while True:
            rd, _, _ = select.select([master], [], [], 0.2)
            if not rd:
                break
            seen += os.read(master, 1024)
    except OSError:
        pass
    os.close(master)
    assert proc.returncode == 0, (out, seen)
    assert b"Secret-Tty-1" not in seen  # never echoed
    assert password_ok(stored(home, "tty-user")[1], "Secret-Tty-1")


def test_users_list_and_delete(baram, home):
    init(baram)
    for name, role in (("zoe", "viewer"), ("ops", "operator")):
        assert baram("users", "add", name, "--role", role,
                     env={"BARAM_PASSWORD": "pw-12345"}).rc == 0
    r = baram("users", "list", "--json")
    assert r.rc == 0, r
    users = r.json["users"]
    assert [u["name"] for u in users] == ["admin", "ops", "zoe"]
    assert [u["role"] for u in users] == ["admin", "operator", "viewer"]
    assert all(u["created_at"].endswith("Z") for u in users)
    assert all(set(u) == {"name", "role", "created_at"} for u in users)
    r = baram("users", "list")
    assert r.rc == 0 and "zoe" in r.out and "operator" in r.out, r
    assert "$argon2" not in r.out

    assert baram("users", "delete", "zoe").rc == 0
    r = baram("users", "delete", "zoe")
    assert r.rc == 1 and "no user" in r.err, r
    # The last admin stays.
    r = baram("users", "delete", "admin")
    assert r.rc == 1 and "last admin" in r.err, r
    assert baram("users", "add", "root2", "--role", "admin",
                 env={"BARAM_PASSWORD": "pw-12345"}).rc == 0
    assert baram("users", "delete", "admin").rc == 0
    r = baram("users", "delete", "root2")
    assert r.rc == 1 and "last admin" in r.err, r
    r = baram("users", "list", "--json")
    assert [u["name"] for u in r.json["users"]] == ["ops", "root2"]
    r = baram("users", "frobnicate")
    assert r.rc == 2 and "unknown command" in r.err, r


def test_token(baram, home):
    init(baram)
    assert baram("users", "add", "ops", "--role", "operator",
                 env={"BARAM_PASSWORD": "pw-12345"}).rc == 0
    r = baram("token", "ops")
    assert r.rc == 0, r
    tok = r.out
    assert tok.endswith("\n") and tok.count("\n") == 1
    tok = tok.strip()
    h, p, s = tok.split(".")
    header, claims = json.loads(b64d(h)), json.loads(b64d(p))
    assert header["alg"] == "HS256"
    assert claims["sub"] == "ops" and claims["role"] == "operator"
    assert claims["iss"] == "baram" and claims["aud"] == "baram"
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60
    assert len(claims["jti"]) >= 16
    key = bytes.fromhex((home / "secret.key").read_text().strip())
    mac = hmac.new(key, ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(mac, b64d(s))

    r = baram("token", "ops", "--ttl", "30m")
    assert r.rc == 0, r
    c2 = json.loads(b64d(r.out.strip().split(".")[1]))
    assert c2["exp"] - c2["iat"] == 1800
    assert c2["jti"] != claims["jti"]

    for bad in ("0s", "-1h", "soon", "400d"):
        r = baram("token", "ops", "--ttl", bad)
        assert r.rc == 2 and r.out == "", (bad, r)
    r = baram("token", "nobody")
    assert r.rc == 1 and r.out == "" and "no user" in r.err, r
    r = baram("token")
    assert r.rc == 2, r
    (home / "secret.key").unlink()
    r = baram("token", "ops")
    assert r.rc == 2 and r.out == "" and "baram init" in r.err, r


def test_token_uses_config_issuer_audience(baram, home):
    init(baram)
    (home / "baram.yaml").write_text(
        "auth:\n  issuer: https://baram.example\n  audience: etl-api\n  token_ttl: 2h\n")
    r = baram("token", "admin")
    assert r.rc == 0, r
    c = json.loads(b64d(r.out.strip().split(".")[1]))
    assert c["iss"] == "https://baram.example" and c["aud"] == "etl-api"
    assert c["exp"] - c["iat"] == 7200 and c["role"] == "admin"


def _adds_held_at_the_insert(baram, pg_url, name, adds, start):
    """Starts adds (callables starting one add each) while a session holds the users table in
    SHARE mode: reads pass, writes wait. Once every add waits on that lock (each has done
    whatever it reads first), the session lets them go together: the closest race there is.
    The adds' results, by start order."""
    env = dict(baram.env, BARAM_DB=pg_url)
    lock = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", pg_url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    lock.stdin.write("BEGIN;\nLOCK TABLE users IN SHARE MODE;\n\\echo locked\n")
    lock.stdin.flush()
    assert lock.stdout.readline().strip() == "locked"
    running = [start(a) for a in adds]
    deadline = time.monotonic() + 30
    while db_query(pg_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                   "current_database() AND wait_event_type = 'Lock'") != [(len(adds),)]:
        assert time.monotonic() < deadline, "the adds never reached their write"
        time.sleep(0.05)
    lock.stdin.write("COMMIT;\n")
    lock.stdin.close()
    lock.wait(timeout=TIMEOUT)
    return [r() for r in running]


def test_users_add_races_one_wins_on_postgresql(baram, pg_url):
    """Two `users add` of one name at once (PostgreSQL, READ COMMITTED): exactly one adds the
    user, the other says it exists; the winner's role and password are the ones stored, not
    the loser's written over them. Several rounds."""
    r = baram("init", env={"BARAM_DB": pg_url})
    assert r.rc == 0, r

    def start(add):
        role, pw = add
        p = subprocess.Popen([BIN, "users", "add", name, "--role", role],
                             env=dict(baram.env, BARAM_DB=pg_url, BARAM_PASSWORD=pw),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return lambda: (p.communicate(timeout=TIMEOUT), p.returncode)

    for i in range(3):
        name = "racer%d" % i
        adds = [("viewer", "viewer-pw-%d" % i), ("operator", "operator-pw-%d" % i)]
        res = _adds_held_at_the_insert(baram, pg_url, name, adds, start)
        won = [a for a, ((out, err), rc) in zip(adds, res) if rc == 0]
        assert len(won) == 1, res
        lost = [err for ((out, err), rc) in res if rc != 0]
        assert "user '%s' exists" % name in lost[0], res
        role, h = stored(pg_url, name)
        assert role == won[0][0] and password_ok(h, won[0][1]), (role, won)


def test_users_add_concurrent_one_wins(baram, home):
    """Two `users add` of one name started together, several times, on the suite's store:
    exactly one adds it each time, the other says it exists."""
    init(baram)
    for i in range(5):
        name = "twin%d" % i
        procs = [subprocess.Popen([BIN, "users", "add", name, "--role", role],
                                  env=dict(baram.env, BARAM_PASSWORD="pw-of-%s-%d" % (role, i)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for role in ("viewer", "operator")]
        res = [(p.communicate(timeout=TIMEOUT), p.returncode) for p in procs]
        assert sorted(rc for _, rc in res) == [0, 1], res
        assert any("user '%s' exists" % name in err for (_, err), rc in res if rc), res
        won = ["viewer", "operator"][[rc for _, rc in res].index(0)]
        assert stored(home, name)[0] == won


def test_api_users_add_races_one_wins_on_postgresql(baram, pg_url, tmp_path):
    """The same race through POST /api/v1/users on two API servers of one database: one 201,
    one 409, and the winner's role stored."""
    baram.env["BARAM_DB"] = pg_url
    init(baram)
    servers = [ApiServer(baram, tmp_path / ("api%d.log" % k)) for k in range(2)]
    try:
        for s in servers:
            s.start()
        tok = token(baram)

        def start(add):
            k, role = add
            out = {}
            t = threading.Thread(target=lambda: out.update(r=servers[k].request(
                "POST", "/api/v1/users", tok,
                {"name": name, "role": role, "password": "pw-of-%s" % role})))
            t.start()
            return lambda: (t.join(TIMEOUT), out.get("r"))[1]

        for i in range(3):
            name = "apiracer%d" % i
            adds = [(0, "viewer"), (1, "operator")]
            res = _adds_held_at_the_insert(baram, pg_url, name, adds, start)
            assert sorted(r.status for r in res) == [201, 409], res
            won = [a for a, r in zip(adds, res) if r.status == 201][0]
            assert stored(pg_url, name)[0] == won[1]
    finally:
        alive_cleanup(servers)
