"""Helpers for the tests that drive `baram standalone` (the scheduler daemon).

A Daemon is one `baram standalone` subprocess on a Baram's home and DAG
folder, its stderr going to a file (no pipe to fill up). The `daemons`
fixture hands out a factory and, at teardown, SIGKILLs every daemon a test
started and still running, so no test leaves a process behind. Everything
waits by polling (every 20 ms) with a timeout, never by fixed sleeps.
"""

import itertools
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, remove_scratch, sanitizers

POLL = 0.02

_names = itertools.count()


def worker_name(name):
    """NAME-PID.N, a worker name no other test on this machine uses: a worker kills at its
    start every process tagged with its name on the machine (the tries a previous worker of
    that name left, SPEC section 12), so two test sessions both naming a worker "w1" would
    kill each other's tries."""
    return "%s-%d.%d" % (name, os.getpid(), next(_names))


def worker_short(name):
    """The name worker_name() was given (NAME of NAME-PID.N)."""
    head, _, tail = name.rpartition("-")
    return head if head and tail.replace(".", "").isdigit() else name


def poll(cond, timeout=10.0, step=POLL):
    """Calls cond() until it returns something truthy; returns that (or the last falsy value)."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


class Daemon:
    """One `baram standalone` process on b.home and b.dags (or `baram scheduler` with cmd)."""

    cmd = "standalone"

    def __init__(self, b, args, log_path, cmd=None):
        self.b = b
        if cmd:
            self.cmd = cmd
        self.args = [str(a) for a in args]
        self.log_path = log_path
        self.proc = None
        self.rc = None
        sanitizers.log(log_path, self)

    up = 'msg="scheduler up"'  # what the process logs once it is up

    def argv(self):
        return [BIN, self.cmd, "--dags", str(self.b.dags)] + self.args

    def start(self, wait_up=True, timeout=20.0):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.errf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(),
                                     cwd=str(self.b.dags), env=self.b.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.errf)
        self.errf.close()
        self.rc = None
        if wait_up:
            self.wait_log(self.up, timeout=timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        """stderr of this daemon (this start only)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.mark)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def lines(self, msg):
        """The log lines with msg="MSG" (or msg=MSG)."""
        keys = ('msg="%s"' % msg, "msg=%s " % msg)
        return [ln for ln in self.log().splitlines() if any(k in ln + " " for k in keys)]

    def wait_log(self, text, timeout=10.0, count=1):
        def seen():
            if self.proc.poll() is not None and self.log().count(text) < count:
                raise AssertionError("daemon exited (rc %s) before logging %r:\n%s"
                                     % (self.proc.returncode, text, self.log()))
            return self.log().count(text) >= count
        assert poll(seen, timeout), "no %r in %.1fs:\n%s" % (text, timeout, self.log())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), "daemon died (rc %s):\n%s" % (self.proc.returncode, self.log())

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Sends sig and waits for the exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon did not stop within %.0fs of signal %d:\n%s"
                                 % (timeout, sig, self.log()))
        return self.rc

    def kill9(self):
        self.proc.kill()
        self.rc = self.proc.wait(10)
        return self.rc

    def cpu_ms(self):
        """utime + stime of the daemon, in ms (from /proc/PID/stat)."""
        with open("/proc/%d/stat" % self.pid) as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        return ticks * 1000.0 / os.sysconf("SC_CLK_TCK")


class Worker(Daemon):
    """One `baram worker ARGS` process on b's home (PostgreSQL: it runs the tries that
    `baram scheduler` processes hand out, SPEC section 12)."""

    cmd = "worker"
    up = 'msg="worker up"'

    def argv(self):
        return [BIN, self.cmd] + self.args


class Daemons:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.all = []

    def __call__(self, b, *args, wait_up=True, log_name="daemon.log", cmd=None):
        """Starts `baram standalone ARGS` (or cmd) on b's home and folder; returns the Daemon."""
        d = Daemon(b, args, self.tmp / log_name, cmd)
        self.all.append(d)
        return d.start(wait_up=wait_up)

    def worker(self, b, *args, wait_up=True, log_name="worker.log"):
        """Starts `baram worker ARGS` on b's home; returns it (a Daemon)."""
        w = Worker(b, args, self.tmp / log_name)
        self.all.append(w)
        return w.start(wait_up=wait_up)

    def cleanup(self):
        for d in self.all:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait(10)
        for home in {str(d.b.home) for d in self.all}:
            remove_scratch(home)  # a daemon killed leaves its scratch folder in /dev/shm


@pytest.fixture
def daemons(tmp_path):
    ds = Daemons(tmp_path)
    yield ds
    ds.cleanup()


# ---- reading results through the CLI ----

def runs_list(b, *args):
    r = b("runs", "list", *args, "--limit", "100000", "--json")
    assert r.rc == 0, r
    return json.loads(r.out)["runs"]


def run_show(b, run_id):
    r = b("runs", "show", run_id, "--json")
    assert r.rc == 0, r
    return r.json


def trigger(b, dag, *args):
    r = b("dags", "trigger", dag, *args, "--json")
    assert r.rc == 0, r
    return r.json["run_id"]


ENDED = ("success", "failed", "cancelled")


def wait_run(b, run_id, states=ENDED, timeout=15.0, daemon=None):
    """Polls `runs show` until the run is in one of states; returns its object."""
    last = {}

    def check():
        if daemon is not None:
            daemon.assert_alive()
        last["o"] = run_show(b, run_id)
        return last["o"]["state"] in states
    ok = poll(check, timeout)
    assert ok, "run %s not in %s after %.1fs: %s\n%s" % (
        run_id, states, timeout, last.get("o"), daemon.log() if daemon else "")
    return last["o"]


def wait_file(path, timeout=10.0, lines=None):
    """Waits for path to exist (and to hold at least `lines` lines); returns its text."""
    def check():
        try:
            t = path.read_text()
        except OSError:
            return False
        return lines is None or len(t.splitlines()) >= lines
    assert poll(check, timeout), "%s: not there (or short) after %.1fs: %r" % (
        path, timeout, path.read_text() if path.exists() else None)
    return path.read_text()


def ts_of(run_id):
    """The logical time part of 'scheduled__2026-...Z'."""
    return run_id.split("__", 1)[1]
