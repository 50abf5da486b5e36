"""Helpers for the tests of `baram worker` (SPEC section 12, issue 12): a fleet on one
PostgreSQL database, several worker processes on this machine standing in for several hosts.

A Fleet holds homes h0, h1, ... that share one database and one DAG folder (tmp/dags, the
same absolute path for everyone, as SPEC section 12 asks of the hosts). Each home has a
baram.yaml with the database, the DAG folder and short timings (worker heartbeat 500ms,
dead_after 3s; scheduler heartbeat 1s, dead_after 3s) unless a test asks for the defaults.
`fleet.scheduler()` starts `baram scheduler` (a Daemon of daemon_util, waiting for its
"scheduler up" line); `fleet.worker(name, ...)` starts `baram worker --name NAME` and waits
for its registry row (workers: role 'worker', its name and pid, state 'active'). The `workers`
fixture hands out a Fleet and, at teardown, SIGKILLs (SIGCONT first) every process a test
started and still running, and the processes its tries left (found by their environment,
BARAM_WORKER=<a name of this fleet>). Everything waits by polling with a timeout.

Tasks report what really ran by appending lines to a file (fleet.stamps): the tests count
executions there rather than trust the store, and read the store with db() (psql).
"""

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import daemon_util
from conftest import Baram, db_query, remove_scratch
from daemon_util import Daemon, poll

# A task's command: one line "<BARAM_TASK> <BARAM_TRY> <BARAM_WORKER> <pid> <ms since epoch>"
# appended to the fleet's stamps file when it starts ("s") and when it ends ("e").
STAMP = ('echo "{what} $BARAM_TASK $BARAM_TRY ${{BARAM_WORKER:-none}} $$ $(date +%s%3N)" '
         '>> {file}')

_fleets = itertools.count(1)

SHORT = {"heartbeat": "500ms", "dead_after": "3s"}


class Scheduler(Daemon):
    cmd = "scheduler"


class Worker(daemon_util.Worker):
    """One `baram worker --name NAME ARGS` process on a home (a Baram), its stderr going to
    log_path; up once its registry row is active (not only its "worker up" line)."""

    def __init__(self, fleet, b, name, args, log_path):
        super().__init__(b, ["--name", name] + list(args), Path(log_path))
        self.fleet = fleet
        self.name = name

    def start(self, wait_up=True, timeout=20.0):
        super().start(wait_up=False)
        if wait_up:
            self.wait_state("active", timeout)
        return self

    def row(self):
        """This process's registry row: (id, state, slots, queues as text, log_url), or None."""
        rows = self.fleet.db("SELECT id, state, slots, array_to_string(queues, ','), log_url "
                             "FROM workers WHERE role = 'worker' AND name = ? AND pid = ? "
                             "ORDER BY id DESC LIMIT 1", self.name, self.pid)
        return rows[0] if rows else None

    def rows(self):
        """Every registry row of this name (any process): [(id, pid, state)] oldest first."""
        return self.fleet.db("SELECT id, pid, state FROM workers WHERE role = 'worker' AND "
                             "name = ? ORDER BY id", self.name)

    def state(self):
        r = self.row()
        return r[1] if r else None

    def wait_state(self, state, timeout=20.0):
        def seen():
            if self.proc.poll() is not None and state not in ("stopped", "dead"):
                raise AssertionError("worker %s exited (rc %s) before being %s:\n%s"
                                     % (self.name, self.proc.returncode, state, self.log()))
            return self.state() == state
        assert poll(seen, timeout, step=0.05), "worker %s not %s after %.0fs (row %s):\n%s" % (
            self.name, state, timeout, self.row(), self.log())

    def running(self):
        """(run_id, task_id, try_number) of the ti_queue rows this process has claimed."""
        r = self.row()
        if not r:
            return []
        return self.fleet.db("SELECT run_id, task_id, try_number FROM ti_queue WHERE "
                             "worker_id = ? AND state = 'running' ORDER BY task_id", r[0])

    def send(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=30.0):
        """Waits for the exit (no signal sent); returns the exit code."""
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("worker %s still running after %.0fs:\n%s"
                                 % (self.name, timeout, self.log()))
        return self.rc


