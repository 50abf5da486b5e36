"""Shared fixtures for the end-to-end tests: they drive the real `baram` binary.

The binary comes from $BARAM_BIN (scripts/test-all sets it), default
build/asan/baram under the repository root. Every test gets a fresh home
(BARAM_HOME, plus --home where a test checks the flag) and a fresh folder for
its DAG files (tmp_path/dags: the tasks run there, so relative paths in `run`
land in that folder). Every subprocess call is bounded (timeout 60 s).

Sanitizer reports fail the test: the sanitizers exit with SAN_EXIT (not 1,
which is baram's "the work failed"), and the stderr of every CLI call through
Baram, and the log file of every daemon and API server the helpers start, is
searched for a report; one found fails the test during which it was printed
(at its teardown), whatever the test itself asserted.

The store: SQLite by default (HOME/baram.db). With BARAM_TEST_DB=pg every home made here
(base_env, so Baram and the daemon/API helpers too) gets BARAM_DB = a fresh, empty database of
a PostgreSQL cluster: the one whose socket folder $BARAM_TEST_PG names, else a throwaway one
started by scripts/pg-cluster for the session. db_query() reads either store. Markers:
`sqlite_only` (what PostgreSQL has no equivalent of: the file, its permissions, WAL) is
deselected with BARAM_TEST_DB=pg; `pg_only` (needs a cluster: fixtures pg_url, pg_private) is
deselected with BARAM_TEST_DB=sqlite, and runs when BARAM_TEST_DB is unset. scripts/test-all
runs the suite once with each value.
"""

import atexit
import datetime
import itertools
import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("BARAM_BIN") or str(ROOT / "build" / "asan" / "baram")
TIMEOUT = 60

TASK_KEYS = {"state", "tries", "exit_code", "output", "started_at", "ended_at", "duration_s"}
RUN_KEYS = {"dag", "run_id", "state", "started_at", "ended_at", "tasks"}
FINISHED = ("success", "failed", "skipped", "upstream_failed")
TI_STATES = FINISHED + ("none", "scheduled", "queued", "running", "up_for_retry")
RUN_ID_RE = re.compile(r"manual__[0-9T:.\-+Z]+")

SAN_EXIT = 86  # also in scripts/test-all
TEST_TIMEOUT = 120  # s, one test with its fixtures (the slowest takes 11 s); also in test-all
SANITIZER_RE = re.compile(r"ERROR: (?:AddressSanitizer|LeakSanitizer)|runtime error:")


def _sanitizer_exitcode(name, default):
    """$name (or default when unset) choosing exitcode=SAN_EXIT unless it chooses one."""
    opts = os.environ.get(name) or default
    if not re.search(r"(^|:)exitcode=", opts):
        opts += ":exitcode=%d" % SAN_EXIT
    os.environ[name] = opts


