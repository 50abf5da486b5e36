"""Roles on every route: each route x {no token, viewer, operator, admin} gets the
status its least role allows (401 without a token, 403 below the role, anything but
401/403 at or above it; public routes never ask). The least roles are typed out here by
hand from SPEC section 8 ("viewer reads; operator also triggers, clears, cancels, pauses;
admin also manages users and pools"), not read from the server's route tables, so a route
whose role is changed in src/api/routes_*.c is caught; the tables are only read to check
that every route they hold has a row here. Plus the login throttle (429 with a
Retry-After) and a thousand idle connections, which are shed or served while the API goes
on answering."""

import re
import socket
import time
from pathlib import Path

import pytest

from api_util import ApiServer, add_user, make_home, token

ROOT = Path(__file__).resolve().parents[2]
NONE, VIEWER, OPERATOR, ADMIN = 0, 1, 2, 3

# (method, pattern) -> least role, from SPEC section 8.
EXPECTED = {
    ("POST", "/api/v1/auth/token"): NONE,  # a login
    ("POST", "/api/v1/auth/logout"): VIEWER,  # any valid token, revoked by it
    ("GET", "/api/v1/health"): NONE,  # "(no auth)"
    ("GET", "/metrics"): NONE,  # scraped by Prometheus without a token
    ("GET", "/api/v1/openapi.json"): NONE,  # the API's description
    ("GET", "/api/v1/dags"): VIEWER,
    ("GET", "/api/v1/dags/{dag}"): VIEWER,
    ("PATCH", "/api/v1/dags/{dag}"): OPERATOR,  # pauses
    ("GET", "/api/v1/dags/{dag}/graph"): VIEWER,
    ("GET", "/api/v1/dags/{dag}/grid"): VIEWER,
    ("GET", "/api/v1/import-errors"): VIEWER,
    ("GET", "/api/v1/dags/{dag}/runs"): VIEWER,
    ("POST", "/api/v1/dags/{dag}/runs"): OPERATOR,  # triggers
    ("GET", "/api/v1/dags/{dag}/runs/{run}"): VIEWER,
    ("POST", "/api/v1/dags/{dag}/runs/{run}/cancel"): OPERATOR,  # cancels
    ("GET", "/api/v1/dags/{dag}/runs/{run}/tasks"): VIEWER,
    ("GET", "/api/v1/dags/{dag}/runs/{run}/deliveries"): VIEWER,
    ("GET", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}"): VIEWER,
    ("POST", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}/clear"): OPERATOR,  # clears
    ("GET", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}/logs"): VIEWER,
    ("POST", "/api/v1/dags/{dag}/runs/{run}/tasks/{task}/mark"): OPERATOR,  # marks
    ("POST", "/api/v1/dags/{dag}/runs/{run}/mark"): OPERATOR,
    ("POST", "/api/v1/dags/{dag}/clear"): OPERATOR,  # clears a date range
    ("POST", "/api/v1/dags/{dag}/backfill"): OPERATOR,
    ("GET", "/api/v1/dags/{dag}/versions"): VIEWER,
    ("GET", "/api/v1/dags/{dag}/versions/{hash}"): VIEWER,
    ("GET", "/api/v1/audit"): ADMIN,  # who did what: administration
    ("GET", "/api/v1/events"): VIEWER,
    ("GET", "/api/v1/runs"): VIEWER,
    ("GET", "/api/v1/pools"): VIEWER,
    ("PUT", "/api/v1/pools/{name}"): ADMIN,  # manages pools
    ("GET", "/api/v1/workers"): VIEWER,
    ("GET", "/api/v1/users"): ADMIN,  # manages users
    ("POST", "/api/v1/users"): ADMIN,
    ("DELETE", "/api/v1/users/{name}"): ADMIN,
    ("GET", "/api/v1/variables"): VIEWER,  # secrets read "***"
    ("GET", "/api/v1/variables/{key}"): VIEWER,
    ("PUT", "/api/v1/variables/{key}"): ADMIN,  # manages variables and secrets
    ("DELETE", "/api/v1/variables/{key}"): ADMIN,
}
ROUTES = sorted((m, p, least) for (m, p), least in EXPECTED.items())


def table_routes():
    """(method, pattern) of every row of the server's API route tables."""
    out = set()
    for f in sorted((ROOT / "src" / "api").glob("routes_*.c")):
        for m in re.finditer(r'\{\s*"([A-Z]+)",\s*"([^"]+)",\s*AUTH_[A-Z]+,', f.read_text()):
            out.add((m.group(1), m.group(2)))
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("roles")
    b = make_home(root)
    for name, role in (("vi", "viewer"), ("op", "operator")):
        add_user(b, name, role)
    srv = ApiServer(b, root / "api.log")
    srv.start()
    names = {1: "vi", 2: "op", 3: "admin"}
    toks = {0: None, 1: token(b, "vi"), 2: token(b, "op"), 3: token(b, "admin")}
    yield {"b": b, "srv": srv, "toks": toks, "names": names}
    srv.stop()


def test_every_route_of_the_tables_has_an_expected_role():
    found = table_routes()
    assert len(found) >= 20, found
    assert found == set(EXPECTED), (found ^ set(EXPECTED))


@pytest.mark.parametrize("method,pattern,least", ROUTES,
                         ids=[f"{m} {p}" for (m, p, _) in ROUTES])
def test_each_route_for_each_role(env, method, pattern, least):
    if pattern == "/api/v1/events":  # a stream: read the status line only
        for caller, tok in env["toks"].items():
            with socket.create_connection(("127.0.0.1", env["srv"].port), timeout=10) as s:
                auth = f"Authorization: Bearer {tok}\r\n" if tok else ""
                s.sendall(f"GET {pattern} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
                status = int(s.recv(64).split()[1])
            assert status == (401 if caller == 0 else 200), (caller, status)
        return
    path = re.sub(r"\{[a-z_]+\}", "nosuchthing", pattern)
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    for caller, tok in env["toks"].items():
        if pattern == "/api/v1/auth/logout" and tok:
            tok = token(env["b"], env["names"][caller])  # a logout revokes the token it used
        r = env["srv"].request(method, path, token=tok, body=body)
        if least == 0:
            assert r.status not in (401, 403), (caller, r)
        elif caller == 0:
            assert r.status == 401, (caller, r)
        elif caller < least:
            assert r.status == 403, (caller, r)
        else:
            assert r.status not in (401, 403), (caller, r)


def test_login_is_throttled(env):
    srv = env["srv"]
    codes = []
    for _ in range(8):
        r = srv.request("POST", "/api/v1/auth/token",
                        body=b'{"username": "vi", "password": "wrong"}')
        codes.append(r.status)
    assert codes[:5] == [401] * 5, codes
    assert 429 in codes[5:], codes
    r = srv.request("POST", "/api/v1/auth/token", body=b'{"username": "vi", "password": "x"}')
    assert r.status == 429 and int(r.header("Retry-After")) >= 1, r


def test_a_thousand_idle_connections_are_shed_and_the_api_goes_on(env):
    srv = env["srv"]
    socks = []
    try:
        for _ in range(1000):
            try:
                socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=2))
            except OSError:
                break
        time.sleep(0.5)
        # the server is alive and answers again once they go
    finally:
        for s in socks:
            s.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        r = srv.request("GET", "/api/v1/health")
        if r.status == 200:
            break
        time.sleep(0.1)
    assert r.status == 200, r
    r = srv.request("GET", "/api/v1/dags", token=env["toks"][1])
    assert r.status == 200, r