def write_yaml(home, url, dags, beats=SHORT, sched=SHORT, extra=""):
    """home/baram.yaml: the database, the DAG folder, the timings (None: the defaults)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    text = "db: %s\ndags: %s\n" % (url, dags)
    if sched:
        text += "scheduler: {heartbeat: 1s, dead_after: %s}\n" % sched["dead_after"]
    if beats:
        text += "worker: {heartbeat: %s, dead_after: %s}\n" % (beats["heartbeat"],
                                                               beats["dead_after"])
    (home / "baram.yaml").write_text(text + extra)


class Fleet:
    """Homes on one PostgreSQL database with one DAG folder; schedulers and workers on them."""

    def __init__(self, tmp_path, url, daemons, short=True, extra_yaml=""):
        self.tmp = Path(tmp_path)
        self.url = url
        self.daemons = daemons
        self.dags = self.tmp / "dags"
        self.dags.mkdir(exist_ok=True)
        self.stamps = self.tmp / "stamps.log"
        self.stamps.touch()
        self.short = short
        self.extra_yaml = extra_yaml
        self.homes = []
        self.workers = []
        self.names = set()
        # worker names are unique on this machine (other test sessions may run beside us):
        # the cleanup kills the processes whose environment names one of them
        self.tag = "%d.%d" % (os.getpid(), next(_fleets))

    def home(self, i=0):
        """Home i (h0, h1, ...), made on first use; h0 is `baram init`-ed (an admin, a key)."""
        while len(self.homes) <= i:
            h = self.tmp / ("h%d" % len(self.homes))
            write_yaml(h, self.url, self.dags, SHORT if self.short else None,
                       SHORT if self.short else None, self.extra_yaml)
            b = Baram(h, self.dags)
            # the home's baram.yaml names the database: nothing from the test session's env
            b.env.pop("BARAM_DB", None)
            b.env.pop("BARAM_DAGS", None)
            if not self.homes:
                r = b("init", env={"BARAM_ADMIN_PASSWORD": "admin-pw-for-tests"})
                assert r.rc == 0, r
            self.homes.append(b)
        return self.homes[i]

    @property
    def b(self):
        return self.home(0)

    def scheduler(self, i=0, *args, cmd="scheduler"):
        """Starts `baram scheduler` (or cmd) on home i; returns the Daemon once it is up."""
        d = Daemon(self.home(i), list(args), self.tmp / ("%s%d.log" % (cmd, i)), cmd)
        self.daemons.all.append(d)
        return d.start()

    def worker(self, name, *args, home=0, queues=None, slots=None, wait_up=True):
        """Starts `baram worker --name NAME-TAG [--queues Q] [--slots N] ARGS` on home i (TAG
        makes the name unique on the machine; w.name is the whole name)."""
        name = "%s-%s" % (name, self.tag)
        a = []
        if queues:
            a += ["--queues", queues]
        if slots:
            a += ["--slots", str(slots)]
        a += list(args)
        w = Worker(self, self.home(home), name, a, self.tmp / ("worker-%s.log" % name))
        self.workers.append(w)
        self.names.add(name)
        return w.start(wait_up=wait_up)

    def restart(self, w, wait_up=True):
        """A new process for the worker w (same name, home and arguments)."""
        n = Worker(self, w.b, w.name, w.args[2:], w.log_path)
        self.workers.append(n)
        return n.start(wait_up=wait_up)

    def write(self, name, text):
        """A DAG file; STAMP_S / STAMP_E in it become the start / end stamp commands."""
        text = text.replace("STAMP_S", STAMP.format(what="s", file=self.stamps))
        text = text.replace("STAMP_E", STAMP.format(what="e", file=self.stamps))
        p = self.dags / name
        p.write_text(text)
        return p

    def trigger(self, dag):
        r = self.b("dags", "trigger", dag, "--json")
        assert r.rc == 0, r
        return r.json["run_id"]

    def db(self, sql, *args):
        return db_query(self.url, sql, *args)

    def ti(self, run_id, task_id):
        """(state, try_number, message) of a task instance in the store, or None."""
        rows = self.db("SELECT state, try_number, message FROM task_instances "
                       "WHERE run_id = ? AND task_id = ?", run_id, task_id)
        return rows[0] if rows else None

    def stamped(self, what=None, task=None):
        """The stamp lines: [(what, task, try, worker, pid, ms)]."""
        out = []
        for line in self.stamps.read_text().splitlines():
            f = line.split()
            if len(f) != 6:
                continue
            row = (f[0], f[1], int(f[2]), f[3], int(f[4]), int(f[5]))
            if (what is None or row[0] == what) and (task is None or row[1] == task):
                out.append(row)
        return out

    def registry(self):
        """`baram workers list --json` on h0: the worker objects."""
        r = self.b("workers", "list", "--json")
        assert r.rc == 0, r
        return r.json["workers"]

    def cleanup(self):
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                try:
                    w.proc.send_signal(signal.SIGCONT)
                except OSError:
                    pass
                w.proc.kill()
                w.proc.wait(10)
        kill_tries_of(self.names)
        for b in self.homes:
            remove_scratch(b.home)


def tries_of(names):
    """pids of the processes whose environment holds BARAM_WORKER=<one of names>."""
    want = {("BARAM_WORKER=%s" % n).encode() for n in names}
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = set(f.read().split(b"\0"))
        except OSError:
            continue
        if env & want:
            pids.append(int(d))
    return pids


def kill_tries_of(names):
    """Test cleanup: SIGKILLs what the tries of this test's workers left running."""
    for pid in tries_of(names):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.fixture
def workers(tmp_path, pg_url, daemons):
    """A Fleet on a fresh database of the session's cluster, short timings."""
    f = Fleet(tmp_path, pg_url, daemons)
    yield f
    f.cleanup()


def wait_until(cond, timeout, what, step=0.1):
    """poll(cond) or an AssertionError naming what was awaited."""
    t = time.monotonic()
    v = poll(cond, timeout, step)
    assert v, "%s: not within %.1fs" % (what, time.monotonic() - t)
    return v