_sanitizer_exitcode("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
_sanitizer_exitcode("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")


class SanitizerWatch:
    """The sanitizer reports in what baram printed, since the last take().

    output() searches one call's stderr; log(path, owner) adds a log file that a process
    (owner.proc) writes, read from where the last take() stopped, and let go once the
    process has ended and its last lines were read."""

    def __init__(self):
        self.found = []
        self.read = {}  # log path -> bytes already searched
        self.owners = []  # (log path, object with .proc)

    def output(self, what, text):
        if text and SANITIZER_RE.search(text):
            self.found.append("--- %s\n%s" % (what, text))

    def log(self, path, owner):
        path = str(path)
        self.read.setdefault(path, 0)
        if not any(p == path and o is owner for p, o in self.owners):
            self.owners.append((path, owner))

    def take(self):
        """The reports found since the last call (texts); forgets them."""
        still = []
        for path, owner in self.owners:
            ended = owner.proc is None or owner.proc.poll() is not None
            try:
                with open(path, "rb") as f:
                    f.seek(self.read[path])
                    data = f.read()
            except OSError:
                data = b""
            self.read[path] += len(data)
            self.output(path, data.decode("utf-8", "replace"))
            if not ended:
                still.append((path, owner))
        self.owners = still
        found, self.found = self.found, []
        return found


sanitizers = SanitizerWatch()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After the test's fixtures are gone (daemons stopped, leaks reported): fails it if baram
    printed a sanitizer report meanwhile."""
    yield
    found = sanitizers.take()
    if found:
        pytest.fail("baram printed a sanitizer report:\n" + "\n".join(found), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    """A report printed after the last test's teardown still fails the run."""
    found = sanitizers.take()
    if found:
        print("\nbaram printed a sanitizer report after the last test:\n" + "\n".join(found))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ---- PostgreSQL ---------------------------------------------------------------------------

TEST_DB = os.environ.get("BARAM_TEST_DB", "")  # "", "sqlite" or "pg"
if TEST_DB not in ("", "sqlite", "pg"):
    raise SystemExit("BARAM_TEST_DB must be sqlite or pg, not %r" % TEST_DB)
ON_PG = TEST_DB == "pg"
PG_CLUSTER_SCRIPT = str(ROOT / "scripts" / "pg-cluster")
PG_FIXTURES = {"pg_url", "pg_private", "pg_cluster"}  # a test using one is pg_only


def _pg_env():
    """os.environ without libpq's PG* settings, which would redirect psql."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


class PgCluster:
    """A PostgreSQL cluster whose Unix socket is in self.dir (scripts/pg-cluster): databases
    made and dropped with psql, stopped and restarted as a test needs (pg_private). One it
    starts has fsync off: a commit survives a crash of the server (pg_ctl -m immediate), which
    is all a test can cause, and databases are made 2-3x faster."""

    _names = itertools.count(1)

    def __init__(self, dir=None):
        """dir: the socket folder of a running cluster to use; None starts a new one."""
        self.owned = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="baram-pg.", dir="/tmp")
        if self.owned:
            self._script("start", "--no-fsync")

    def _script(self, *args):
        r = subprocess.run([PG_CLUSTER_SCRIPT, args[0], self.dir] + list(args[1:]),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("scripts/pg-cluster %s: %s" % (" ".join(args), r.stderr.strip()))

    def stop(self, immediate=False):
        self._script("stop", *(["--immediate"] if immediate else []))

    def start(self):
        self._script("start")  # as it was started: fsync off

    def restart(self, immediate=False):
        self._script("restart", *(["--immediate"] if immediate else []))

    def destroy(self):
        if self.owned:
            self._script("destroy")

    def url(self, name):
        return "postgresql:///%s?host=%s&user=postgres" % (name, self.dir)

    def psql(self, sql, db="postgres", variables=(), timeout=TIMEOUT):
        """Runs sql (read from stdin, so :'name' takes a variable) in db; returns stdout."""
        cmd = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.dir,
               "-U", "postgres", "-d", db, "-f", "-"]
        for k, v in variables:
            cmd += ["-v", "%s=%s" % (k, v)]
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout,
                           env=_pg_env())
        if r.returncode != 0:
            raise RuntimeError("psql on %s: %s\n%s" % (db, r.stderr.strip(), sql))
        return r.stdout

    def create_db(self):
        """A new empty database (from the cluster's empty baram_template); its name."""
        name = "t_%d_%d" % (os.getpid(), next(self._names))
        self.psql("CREATE DATABASE %s TEMPLATE baram_template" % name)
        return name

    def drop_db(self, name):
        """Drops it, cutting off whatever is still connected (a daemon a test leaked)."""
        self.psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


class DbPool:
    """Fresh databases of a cluster made ahead, and dropped, by a thread of its own, so that a
    test waits for neither (each takes 0.1-0.5 s on a loaded 2-core machine)."""

    def __init__(self, pg, ahead=2):
        self.pg = pg
        self.ready = queue.Queue()  # names, or the exception a CREATE raised
        self.jobs = queue.Queue()  # ("create", None), ("drop", name), ("stop", None)
        self.thread = threading.Thread(target=self._work, name="db-pool", daemon=True)
        self.thread.start()
        for _ in range(ahead):
            self.jobs.put(("create", None))

    def _work(self):
        while True:
            kind, name = self.jobs.get()
            if kind == "stop":
                return
            try:
                if kind == "create":
                    self.ready.put(self.pg.create_db())
                else:
                    self.pg.drop_db(name)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                if kind == "create":
                    self.ready.put(e)
                else:
                    print("conftest: cannot drop the database %s: %s" % (name, e))

    def take(self):
        """A fresh empty database's name (another is made to replace it)."""
        self.jobs.put(("create", None))
        got = self.ready.get(timeout=TIMEOUT)
        if isinstance(got, Exception):
            raise got
        return got

    def give_back(self, name):
        """Drops it, later."""
        self.jobs.put(("drop", name))

    def close(self):
        """Drops the databases made ahead; returns once every drop asked for is done."""
        self.jobs.put(("stop", None))
        self.thread.join(TIMEOUT)
        while not self.ready.empty():
            got = self.ready.get()
            if not isinstance(got, Exception):
                self.pg.drop_db(got)


_session_pg = None  # the session's PgCluster, made on first use
_session_pool = None  # its DbPool
_home_dbs = {}  # real path of a home -> (PgCluster, database) on PostgreSQL
_test_dbs = None  # databases made during the current test (dropped after it), or None


def session_pg():
    """The session's cluster: $BARAM_TEST_PG's, else one started now (stopped at exit)."""
    global _session_pg
    if _session_pg is None:
        _session_pg = PgCluster(os.environ.get("BARAM_TEST_PG") or None)
    return _session_pg


def session_pool():
    """The DbPool of the session's cluster."""
    global _session_pool
    if _session_pool is None:
        _session_pool = DbPool(session_pg())
    return _session_pool


def _drop_session_dbs():
    """At the end: drops the databases still there, stops a cluster the session started."""
    if _session_pg is None:
        return
    if _session_pool is not None:
        if not _session_pg.owned:  # else destroy() removes them all
            for _, name in _home_dbs.values():
                _session_pool.give_back(name)
        _session_pool.close()
    _home_dbs.clear()
    _session_pg.destroy()


atexit.register(_drop_session_dbs)


def home_db(home):
    """On PostgreSQL: the URL of home's database (made on first use); None on SQLite."""
    if not ON_PG:
        return None
    key = os.path.realpath(str(home))
    if key not in _home_dbs:
        _home_dbs[key] = (session_pg(), session_pool().take())
        if _test_dbs is not None:
            _test_dbs.append(key)
    pg, name = _home_dbs[key]
    return pg.url(name)


@pytest.fixture(autouse=True)
def _drop_test_dbs():
    """Drops the databases of the homes a test made (after its other fixtures are gone);
    those of module fixtures' homes stay until the end of the session."""
    global _test_dbs
    _test_dbs = []
    yield
    made, _test_dbs = _test_dbs, None
    for key in made:
        session_pool().give_back(_home_dbs.pop(key)[1])


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's PostgreSQL cluster (PgCluster; .dir is its socket folder). Shared by every
    test (and by every pass of scripts/test-all): never stop or restart it; use pg_private."""
    return session_pg()


@pytest.fixture
def pg_url(pg_cluster):
    """The URL of a fresh, empty database, dropped after the test."""
    name = session_pool().take()
    yield pg_cluster.url(name)
    session_pool().give_back(name)


@pytest.fixture
def pg_private():
    """A cluster of the test's own (about 1 s to start), for a test that stops or restarts
    the server; destroyed after it."""
    pg = PgCluster()
    yield pg
    pg.destroy()


def _pg_literals(sql, args):
    """sql with each ? outside quotes made a psql variable :'pN' (NULL for None); the
    (name, value) pairs."""
    out, variables, n, quote = [], [], 0, None
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            if n >= len(args):
                raise ValueError("more ? than arguments in %r" % sql)
            v = args[n]
            n += 1
            if v is None:
                out.append("NULL")
                continue
            if isinstance(v, bool):
                v = int(v)
            out.append(":'p%d'" % n)
            variables.append(("p%d" % n, str(v)))
            continue
        out.append(ch)
    if n != len(args):
        raise ValueError("%d arguments for %d ? in %r" % (len(args), n, sql))
    return "".join(out), variables


def _home_of(where):
    """A home folder or URL as is; the home of a Baram (or any object with .home)."""
    return where if isinstance(where, (str, os.PathLike)) else where.home


def db_query(where, sql, *args):
    """The rows (tuples) of sql, with ? placeholders for args, on the store of where: a Baram,
    a home folder or a postgresql:// URL. On SQLite it is HOME/baram.db; on PostgreSQL the
    home's database, the statement run by psql (keep to SQL both know). A statement that is not
    a SELECT/WITH returns []."""
    home = _home_of(where)
    url = str(home) if str(home).startswith(("postgresql://", "postgres://")) else home_db(home)
    if url is None:
        with sqlite3.connect(str(Path(home) / "baram.db"), timeout=10) as c:
            rows = c.execute(sql, args).fetchall()
        c.close()
        return rows
    m = re.fullmatch(r"postgres(?:ql)?:///(\w+)\?host=([^&]+)&user=postgres", url)
    assert m, "db_query knows only the tests' own URLs: %s" % url
    pg = PgCluster(m.group(2))
    text, variables = _pg_literals(sql.strip().rstrip(";"), args)
    if not re.match(r"(?is)\s*(select|with)\b", text):
        pg.psql(text + ";", db=m.group(1), variables=variables)
        return []
    # \gdesc: the columns' types first (bytea comes back as bytes, as a BLOB does from sqlite3)
    out = pg.psql("%s\n\\gdesc\n\\echo @rows@\nSELECT coalesce(json_agg(q), '[]') FROM (%s) q;"
                  % (text, text), db=m.group(1), variables=variables)
    desc, rows = out.split("@rows@\n", 1)
    types = [line.rsplit("|", 1)[1] for line in desc.splitlines()]
    rows = json.loads(rows, object_pairs_hook=lambda pairs: [v for _, v in pairs])
    return [tuple(bytes.fromhex(v[2:]) if t == "bytea" and v is not None else v
                  for t, v in zip(types, row)) for row in rows]


def db_env(home):
    """The environment that gives a command home's store when another home than the Baram's
    is chosen (--home, BARAM_HOME): {} on SQLite (the store is in the home), else BARAM_DB."""
    url = home_db(home)
    return {"BARAM_DB": url} if url else {}


def db_created(where):
    """Whether baram made its store for where (a Baram or a home): on SQLite HOME/baram.db
    exists, on PostgreSQL the home's (pre-made, empty) database has a table."""
    home = _home_of(where)
    if not ON_PG:
        return (Path(home) / "baram.db").exists()
    return db_query(home, "SELECT count(*) FROM information_schema.tables "
                          "WHERE table_schema = current_schema()") != [(0,)]


def db_shell(where, sql):
    """A shell command (for a task's `run`) printing the rows of sql, one a line, columns
    separated by |, from the store of where (a Baram or a home): sqlite3 or psql."""
    home = _home_of(where)
    url = home_db(home)
    if url is None:
        return 'sqlite3 -cmd ".timeout 5000" "%s" "%s"' % (Path(home) / "baram.db", sql)
    return 'psql -X -q -At "%s" -c "%s"' % (url, sql)


def base_env(home):
    """os.environ without any BARAM_* setting of the caller, with BARAM_HOME=home (and, with
    BARAM_TEST_DB=pg, BARAM_DB=home's database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BARAM_")}
    env["BARAM_HOME"] = str(home)
    url = home_db(home)
    if url:
        env["BARAM_DB"] = url
    return env


class Result:
    def __init__(self, proc, elapsed):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.elapsed = elapsed

    @property
    def json(self):
        """stdout must be exactly one JSON object."""
        try:
            obj = json.loads(self.out)
        except ValueError as e:
            raise AssertionError("stdout is not one JSON object (%s):\n%s\nstderr:\n%s"
                                 % (e, self.out, self.err))
        assert isinstance(obj, dict), self.out
        return obj

    def __repr__(self):
        return "Result(rc=%r, %.2fs)\n--- stdout\n%s\n--- stderr\n%s" % (
            self.rc, self.elapsed, self.out, self.err)


class WatchedPopen(subprocess.Popen):
    """A baram subprocess whose stderr, as communicate() returns it, goes to the sanitizer
    watch."""

    def communicate(self, *args, **kw):
        out, err = super().communicate(*args, **kw)
        sanitizers.output("baram " + " ".join(map(str, self.args[1:])), err)
        return out, err


class Baram:
    """Runs the binary with a fixed home; cwd defaults to the DAG folder."""

    def __init__(self, home, dags):
        self.home = Path(home)
        self.dags = Path(dags)
        self.env = base_env(self.home)

    def __call__(self, *args, timeout=TIMEOUT, env=None, cwd=None, input=None):
        e = dict(self.env)
        if env:
            e.update(env)
        t = time.monotonic()
        proc = subprocess.run([BIN] + [str(a) for a in args], cwd=str(cwd or self.dags),
                              env=e, input=input, capture_output=True, text=True,
                              errors="replace", timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)
        sanitizers.output("baram " + " ".join(str(a) for a in args), proc.stderr)
        return Result(proc, time.monotonic() - t)

    def popen(self, *args, cwd=None):
        """The stderr that communicate() returns is searched for sanitizer reports."""
        return WatchedPopen([BIN] + [str(a) for a in args], cwd=str(cwd or self.dags),
                            env=self.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")

    def write(self, name, text):
        """Writes a DAG (or any) file into the DAG folder, dedented; returns its path."""
        p = self.dags / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
        return p

    def run(self, path, *args, **kw):
        return self("run", path, *args, **kw)

    def run_json(self, path, *args, expect_rc=0, **kw):
        """`baram run PATH ARGS --json`: checks the exit code and the JSON shape."""
        r = self("run", path, *args, "--json", **kw)
        assert r.rc == expect_rc, r
        obj = r.json
        check_run_shape(obj)
        return obj

    def run_dir(self, obj):
        """HOME/logs/<dag>/<run_id>/ of a run's JSON object: where its logs are."""
        return self.home / "logs" / obj["dag"] / obj["run_id"]

    def try_log(self, obj, task, try_number=1):
        """The log file of a try of task (`x[3]` for a mapped instance) in a run's JSON object."""
        return try_log_path(self.home, obj["dag"], obj["run_id"], task, try_number)

    def run_ids(self, *args):
        r = self("runs", "list", *args)
        assert r.rc == 0, r
        return RUN_ID_RE.findall(r.out)


def try_log_path(home, dag, run_id, task, try_number=1):
    """HOME/logs/<dag>/<run_id>/<task>.<try>.log (SPEC section 4, the flat layout); a mapped
    instance `x[3]` is `x.3.<try>.log`."""
    m = re.fullmatch(r"(.*)\[(\d+)\]", task)
    name = "%s.%s" % (m.group(1), m.group(2)) if m else task
    return Path(home) / "logs" / dag / run_id / ("%s.%d.log" % (name, try_number))


ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def parse_ts(s):
    """An ISO 8601 UTC timestamp from the JSON to seconds since the epoch."""
    assert isinstance(s, str) and ISO_RE.match(s), "not an ISO 8601 time: %r" % (s,)
    s = s.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


def check_run_shape(obj):
    """SPEC section 3: the object of `baram run --json` and `runs show --json`."""
    missing = RUN_KEYS - set(obj)
    assert not missing, "run object lacks %s: %s" % (missing, obj)
    assert isinstance(obj["dag"], str) and obj["dag"]
    assert obj["run_id"].startswith("manual__"), obj["run_id"]
    assert obj["state"] in ("success", "failed", "cancelled"), obj["state"]
    parse_ts(obj["started_at"])
    parse_ts(obj["ended_at"])
    assert parse_ts(obj["ended_at"]) >= parse_ts(obj["started_at"])
    assert isinstance(obj["tasks"], dict)
    for name, t in obj["tasks"].items():
        missing = TASK_KEYS - set(t)
        assert not missing, "task %s lacks %s: %s" % (name, missing, t)
        allowed = FINISHED if obj["state"] != "cancelled" else TI_STATES
        assert t["state"] in allowed, (name, t)
        assert isinstance(t["tries"], int) and t["tries"] >= 0, (name, t)
        if t["tries"] > 0 and t["state"] in FINISHED:
            parse_ts(t["started_at"])
            parse_ts(t["ended_at"])
            assert isinstance(t["duration_s"], (int, float)) and t["duration_s"] >= 0, (name, t)
            assert isinstance(t["exit_code"], int) or t["exit_code"] is None, (name, t)
        assert t["output"] is None or isinstance(t["output"], str), (name, t)


def states(obj):
    return {name: t["state"] for name, t in obj["tasks"].items()}


def alive(pid):
    """True if pid is a live (non-zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] not in "ZX"
    except (OSError, ValueError, IndexError):
        return False


def read_pids(folder, pattern="*.pid"):
    pids = []
    for p in Path(folder).glob(pattern):
        for word in p.read_text().split():
            pids.append(int(word))
    return pids


def kill_pids(pids):
    """Test cleanup: kills processes the test itself caused to be started."""
    for pid in pids:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def wait_for(cond, timeout=20.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def read_events(path):
    """Lines 'NAME start|end EPOCH' written by tasks -> {name: {'start': t, 'end': t}}."""
    ev = {}
    for line in Path(path).read_text().splitlines():
        name, what, t = line.split()
        ev.setdefault(name, {})[what] = float(t)
    return ev


# A shell snippet a task uses to stamp start/end times into events.log.
def stamp(what, name="$BARAM_TASK"):
    return 'echo "%s %s $(date +%%s.%%N)" >> events.log' % (name, what)


SHM = "/dev/shm"


def scratch_of(home):
    """The scratch folder baram uses for home: FNV-1a (64 bits) of the home's real path."""
    h = 0xcbf29ce484222325
    for byte in os.path.realpath(home).encode():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return os.path.join(SHM, "baram-%d" % os.geteuid(), "%016x" % h)


def remove_scratch(home):
    """What a baram killed mid-try left of home in /dev/shm (one that stops removes it)."""
    shutil.rmtree(scratch_of(home), ignore_errors=True)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    yield h
    remove_scratch(h)


@pytest.fixture
def baram(tmp_path, home):
    dags = tmp_path / "dags"
    dags.mkdir()
    return Baram(home, dags)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """A hung test fails alone, after TEST_TIMEOUT, rather than stalling the run: pytest-timeout's
    limit unless one was chosen (--timeout, PYTEST_TIMEOUT, ini). scripts/test-all passes
    --timeout itself, so there a missing plugin is an error, not a run without limits."""
    if (config.pluginmanager.hasplugin("timeout") and config.getoption("timeout") is None
            and not os.environ.get("PYTEST_TIMEOUT") and not config.getini("timeout")):
        config.option.timeout = TEST_TIMEOUT
    config.addinivalue_line("markers", "sqlite_only(reason): a test of the SQLite file itself "
                            "(permissions, WAL, corruption); deselected with BARAM_TEST_DB=pg")
    config.addinivalue_line("markers", "pg_only: needs a PostgreSQL cluster (pg_url, "
                            "pg_private); deselected with BARAM_TEST_DB=sqlite")


def pytest_report_header(config):
    where = "SQLite"
    if ON_PG:
        where = "PostgreSQL (%s)" % (os.environ.get("BARAM_TEST_PG") or "a cluster of its own")
    return "baram binary: %s; store: %s" % (BIN, where)


def pytest_collection_modifyitems(config, items):
    """Deselects (never counts as passed) what the chosen store cannot run: sqlite_only
    tests on PostgreSQL, pg_only tests with BARAM_TEST_DB=sqlite. A test using a fixture
    pg_url, pg_private or pg_cluster is pg_only."""
    for it in items:
        if PG_FIXTURES & set(getattr(it, "fixturenames", ())) and not it.get_closest_marker("pg_only"):
            it.add_marker(pytest.mark.pg_only)
    drop = "sqlite_only" if ON_PG else "pg_only" if TEST_DB == "sqlite" else None
    if not drop:
        return
    keep = [it for it in items if it.get_closest_marker(drop) is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[it for it in items if it not in keep])
        items[:] = keep
