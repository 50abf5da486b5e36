"""The PostgreSQL store as people meet it (SPEC sections 6 and 12): `db: postgresql://...` and
BARAM_DB, `baram init` making the schema under an advisory lock, and the errors for a database
that cannot be used (an unreachable or silent server, a wrong database, a refused role, a URL
libpq refuses, a schema from a newer baram): a clear message naming host and database, never
the password, exit 2, and never a hang. Each test has a fresh database of the session's
cluster (pg_url) or none at all."""

import socket
import subprocess

import pytest

from conftest import BIN, db_query

SIMPLE = """
dag: simple
tasks:
  first:
    run: echo hello; printf 'a\\0b' > "$BARAM_OUTPUT"
  second:
    needs: [first]
    run: echo "second"
"""


def on(url):
    """The environment that points a command at the database url."""
    return {"BARAM_DB": url}


def applied(url):
    return [n for (n,) in db_query(url, "SELECT number FROM schema_migrations ORDER BY number")]


def test_init_creates_the_schema_and_names_the_database(baram, pg_url, pg_cluster):
    r = baram("init", env=on(pg_url))
    assert r.rc == 0, r
    db = pg_url.split("/")[3].split("?")[0]
    assert "(database PostgreSQL at %s/%s, secret.key)" % (pg_cluster.dir, db) in r.out, r
    assert "postgresql://" not in r.out + r.err
    steps = applied(pg_url)
    assert steps[:3] == [1, 2, 3] and 5 in steps, steps
    at = db_query(pg_url, "SELECT number, applied_at FROM schema_migrations ORDER BY number")
    # Again: nothing applied twice, and the admin made once is kept.
    r = baram("init", env=on(pg_url))
    assert r.rc == 0, r
    assert "already exists" in r.out, r
    assert db_query(pg_url, "SELECT number, applied_at FROM schema_migrations "
                            "ORDER BY number") == at
    assert db_query(pg_url, "SELECT name, role FROM users") == [("admin", "admin")]


def test_opens_at_once_migrate_once(baram, pg_url):
    """Several commands creating the store in a new database together: each succeeds, each
    step is applied once (the advisory lock)."""
    env = dict(baram.env, BARAM_DB=pg_url)
    procs = [subprocess.Popen([BIN, "pools", "set", "p%d" % i, "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert db_query(pg_url, "SELECT count(*) FROM pools") == [(6,)]
    steps = applied(pg_url)
    assert len(steps) == len(set(steps)) and steps[:3] == [1, 2, 3], steps


def test_a_run_on_postgresql_reads_back_like_sqlite(baram, pg_url):
    """The same DAG on both backends gives the same records (bytes of output included)."""
    p = baram.write("simple.yaml", SIMPLE)
    runs = {}
    for name, env in (("sqlite", {"BARAM_DB": str(baram.home / "s.db")}), ("pg", on(pg_url))):
        obj = baram.run_json(p, env=env)
        r = baram("runs", "show", obj["run_id"], "--json", env=env)
        assert r.rc == 0, r
        runs[name] = r.json

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()
                    if k not in ("run_id", "started_at", "ended_at", "queued_at", "logical_date",
                                 "duration_s", "scheduled_at", "pid", "log", "log_path")}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    assert strip(runs["pg"]) == strip(runs["sqlite"])
    assert db_query(pg_url, "SELECT length(output) FROM task_instances WHERE task_id = 'first'") \
        == [(3,)]


def test_wrong_database_is_named_exit_2(baram, pg_cluster):
    url = pg_cluster.url("no_such_db")
    for cmd in (["pools", "list"], ["runs", "list"], ["dags", "list"], ["init"]):
        r = baram(*cmd, env=on(url))
        assert r.rc == 2, (cmd, r)
        assert "PostgreSQL at %s/no_such_db" % pg_cluster.dir in r.err, r
        assert 'database "no_such_db" does not exist' in r.err, r
        assert "postgresql://" not in r.err


def test_refused_role_never_shows_the_password(baram, pg_cluster):
    url = "postgresql://nobody:hunter2-secret@/postgres?host=%s" % pg_cluster.dir
    r = baram("pools", "list", env=on(url))
    assert r.rc == 2, r
    assert "cannot connect to PostgreSQL at %s/postgres" % pg_cluster.dir in r.err, r
    assert 'role "nobody" does not exist' in r.err, r
    assert "hunter2" not in r.out + r.err


def test_unreachable_server_fails_at_once(baram):
    url = "postgres://baram:hunter2-secret@127.0.0.1:1/prod"
    r = baram("runs", "list", env=on(url))
    assert r.rc == 2, r
    assert "cannot connect to PostgreSQL at 127.0.0.1:1/prod" in r.err, r
    assert "hunter2" not in r.out + r.err
    assert r.elapsed < 5, r


@pytest.mark.parametrize("url", [
    "postgresql://baram:hunter2-secret@[::1/prod",
    "postgresql://baram:hunter2-secret@db/prod?no_such_option=1",
])
def test_url_libpq_refuses_is_named_not_echoed(baram, url):
    r = baram("pools", "list", env=on(url))
    assert r.rc == 2, r
    assert "cannot use the PostgreSQL URL: libpq cannot parse it" in r.err, r
    assert "hunter2" not in r.out + r.err


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (the kernel completes the
    handshake; nothing reads): a server that hangs, or a firewall that swallows packets."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def test_silent_server_times_out_in_5_seconds(baram, silent_server):
    url = "postgresql://baram:hunter2-secret@127.0.0.1:%d/prod" % silent_server
    r = baram("pools", "list", env=on(url), timeout=30)
    assert r.rc == 2, r
    assert "cannot connect to PostgreSQL at 127.0.0.1:%d/prod" % silent_server in r.err, r
    assert "timeout" in r.err, r
    assert "hunter2" not in r.out + r.err
    assert 4 <= r.elapsed < 8, r


def test_the_urls_own_connect_timeout_wins(baram, silent_server):
    url = "postgresql://127.0.0.1:%d/prod?connect_timeout=2" % silent_server
    r = baram("pools", "list", env=on(url), timeout=30)
    assert r.rc == 2, r
    assert 1.5 <= r.elapsed < 4, r


def test_a_reader_creates_nothing(baram, pg_url):
    """As on SQLite, where a reading command makes no file: an empty database stays empty."""
    for cmd in (["pools", "list"], ["runs", "list"], ["runs", "cancel", "manual__x"]):
        r = baram(*cmd, env=on(pg_url))
        assert r.rc in (0, 2), r
    r = baram("runs", "cancel", "manual__x", env=on(pg_url))
    assert r.rc == 2 and "no database yet in PostgreSQL at" in r.err, r
    assert db_query(pg_url, "SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = current_schema()") == [(0,)]
    assert baram("pools", "set", "p", "1", env=on(pg_url)).rc == 0
    assert 5 in applied(pg_url)


def test_newer_schema_is_refused(baram, pg_url):
    assert baram("init", env=on(pg_url)).rc == 0
    db_query(pg_url, "INSERT INTO schema_migrations VALUES (9999, 'from_the_future', 0)")
    r = baram("pools", "list", env=on(pg_url))
    assert r.rc == 2, r
    assert "schema version 9999, newer than this baram knows" in r.err, r
    assert "upgrade baram" in r.err, r
