"""`baram standalone`, the scheduler daemon (SPEC sections 3-5), end to end.

Each test starts the real daemon (daemon_util.Daemon) on a fresh home and
DAG folder, drives it with the real CLI (`dags trigger|pause|unpause|
backfill`, `runs cancel`, `tasks clear`, `pools set`) and signals, and reads
the results through `runs list/show --json`, `dags list --json`, the
database, the daemon's log and files the tasks write. Shown here: trigger
latency; hot reload (add, modify, garbage and fix, delete, rename, id change,
duplicate ids, schedule change, 40 files at once, half-written files); a run
keeping its DAG version (while running, after kill -9, on clear); pause;
cron catchup and `end` within max_active_runs; pools (across runs, resized,
zero slots) and priorities; backfill; tasks clear (with and without a
daemon); runs cancel (running, queued, in a retry delay); timeouts; kill -9
recovery (orphans killed, no tries left, during catchup, before the
'running' record); SIGTERM, a second signal, SIGHUP; the home lock and
flags; idle CPU; DAG hooks. Polling every 20 ms with timeouts; the few
fixed sleeps wait for something that must NOT happen (a tick, a retry).
"""

import datetime
import hashlib
import json
import os
import signal
import sqlite3
import statistics
import textwrap
import time

import pytest

from conftest import ON_PG, alive, db_query, db_shell, parse_ts, try_log_path
from daemon_util import (daemons, poll, run_show, runs_list, trigger, ts_of,  # noqa: F401
                         wait_file, wait_run)


@pytest.fixture
def b(baram):
    baram.env["BARAM_DAGS"] = str(baram.dags)
    return baram


def events(path):
    """Lines 'NAME start|end EPOCH' -> list of (name, start, end) in start order."""
    ev = {}
    for line in path.read_text().splitlines():
        name, what, t = line.split()
        ev.setdefault(name, {})[what] = float(t)
    out = [(n, e.get("start"), e.get("end")) for n, e in ev.items()]
    return sorted(out, key=lambda x: x[1])


def max_overlap(spans):
    """The most spans (start, end) open at one moment."""
    pts = sorted([(s, 1) for _, s, _ in spans] + [(e, -1) for _, _, e in spans],
                 key=lambda p: (p[0], p[1]))
    cur = best = 0
    for _, d in pts:
        cur += d
        best = max(best, cur)
    return best


STAMP = 'echo "%s start $(date +%%s.%%N)" >> %s; sleep %s; echo "%s end $(date +%%s.%%N)" >> %s'


def stamped(name, log="events.log", sleep="0.2"):
    return STAMP % (name, log, sleep, name, log)


# ---- 1. trigger latency ------------------------------------------------------------------

def test_trigger_runs_within_100ms(b, daemons):
    b.write("quick.yaml", """
        dag: quick
        params: {n: "0"}
        tasks:
          a:
            run: date +%s.%N > "start.$PARAM_N"
          b:
            needs: [a]
            run: "true"
        """)
    d = daemons(b)
    lat, pick = [], []
    for i in range(5):
        r = b("dags", "trigger", "quick", "--conf", '{"n": "%d"}' % i, "--json")
        t_exit = time.time()
        assert r.rc == 0, r
        o = wait_run(b, r.json["run_id"], daemon=d)
        assert o["state"] == "success", o
        t_task = float((b.dags / ("start.%d" % i)).read_text())
        # The task may start before the CLI has even exited (the doorbell rings first).
        lat.append((t_task - t_exit) * 1000)
        # Queued (the time in the run id) -> started_at, both stamped by baram.
        pick.append((parse_ts(o["started_at"]) - parse_ts(o["run_id"].split("__")[1])) * 1000)
    msg = ("trigger exit -> task start, ms: %s (median %.1f); queued -> run started, ms: %s "
           "(median %.1f)" % (", ".join("%.1f" % x for x in lat), statistics.median(lat),
                              ", ".join("%.0f" % x for x in pick), statistics.median(pick)))
    print(msg)
    assert statistics.median(lat) < 100, msg
    assert statistics.median(pick) < 100, msg
    assert len(d.lines("run started")) == 5, d.log()
    d.assert_alive()
    assert d.stop() == 0, d.log()


# ---- 2. hot reload -----------------------------------------------------------------------

SIMPLE = """
dag: %s
tasks:
  a:
    run: echo %s >> %s.out
"""


def test_new_dag_file_is_picked_up(b, daemons):
    b.write("one.yaml", SIMPLE % ("one", "x", "one"))
    d = daemons(b)
    b.write("two.yaml", SIMPLE % ("two", "hello", "two"))
    t0 = time.monotonic()
    run_id = trigger(b, "two")
    o = wait_run(b, run_id, timeout=5, daemon=d)
    took = time.monotonic() - t0
    assert o["state"] == "success", o
    assert (b.dags / "two.out").read_text() == "hello\n"
    assert took < 1.5, "the new DAG's run took %.2fs" % took
    assert d.stop() == 0


def test_modified_dag_runs_the_new_command(b, daemons):
    b.write("m.yaml", SIMPLE % ("m", "old", "m"))
    d = daemons(b)
    o = wait_run(b, trigger(b, "m"), daemon=d)
    assert o["state"] == "success"
    assert (b.dags / "m.out").read_text() == "old\n"
    # Trigger the moment the file is saved: the run must use what the trigger saw.
    b.write("m.yaml", SIMPLE % ("m", "new", "m"))
    o = wait_run(b, trigger(b, "m"), daemon=d)
    assert o["state"] == "success"
    assert (b.dags / "m.out").read_text() == "old\nnew\n", d.log()
    assert d.stop() == 0


def test_modified_dag_after_reload(b, daemons):
    b.write("m.yaml", SIMPLE % ("m", "old", "m"))
    d = daemons(b)
    b.write("m.yaml", SIMPLE % ("m", "new", "m"))
    d.wait_log('msg="dag loaded" dag=m', timeout=5)
    o = wait_run(b, trigger(b, "m"), daemon=d)
    assert o["state"] == "success"
    assert (b.dags / "m.out").read_text() == "new\n", d.log()
    assert d.stop() == 0


def test_garbage_file_is_an_import_error_and_others_run(b, daemons):
    b.write("good.yaml", SIMPLE % ("good", "g", "good"))
    b.write("flaky.yaml", SIMPLE % ("flaky", "f1", "flaky"))
    d = daemons(b)
    assert wait_run(b, trigger(b, "flaky"), daemon=d)["state"] == "success"
    (b.dags / "flaky.yaml").write_text("dag: flaky\ntasks:\n  a:\n    run: [unclosed\n  : : :\n")
    d.wait_log('msg="dag file has errors"', timeout=5)

    def listed():
        o = b("dags", "list", "--json").json
        return o if o["import_errors"] else None
    o = poll(listed, 5)
    assert o, "no import error listed"
    errs = o["import_errors"]
    assert all(e["file"] == str(b.dags / "flaky.yaml") for e in errs), errs
    assert all(isinstance(e["line"], int) and e["line"] >= 3 for e in errs), errs
    assert [x["dag_id"] for x in o["dags"]] == ["good"], o
    d.assert_alive()
    # The other DAG runs on; the broken one cannot be triggered.
    assert wait_run(b, trigger(b, "good"), daemon=d)["state"] == "success"
    r = b("dags", "trigger", "flaky")
    assert r.rc == 2, r
    # Fixed: it runs again, the error is gone.
    b.write("flaky.yaml", SIMPLE % ("flaky", "f2", "flaky"))
    run_id = trigger(b, "flaky")
    assert wait_run(b, run_id, daemon=d)["state"] == "success"
    assert (b.dags / "flaky.out").read_text() == "f1\nf2\n"
    assert poll(lambda: b("dags", "list", "--json").json["import_errors"] == [], 5)
    assert d.stop() == 0


def test_deleted_dag_stops(b, daemons):
    b.write("gone.yaml", SIMPLE % ("gone", "x", "gone"))
    start = (datetime.datetime.now(datetime.timezone.utc)
             - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    b.write("tick.yaml", """
        dag: tick
        schedule: "every 1s"
        start: %s
        tasks:
          a:
            run: echo "$BARAM_TS" >> tick.out
        """ % start)
    d = daemons(b)
    assert wait_run(b, trigger(b, "gone"), daemon=d)["state"] == "success"
    # The scheduled DAG ticks (catchup off: one run per second from now on).
    assert poll(lambda: len([r for r in runs_list(b, "tick") if r["state"] == "success"]) >= 2,
                6), d.log()
    (b.dags / "gone.yaml").unlink()
    (b.dags / "tick.yaml").unlink()
    d.wait_log('msg="dag unloaded" dag=tick', timeout=5)
    r = b("dags", "trigger", "gone")
    assert r.rc == 2 and "'gone'" in r.err, r
    # Let any run claimed at the moment of the delete end, then count.
    assert poll(lambda: all(r["state"] in ("success", "failed") for r in runs_list(b, "tick")),
                3), runs_list(b, "tick")
    n = len(runs_list(b, "tick"))
    time.sleep(2.2)  # two more ticks would have come
    assert len(runs_list(b, "tick")) == n, runs_list(b, "tick")
    d.assert_alive()
    assert d.stop() == 0


def test_half_written_files_never_crash(b, daemons):
    b.write("other.yaml", SIMPLE % ("other", "o", "other"))
    d = daemons(b)
    text = (SIMPLE % ("half", "whole", "half")).lstrip("\n").encode()
    for cut in (5, len(text) // 2, len(text) - 3):
        p = b.dags / "half.yaml"
        with open(p, "wb") as f:
            f.write(text[:cut])
            f.flush()
            time.sleep(0.05)
            f.write(text[cut:])
        d.assert_alive()
    # Also: garbage bytes, an empty file, a huge line, a file renamed over.
    (b.dags / "bin.yaml").write_bytes(b"\x00\xff\xfe" * 1000)
    (b.dags / "empty.yaml").write_text("")
    (b.dags / "long.yaml").write_text("dag: " + "x" * 300000 + "\n")
    tmp = b.dags / ".half.yaml.tmp"
    tmp.write_bytes(text)
    os.replace(tmp, b.dags / "half.yaml")
    time.sleep(0.3)
    d.assert_alive()
    o = wait_run(b, trigger(b, "half"), daemon=d)
    assert o["state"] == "success"
    assert (b.dags / "half.out").read_text() == "whole\n"
    assert wait_run(b, trigger(b, "other"), daemon=d)["state"] == "success"
    assert d.stop() == 0, d.log()


def test_duplicate_dag_id(b, daemons):
    b.write("a.yaml", SIMPLE % ("x", "from_a", "x"))
    d = daemons(b)
    b.write("b.yaml", SIMPLE % ("x", "from_b", "x"))
    d.wait_log('msg="dag file has errors" file=%s' % (b.dags / "b.yaml"), timeout=5)
    o = b("dags", "list", "--json").json
    assert [x["file"] for x in o["dags"]] == [str(b.dags / "a.yaml")], o
    errs = o["import_errors"]
    assert len(errs) == 1 and errs[0]["file"] == str(b.dags / "b.yaml"), errs
    assert "already defined" in errs[0]["message"], errs
    assert wait_run(b, trigger(b, "x"), daemon=d)["state"] == "success"
    assert (b.dags / "x.out").read_text() == "from_a\n"
    # The first file goes: the second one is the DAG now.
    (b.dags / "a.yaml").unlink()
    assert poll(lambda: b("dags", "list", "--json").json["import_errors"] == [], 5)
    d.wait_log('msg="dag loaded" dag=x file=%s' % (b.dags / "b.yaml"), timeout=5)
    assert wait_run(b, trigger(b, "x"), daemon=d)["state"] == "success"
    assert (b.dags / "x.out").read_text() == "from_a\nfrom_b\n"
    assert d.stop() == 0


def test_many_files_at_once(b, daemons):
    d = daemons(b)
    for i in range(40):
        b.write("m%02d.yaml" % i, SIMPLE % ("m%02d" % i, "m%02d" % i, "many"))
    assert poll(lambda: len(b("dags", "list", "--json").json["dags"]) == 40, 5)
    d.wait_log('msg="dag loaded"', count=40, timeout=5)
    ids = [trigger(b, "m%02d" % i) for i in range(0, 40, 8)]
    for run_id in ids:
        assert wait_run(b, run_id, daemon=d)["state"] == "success"
    assert sorted((b.dags / "many.out").read_text().split()) == \
        ["m%02d" % i for i in range(0, 40, 8)]
    assert d.stop() == 0


def test_schedule_change_is_picked_up(b, daemons):
    """Hot reload of the schedule itself: none due -> every second -> manual only."""
    start = iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
    text = """
        dag: sc
        %s
        start: %s
        tasks:
          a:
            run: "true"
        """
    b.write("sc.yaml", text % ('schedule: "@yearly"', start))
    d = daemons(b)
    time.sleep(0.3)
    assert runs_list(b, "sc") == []
    b.write("sc.yaml", text % ('schedule: "every 1s"', start))
    assert poll(lambda: len(runs_list(b, "sc")) >= 2, 5), d.log()
    b.write("sc.yaml", text % ("", start))
    d.wait_log('msg="dag loaded" dag=sc', count=2, timeout=5)
    assert poll(lambda: all(r["state"] == "success" for r in runs_list(b, "sc")), 3), \
        runs_list(b, "sc")
    n = len(runs_list(b, "sc"))
    time.sleep(1.5)
    assert len(runs_list(b, "sc")) == n, runs_list(b, "sc")
    assert d.stop() == 0


def test_trigger_date_and_conf_reach_the_task(b, daemons):
    b.write("tc.yaml", """
        dag: tc
        params: {region: eu}
        tasks:
          a:
            run: echo "{{ ds }} {{ params.region }} $PARAM_REGION $BARAM_DS" > out.txt
        """)
    d = daemons(b)
    run_id = trigger(b, "tc", "--date", "2026-03-04", "--conf", '{"region": "us"}')
    assert wait_run(b, run_id, daemon=d)["state"] == "success"
    assert (b.dags / "out.txt").read_text() == "2026-03-04 us us 2026-03-04\n"
    assert d.stop() == 0


def test_dag_id_change_and_rename(b, daemons):
    b.write("a.yaml", SIMPLE % ("x", "x1", "out"))
    d = daemons(b)
    b.write("a.yaml", SIMPLE % ("y", "y1", "out"))
    d.wait_log('msg="dag loaded" dag=y', timeout=5)
    assert b("dags", "trigger", "x").rc == 2
    assert wait_run(b, trigger(b, "y"), daemon=d)["state"] == "success"
    # A rename (mv a.yaml c.yaml) keeps the DAG.
    os.rename(b.dags / "a.yaml", b.dags / "c.yaml")
    d.wait_log('msg="dag loaded" dag=y file=%s' % (b.dags / "c.yaml"), timeout=5)
    assert wait_run(b, trigger(b, "y"), daemon=d)["state"] == "success"
    assert (b.dags / "out.out").read_text() == "y1\ny1\n"
    o = b("dags", "list", "--json").json
    assert [(x["dag_id"], x["file"]) for x in o["dags"]] == [("y", str(b.dags / "c.yaml"))], o
    # The new name is not taken for a second file of the same DAG, even for a moment.
    assert not d.lines("dag file has errors"), d.log()
    assert d.stop() == 0


def live_after_save(b, name, dag_id, texts, save):
    """For each text: save(path, bytes), then the ms until the store holds that version (the
    `dags` row's hash is the SHA-256 of the bytes): what `dags list` and the API show."""
    path = b.dags / name
    took = []
    for text in texts:
        data = textwrap.dedent(text).lstrip("\n").encode()
        want = hashlib.sha256(data).hexdigest()
        t0 = time.monotonic()
        save(path, data)
        ok = poll(lambda: db_query(b, "SELECT hash FROM dags WHERE dag_id = ?", dag_id)
                  == [(want,)], 5, step=0.002)
        took.append((time.monotonic() - t0) * 1000)
        assert ok, "version %s never became live" % want[:12]
    return took


def save_in_place(path, data):
    with open(path, "wb") as f:
        f.write(data)


def save_by_rename(path, data):
    """What editors and config tools do: write a temporary file, then rename it over."""
    tmp = path.parent / (".%s.swp" % path.name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@pytest.mark.parametrize("save", [save_in_place, save_by_rename], ids=["in_place", "rename"])
def test_saved_file_is_live_within_100ms(b, daemons, save):
    """A saved file is complete when its writer closes it (or renames it into place): it is
    loaded then, not after a quiet period."""
    b.write("hot.yaml", SIMPLE % ("hot", "v0", "hot"))
    d = daemons(b)
    assert poll(lambda: db_query(b, "SELECT dag_id FROM dags") == [("hot",)], 5)
    took = live_after_save(b, "hot.yaml", "hot", [SIMPLE % ("hot", "v%d" % i, "hot")
                                                   for i in range(1, 6)], save)
    msg = "save -> live in the store, ms: %s (median %.1f)" % (
        ", ".join("%.1f" % x for x in took), statistics.median(took))
    print(msg)
    assert statistics.median(took) < 100, msg
    assert len(d.lines("dag loaded")) == 5, d.log()
    assert not d.lines("dag file has errors"), d.log()
    assert wait_run(b, trigger(b, "hot"), daemon=d)["state"] == "success"
    assert (b.dags / "hot.out").read_text() == "v5\n"
    assert d.stop() == 0, d.log()


def test_file_held_open_is_loaded_by_the_backstop(b, daemons):
    """A writer that keeps the file open: what it wrote is loaded after a quiet period; a
    partial file that does not parse is not reported while its writer still holds it."""
    b.write("open.yaml", SIMPLE % ("open", "v0", "open"))
    d = daemons(b)
    text = (SIMPLE % ("open", "v1", "open")).lstrip("\n").encode()
    with open(b.dags / "open.yaml", "wb") as f:
        cut = text.index(b"run:") + 2  # task 'a' is the bare word 'ru': not a DAG
        f.write(text[:cut])
        f.flush()
        time.sleep(0.4)
        assert not d.lines("dag file has errors"), d.log()
        f.write(text[cut:])
        f.flush()
        want = hashlib.sha256(text).hexdigest()
        assert poll(lambda: db_query(b, "SELECT hash FROM dags WHERE dag_id = 'open'")
                    == [(want,)], 5), d.log()
    time.sleep(0.2)
    assert not d.lines("dag file has errors"), d.log()
    assert len(d.lines("dag loaded")) == 1, d.log()
    assert d.stop() == 0, d.log()


# ---- 3. a run keeps its DAG version --------------------------------------------------------

def test_run_keeps_its_dag_version(b, daemons):
    v1 = """
        dag: ver
        tasks:
          first:
            run: touch first.started; sleep 0.5
          second:
            needs: [first]
            run: echo %s > second.out
        """
    b.write("ver.yaml", v1 % "OLD")
    d = daemons(b)
    run_id = trigger(b, "ver")
    wait_file(b.dags / "first.started", 5)
    b.write("ver.yaml", v1 % "NEW")
    d.wait_log('msg="dag loaded" dag=ver', timeout=5)
    o = wait_run(b, run_id, daemon=d)
    assert o["state"] == "success", o
    assert (b.dags / "second.out").read_text() == "OLD\n"
    # The next run gets the new version.
    assert wait_run(b, trigger(b, "ver"), daemon=d)["state"] == "success"
    assert (b.dags / "second.out").read_text() == "NEW\n"
    assert d.stop() == 0


def test_run_survives_its_file_deleted(b, daemons):
    b.write("dl.yaml", """
        dag: dl
        tasks:
          first:
            run: touch first.started; sleep 0.4
          second:
            needs: [first]
            run: echo second > second.out
        """)
    d = daemons(b)
    run_id = trigger(b, "dl")
    wait_file(b.dags / "first.started", 5)
    (b.dags / "dl.yaml").unlink()
    d.wait_log('msg="dag unloaded" dag=dl', timeout=5)
    o = wait_run(b, run_id, daemon=d)
    assert o["state"] == "success", o
    assert (b.dags / "second.out").read_text() == "second\n"
    assert d.stop() == 0


# ---- 4. pause / unpause ----------------------------------------------------------------------

def test_pause_unpause(b, daemons):
    start = (datetime.datetime.now(datetime.timezone.utc)
             - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    b.write("tick.yaml", """
        dag: tick
        schedule: "every 1s"
        start: %s
        tasks:
          a:
            run: echo "$BARAM_RUN_ID" >> tick.out
        """ % start)
    assert b("dags", "pause", "tick").rc == 0
    d = daemons(b)
    manual = trigger(b, "tick")
    time.sleep(2.5)  # paused: two ticks pass without a run
    rs = runs_list(b, "tick")
    assert [r["run_id"] for r in rs] == [manual], rs
    assert rs[0]["state"] == "queued", rs
    assert not (b.dags / "tick.out").exists()
    t0 = time.monotonic()
    assert b("dags", "unpause", "tick").rc == 0
    o = wait_run(b, manual, timeout=5, daemon=d)
    assert o["state"] == "success"
    assert time.monotonic() - t0 < 1.0, "the queued run took %.2fs after unpause" % (
        time.monotonic() - t0)
    assert poll(lambda: sum(r["run_id"].startswith("scheduled__") for r in runs_list(b, "tick"))
                >= 2, 5), runs_list(b, "tick")
    # catchup is off: no flood of the hour of missed seconds.
    n_sched = sum(r["run_id"].startswith("scheduled__") for r in runs_list(b, "tick"))
    assert n_sched < 10, n_sched
    # Paused again: no more scheduled runs.
    assert b("dags", "pause", "tick").rc == 0
    assert poll(lambda: all(r["state"] in ("success", "failed") for r in runs_list(b, "tick")),
                3), runs_list(b, "tick")
    n = len(runs_list(b, "tick"))
    time.sleep(2.2)
    assert len(runs_list(b, "tick")) == n
    assert d.stop() == 0


def test_pause_lets_a_running_run_finish(b, daemons):
    b.write("pr.yaml", """
        dag: pr
        tasks:
          a:
            run: touch a.started; sleep 0.4
          b:
            needs: [a]
            run: touch b.ran
        """)
    d = daemons(b)
    run_id = trigger(b, "pr")
    wait_file(b.dags / "a.started", 5)
    assert b("dags", "pause", "pr").rc == 0
    o = wait_run(b, run_id, daemon=d)
    assert o["state"] == "success", o
    assert (b.dags / "b.ran").exists()
    assert d.stop() == 0


# ---- 5. cron + catchup -----------------------------------------------------------------------

def hour_floor(t):
    return t.replace(minute=0, second=0, microsecond=0)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_cron_catchup_and_end(b, daemons):
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.minute == 59 and now.second > 50:
        time.sleep(11)  # keep the hour fixed for the test
        now = datetime.datetime.now(datetime.timezone.utc)
    h = hour_floor(now)
    start = h - datetime.timedelta(hours=5)
    body = """
        dag: %s
        schedule: "0 * * * *"
        start: %s
        %s
        catchup: %s
        max_active_runs: 2
        tasks:
          a:
            run: %s
        """
    b.write("cu.yaml", body % ("cu", iso(start), "", "true",
                               "'" + stamped("$BARAM_TS", "cu.events") + "'"))
    b.write("nocu.yaml", body % ("nocu", iso(start), "", "false",
                                 "echo $BARAM_TS >> nocu.out"))
    b.write("ended.yaml", body % ("ended", iso(start),
                                  "end: %s" % iso(h - datetime.timedelta(hours=3)), "true",
                                  "echo $BARAM_TS >> ended.out"))
    d = daemons(b)

    def done(dag, n):
        rs = runs_list(b, dag)
        return len(rs) >= n and all(r["state"] == "success" for r in rs)
    assert poll(lambda: done("cu", 5) and done("nocu", 1) and done("ended", 3), 15), d.log()
    time.sleep(0.3)  # nothing more comes

    def dates(dag):
        """The runs' logical dates (epoch s), from the store."""
        return sorted(x // 1000 for (x,) in db_query(
            b, "SELECT logical_at FROM runs WHERE dag_id = ?", dag))

    def hours(a, n):
        return [int((a + datetime.timedelta(hours=i)).timestamp()) for i in range(n)]

    def written(name):
        """What the tasks wrote: $BARAM_TS of each run, as epoch s."""
        return sorted(int(parse_ts(x)) for x in (b.dags / name).read_text().split())
    assert dates("cu") == hours(start, 5), dates("cu")
    assert dates("nocu") == hours(h - datetime.timedelta(hours=1), 1), dates("nocu")
    assert dates("ended") == hours(start, 3), dates("ended")
    assert written("nocu.out") == dates("nocu") and written("ended.out") == dates("ended")
    assert all(r["run_id"].startswith("scheduled__") for r in runs_list(b))
    spans = events(b.dags / "cu.events")
    assert sorted(int(parse_ts(n)) for n, _, _ in spans) == hours(start, 5), spans
    assert max_overlap(spans) <= 2, spans
    assert len(d.lines("scheduled run created")) == 9, d.log()
    # Restart: nothing is created twice.
    assert d.stop() == 0
    d2 = daemons(b, log_name="daemon2.log")
    time.sleep(0.5)
    assert dates("cu") == hours(start, 5) and len(dates("ended")) == 3
    assert len(dates("nocu")) == 1
    assert d2.lines("scheduled run created") == [], d2.log()
    assert d2.stop() == 0


def test_fast_schedule_catchup_within_max_active_runs(b, daemons):
    """"every 1s" with catchup from 4 s ago and runs longer than the interval: every interval
    gets exactly one run, in order, never two at once (max_active_runs 1)."""
    now = time.time()
    start = datetime.datetime.fromtimestamp(int(now) - 4, datetime.timezone.utc)
    b.write("fast.yaml", """
        dag: fast
        schedule: "every 1s"
        start: %s
        catchup: true
        max_active_runs: 1
        tasks:
          a:
            run: '%s'
        """ % (iso(start), stamped("$BARAM_TS", sleep="0.4")))
    d = daemons(b)
    assert poll(lambda: len([r for r in runs_list(b, "fast") if r["state"] == "success"]) >= 7,
                15), d.log()
    assert b("dags", "pause", "fast").rc == 0
    # the runs that started end; one made just before the pause stays queued (a paused DAG's
    # queued runs wait until it is unpaused), the newest
    assert poll(lambda: all(r["state"] in ("success", "queued") for r in runs_list(b, "fast")),
                3), runs_list(b, "fast")
    logical = sorted(x // 1000 for (x,) in db_query(
        b, "SELECT logical_at FROM runs WHERE dag_id = 'fast' AND state = 'success'"))
    queued = [x // 1000 for (x,) in db_query(
        b, "SELECT logical_at FROM runs WHERE dag_id = 'fast' AND state = 'queued'")]
    assert len(queued) <= 1 and all(q > logical[-1] for q in queued), (queued, logical)
    assert logical[0] == int(start.timestamp()), logical
    assert logical == list(range(logical[0], logical[0] + len(logical))), logical
    spans = events(b.dags / "events.log")
    assert max_overlap(spans) == 1, spans
    assert sorted(int(parse_ts(n)) for n, _, _ in spans) == logical
    assert d.stop() == 0


def test_scheduled_runs_start_when_due(b, daemons):
    """The planner's timer fires at the end of each interval: a scheduled run starts within
    milliseconds of its due time (logical date + 1 s for "every 1s"), not at a polling tick."""
    start = iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5))
    b.write("due.yaml", """
        dag: due
        schedule: "every 1s"
        start: %s
        tasks:
          a:
            run: "true"
        """ % start)
    d = daemons(b)
    assert poll(lambda: len([r for r in runs_list(b, "due") if r["state"] == "success"]) >= 4,
                8), d.log()
    assert b("dags", "pause", "due").rc == 0
    rows = db_query(b, "SELECT logical_at, started_at FROM runs WHERE dag_id = 'due' "
                       "ORDER BY logical_at")
    lag = [started - (logical + 1000) for logical, started in rows[1:]]  # the first: catch-up
    msg = "due -> run started, ms: %s" % lag
    print(msg)
    assert all(x >= 0 for x in lag), msg
    assert statistics.median(lag) < 100, msg
    assert d.stop() == 0


# ---- 6. pools and priorities -----------------------------------------------------------------

def test_pool_across_runs(b, daemons):
    b.write("pooled.yaml", """
        dag: pooled
        max_active_runs: 5
        params: {n: "0"}
        tasks:
          a:
            pool: p
            run: '%s'
        """ % stamped("run$PARAM_N"))
    assert b("pools", "set", "p", "1").rc == 0
    d = daemons(b)
    ids = [trigger(b, "pooled", "--conf", '{"n": "%d"}' % i) for i in range(3)]
    for run_id in ids:
        assert wait_run(b, run_id, daemon=d)["state"] == "success"
    spans = events(b.dags / "events.log")
    assert len(spans) == 3, spans
    assert max_overlap(spans) == 1, spans
    assert d.stop() == 0


def test_pool_size_changed_while_running(b, daemons):
    b.write("pooled.yaml", """
        dag: pooled
        tasks:
          gate:
            run: sleep 0.3
    """ + "".join("""
          t%d:
            needs: [gate]
            pool: q
            run: '%s'
    """ % (i, stamped("t%d" % i)) for i in range(4)))
    assert b("pools", "set", "q", "1").rc == 0
    d = daemons(b)
    run_id = trigger(b, "pooled")
    assert b("pools", "set", "q", "2").rc == 0
    assert wait_run(b, run_id, daemon=d)["state"] == "success"
    spans = events(b.dags / "events.log")
    assert max_overlap(spans) == 2, spans
    assert d.stop() == 0


def test_pool_with_no_slots_holds_tasks(b, daemons):
    b.write("z.yaml", """
        dag: z
        tasks:
          a:
            pool: zero
            run: touch a.ran
        """)
    assert b("pools", "set", "zero", "0").rc == 0
    d = daemons(b)
    run_id = trigger(b, "z")
    time.sleep(0.5)
    assert not (b.dags / "a.ran").exists()
    assert run_show(b, run_id)["state"] in ("queued", "running")
    assert b("pools", "set", "zero", "1").rc == 0
    o = wait_run(b, run_id, timeout=3, daemon=d)
    assert o["state"] == "success", o
    assert d.stop() == 0


def test_priority_when_slots_are_short(b, daemons):
    b.write("prio.yaml", """
        dag: prio
        tasks:
          gate:
            run: sleep 0.2
          lo:
            needs: [gate]
            priority: 1
            run: echo lo >> order.log
          hi:
            needs: [gate]
            priority: 10
            run: echo hi >> order.log
          mid:
            needs: [gate]
            priority: 5
            run: echo mid >> order.log
        """)
    d = daemons(b, "--parallelism", "1")
    assert wait_run(b, trigger(b, "prio"), daemon=d)["state"] == "success"
    assert (b.dags / "order.log").read_text().split() == ["hi", "mid", "lo"]
    assert d.stop() == 0


# ---- 7. backfill -------------------------------------------------------------------------------

def test_backfill(b, daemons):
    b.write("daily.yaml", """
        dag: daily
        schedule: "@daily"
        start: 2026-01-01
        end: 2026-01-31
        max_active_runs: 2
        tasks:
          a:
            run: '%s; echo {{ ds }} > "ds.{{ ds }}"'
        """ % stamped("{{ ds }}"))
    d = daemons(b)
    r = b("dags", "backfill", "daily", "--from", "2026-01-03", "--to", "2026-01-06", "--json")
    assert r.rc == 0, r
    ids = r.json["run_ids"]
    assert ids == ["backfill__2026-01-0%dT00:00:00.000Z" % i for i in range(3, 7)], r
    for run_id in ids:
        assert wait_run(b, run_id, daemon=d)["state"] == "success"
    for day in range(3, 7):
        ds = "2026-01-0%d" % day
        assert (b.dags / ("ds." + ds)).read_text() == ds + "\n"
    # The DAG's own schedule (catchup off, ended on Jan 31) also made its one scheduled run.
    spans = [s for s in events(b.dags / "events.log") if s[0] != "2026-01-31"]
    assert [s[0] for s in sorted(spans)] == ["2026-01-0%d" % i for i in range(3, 7)]
    assert max_overlap(spans) <= 2, spans
    # Backfill runs are not scheduled runs: the DAG's own schedule (ended in January) made its
    # own, and the backfilled dates got no second run.
    rs = runs_list(b, "daily")
    by_date = {}
    for x in rs:
        by_date.setdefault(ts_of(x["run_id"]), []).append(x["run_id"])
    assert all(len(v) == 1 for v in by_date.values()), by_date
    assert d.stop() == 0


# ---- 8. tasks clear ----------------------------------------------------------------------------

def test_clear_failed_task(b, daemons):
    b.write("cl.yaml", """
        dag: cl
        tasks:
          a:
            run: echo a >> a.count
          b:
            needs: [a]
            run: test ! -e fail_b && echo b >> b.count
        """)
    (b.dags / "fail_b").write_text("")
    d = daemons(b)
    run_id = trigger(b, "cl")
    o = wait_run(b, run_id, daemon=d)
    assert o["state"] == "failed" and o["tasks"]["b"]["state"] == "failed", o
    (b.dags / "fail_b").unlink()
    r = b("tasks", "clear", run_id, "b")
    assert r.rc == 0, r
    assert "no scheduler is running" not in r.err, r
    o = wait_run(b, run_id, timeout=5, daemon=d)
    assert o["state"] == "success", o
    assert o["tasks"]["b"]["tries"] == 2 and o["tasks"]["a"]["tries"] == 1, o
    assert (b.dags / "a.count").read_text() == "a\n"
    assert (b.dags / "b.count").read_text() == "b\n"
    assert try_log_path(b.home, "cl", run_id, "b", 2).exists()
    assert d.stop() == 0


def test_clear_downstream(b, daemons):
    b.write("cl.yaml", """
        dag: cl
        tasks:
          a:
            run: echo a >> a.count
          b:
            needs: [a]
            run: test ! -e fail_b && echo b >> b.count
          c:
            needs: [b]
            run: echo c >> c.count
          side:
            needs: [a]
            run: echo side >> side.count
        """)
    (b.dags / "fail_b").write_text("")
    d = daemons(b)
    run_id = trigger(b, "cl")
    o = wait_run(b, run_id, daemon=d)
    assert o["state"] == "failed", o
    assert o["tasks"]["c"]["state"] == "upstream_failed", o
    (b.dags / "fail_b").unlink()
    r = b("tasks", "clear", run_id, "b", "--downstream", "--json")
    assert r.rc == 0, r
    assert r.json["cleared"] == ["b", "c"], r.json
    o = wait_run(b, run_id, timeout=5, daemon=d)
    assert o["state"] == "success", o
    assert o["tasks"]["b"]["tries"] == 2 and o["tasks"]["c"]["tries"] == 1, o
    for name, want in (("a", "a\n"), ("b", "b\n"), ("c", "c\n"), ("side", "side\n")):
        assert (b.dags / ("%s.count" % name)).read_text() == want, name
    assert d.stop() == 0


LIVE_DAG = """
        dag: live
        tasks:
          a:
            run: echo a >> a.count
          b:
            needs: [a]
            run: test ! -e fail_b && echo b >> b.count
          c:
            needs: [b]
            run: echo c >> c.count
          slow:
            needs: [a]
            run: >-
              echo slow >> slow.count; i=0;
              while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
          after_slow:
            needs: [slow]
            run: echo after >> after.count
        """


def ti_state(b, run_id, task):
    rows = db_query(b, "SELECT state FROM task_instances WHERE run_id = ? AND task_id = ?",
                    run_id, task)
    return rows[0][0] if rows else None


def retry_gap_ms(b, run_id, task):
    """From the end of task's try 1 to the start of its try 2, in the store."""
    (end1,), (start2,) = (db_query(b, "SELECT %s FROM tries WHERE run_id = ? AND task_id = ? "
                                      "AND try_number = ?" % col, run_id, task, n)[0]
                          for col, n in (("ended_at", 1), ("started_at", 2)))
    return start2 - end1


def sleep_into_retry_delay(b, run_id, task, ms):
    """Sleeps until ms after the end of task's try 1 (in the store): a scheduler stopped then
    must wait only what is left of the retry delay, and one that waited the whole delay
    again would start try 2 at least ms too late."""
    (end1,), = db_query(b, "SELECT ended_at FROM tries WHERE run_id = ? AND task_id = ? "
                           "AND try_number = 1", run_id, task)
    left = end1 + ms - time.time() * 1000
    assert left > 0, "try 1 of %s ended %d ms ago already" % (task, ms - left)
    time.sleep(left / 1000.0)


def test_clear_in_a_running_run(b, daemons):
    """Clearing a failed task while the run goes on elsewhere (Airflow's everyday clear): the
    scheduler starts none of the run's tasks while the tries in flight end, then clears and
    resumes the run; nothing that finished runs again, nothing is lost."""
    b.write("live.yaml", LIVE_DAG)
    (b.dags / "fail_b").write_text("")
    d = daemons(b)
    run_id = trigger(b, "live")
    assert poll(lambda: ti_state(b, run_id, "c") == "upstream_failed" and
                ti_state(b, run_id, "slow") == "running"), d.log()
    (b.dags / "fail_b").unlink()
    r = b("tasks", "clear", run_id, "b", "--downstream", "--json")
    assert r.rc == 0, r
    assert r.json == {"run_id": run_id, "cleared": ["b", "c"], "requested": True}, r.json
    # slow is still running: nothing is cleared, nothing new starts.
    time.sleep(0.6)
    assert ti_state(b, run_id, "b") == "failed" and ti_state(b, run_id, "slow") == "running"
    assert run_show(b, run_id)["state"] == "running"
    (b.dags / "go").write_text("")
    o = wait_run(b, run_id, timeout=15, daemon=d)
    assert o["state"] == "success", (o, d.log())
    assert o["tasks"]["b"]["tries"] == 2 and o["tasks"]["c"]["tries"] == 1, o
    for name in ("a", "b", "c", "slow", "after"):
        assert len((b.dags / ("%s.count" % name)).read_text().splitlines()) == 1, name
    assert "run cleared" in d.log() and "run draining" in d.log()
    assert d.stop() == 0


def test_clear_in_a_running_run_refuses_an_instance_in_flight(b, daemons):
    b.write("live.yaml", LIVE_DAG)
    d = daemons(b)
    run_id = trigger(b, "live")
    assert poll(lambda: ti_state(b, run_id, "slow") == "running"), d.log()
    for args in (["slow"], ["a", "--downstream"]):
        r = b("tasks", "clear", run_id, *args)
        assert r.rc == 1 and "slow is running" in r.err, r
    # a finished task that nothing in flight depends on: fine
    r = b("tasks", "clear", run_id, "a", "--json")
    assert r.rc == 0 and r.json["requested"], r
    (b.dags / "go").write_text("")
    o = wait_run(b, run_id, timeout=15, daemon=d)
    assert o["state"] == "success" and o["tasks"]["a"]["tries"] == 2, (o, d.log())
    assert (b.dags / "a.count").read_text() == "a\na\n"
    assert (b.dags / "slow.count").read_text() == "slow\n"
    assert d.stop() == 0


def requests_of(b, run_id):
    return [k for (k,) in db_query(b, "SELECT kind FROM run_requests WHERE run_id = ?", run_id)]


def test_clear_then_cancel_the_cancel_wins(b, daemons):
    b.write("live.yaml", LIVE_DAG)
    (b.dags / "fail_b").write_text("")
    d = daemons(b)
    run_id = trigger(b, "live")
    assert poll(lambda: ti_state(b, run_id, "c") == "upstream_failed" and
                ti_state(b, run_id, "slow") == "running"), d.log()
    (b.dags / "fail_b").unlink()
    assert b("tasks", "clear", run_id, "b", "--downstream").rc == 0
    r = b("runs", "cancel", run_id, "--wait", "10")
    assert r.rc == 0, r
    o = wait_run(b, run_id, timeout=10, daemon=d)
    assert o["state"] == "cancelled", (o, d.log())
    assert poll(lambda: requests_of(b, run_id) == [], 5), (requests_of(b, run_id), d.log())
    time.sleep(0.3)
    assert run_show(b, run_id)["state"] == "cancelled" and ti_state(b, run_id, "b") == "failed"
    assert not (b.dags / "b.count").exists()
    assert d.stop() == 0


def test_clear_in_a_running_run_goes_on_when_its_dag_is_paused_or_gone(b, daemons):
    """The cleared run resumes as the running run it is (its version, its slot), not as a new
    queued run: pausing the DAG or deleting its file meanwhile does not hold it back."""
    b.write("live.yaml", LIVE_DAG)
    (b.dags / "fail_b").write_text("")
    d = daemons(b)
    run_id = trigger(b, "live")
    assert poll(lambda: ti_state(b, run_id, "slow") == "running" and
                ti_state(b, run_id, "b") == "failed"), d.log()
    (b.dags / "fail_b").unlink()
    assert b("tasks", "clear", run_id, "b", "--downstream").rc == 0
    assert b("dags", "pause", "live").rc == 0
    (b.dags / "live.yaml").unlink()
    (b.dags / "go").write_text("")
    o = wait_run(b, run_id, timeout=15, daemon=d)
    assert o["state"] == "success", (o, d.log())
    assert o["tasks"]["b"]["tries"] == 2 and o["tasks"]["c"]["tries"] == 1, o
    assert requests_of(b, run_id) == []
    assert d.stop() == 0


def test_clear_requested_survives_a_kill9_during_the_drain(b, daemons):
    """The request stays in the store until carried out: a scheduler killed while the run
    drains leaves it, and the next one clears the run before resuming it."""
    b.write("live.yaml", LIVE_DAG.replace("          slow:\n", "          slow:\n            retries: 1\n"))
    (b.dags / "fail_b").write_text("")
    d = daemons(b)
    run_id = trigger(b, "live")
    assert poll(lambda: ti_state(b, run_id, "slow") == "running" and
                ti_state(b, run_id, "c") == "upstream_failed"), d.log()
    (b.dags / "fail_b").unlink()
    assert b("tasks", "clear", run_id, "b", "--downstream").rc == 0
    assert poll(lambda: "run draining" in d.log(), 5), d.log()
    d.kill9()
    assert requests_of(b, run_id) == ["clear+:b"]
    (b.dags / "go").write_text("")
    d2 = daemons(b, log_name="daemon2.log")
    o = wait_run(b, run_id, timeout=15, daemon=d2)
    assert o["state"] == "success", (o, d2.log())
    assert o["tasks"]["b"]["tries"] == 2 and o["tasks"]["c"]["tries"] == 1, o
    assert requests_of(b, run_id) == []
    assert d2.stop() == 0


def test_clear_in_a_running_run_with_a_retry_pending(b, daemons):
    """A run whose only other task waits for its retry (a timer, nothing in flight) drains at
    once; the resumed run still retries that task, and its tries are counted right."""
    b.write("rt.yaml", """
        dag: rt
        tasks:
          b:
            run: test ! -e fail_b && echo b >> b.count
          retrier:
            retries: 1
            retry_delay: 3s
            run: if [ -e r.once ]; then echo ok; else touch r.once; exit 5; fi
        """)
    (b.dags / "fail_b").write_text("")
    d = daemons(b)
    run_id = trigger(b, "rt")
    assert poll(lambda: ti_state(b, run_id, "b") == "failed" and
                ti_state(b, run_id, "retrier") == "up_for_retry"), d.log()
    (b.dags / "fail_b").unlink()
    sleep_into_retry_delay(b, run_id, "retrier", 2000)
    r = b("tasks", "clear", run_id, "b", "--json")
    assert r.rc == 0 and r.json["requested"], r
    o = wait_run(b, run_id, timeout=15, daemon=d)
    assert o["state"] == "success", (o, d.log())
    assert o["tasks"]["b"]["tries"] == 2 and o["tasks"]["retrier"]["tries"] == 2, o
    assert (b.dags / "b.count").read_text() == "b\n"
    # the resumed run waited out what was left of the 3 s retry delay (1 s), not 3 s again
    # (which would make the gap 5 s or more)
    gap = retry_gap_ms(b, run_id, "retrier")
    assert 2900 <= gap < 4500, gap
    assert d.stop() == 0


def test_clear_reruns_with_the_runs_version(b, daemons):
    """SPEC 5: a run keeps the DAG version it started with, also when a task of it is
    cleared after the file changed."""
    text = """
        dag: cv
        tasks:
          a:
            run: echo %s >> a.out
        """
    b.write("cv.yaml", text % "OLD")
    d = daemons(b)
    run_id = trigger(b, "cv")
    assert wait_run(b, run_id, daemon=d)["state"] == "success"
    b.write("cv.yaml", text % "NEW")
    d.wait_log('msg="dag loaded" dag=cv', timeout=5)
    assert b("tasks", "clear", run_id, "a").rc == 0
    o = wait_run(b, run_id, timeout=5, daemon=d)
    assert o["state"] == "success" and o["tasks"]["a"]["tries"] == 2, o
    assert (b.dags / "a.out").read_text() == "OLD\nOLD\n"
    assert d.stop() == 0


def test_clear_success_task_without_scheduler_then_start(b, daemons):
    """A clear made while no daemon runs is picked up by the next start."""
    b.write("cs.yaml", """
        dag: cs
        tasks:
          a:
            run: echo a >> a.count
          b:
            needs: [a]
            run: echo b >> b.count
        """)
    d = daemons(b)
    run_id = trigger(b, "cs")
    assert wait_run(b, run_id, daemon=d)["state"] == "success"
    assert d.stop() == 0
    r = b("tasks", "clear", run_id, "b")
    assert r.rc == 0 and "no scheduler is running" in r.err, r
    d2 = daemons(b, log_name="daemon2.log")
    o = wait_run(b, run_id, timeout=5, daemon=d2)
    assert o["state"] == "success" and o["tasks"]["b"]["tries"] == 2, o
    assert (b.dags / "a.count").read_text() == "a\n"
    assert (b.dags / "b.count").read_text() == "b\nb\n"
    assert d2.stop() == 0


# ---- 9. runs cancel ----------------------------------------------------------------------------

def test_cancel_running_run(b, daemons):
    b.write("long.yaml", """
        dag: long
        tasks:
          a:
            run: echo $$ > a.pid; exec sleep 30
          b:
            needs: [a]
            run: touch b.ran
        """)
    d = daemons(b)
    run_id = trigger(b, "long")
    pid = int(wait_file(b.dags / "a.pid", 5, lines=1).strip())
    assert alive(pid)
    t0 = time.monotonic()
    r = b("runs", "cancel", run_id, "--json")
    assert r.rc == 0, r
    o = wait_run(b, run_id, timeout=5, daemon=d)
    took = time.monotonic() - t0
    assert o["state"] == "cancelled", o
    assert took < 1.5, "cancel took %.2fs" % took
    assert poll(lambda: not alive(pid), 2), "task process %d still alive" % pid
    assert not (b.dags / "b.ran").exists()
    assert o["tasks"]["b"]["state"] in ("none", "upstream_failed", "skipped"), o
    d.assert_alive()
    assert d.stop() == 0


def test_cancel_queued_run_of_paused_dag(b, daemons):
    b.write("q.yaml", SIMPLE % ("q", "x", "q"))
    assert b("dags", "pause", "q").rc == 0
    d = daemons(b)
    run_id = trigger(b, "q")
    r = b("runs", "cancel", run_id)
    assert r.rc == 0, r
    o = wait_run(b, run_id, timeout=5, daemon=d)
    assert o["state"] == "cancelled", o
    assert b("dags", "unpause", "q").rc == 0
    time.sleep(0.3)
    assert run_show(b, run_id)["state"] == "cancelled"
    assert not (b.dags / "q.out").exists()
    assert d.stop() == 0


def test_cancel_during_retry_delay(b, daemons):
    b.write("rd.yaml", """
        dag: rd
        tasks:
          a:
            retries: 1
            retry_delay: 1s
            run: echo try$BARAM_TRY >> a.tries; exit 1
        """)
    d = daemons(b)
    run_id = trigger(b, "rd")

    def waiting():  # the run may be shown before its task instances are made
        o = run_show(b, run_id)
        return o["tasks"].get("a", {}).get("state") == "up_for_retry"
    assert poll(waiting, 5), run_show(b, run_id)
    t0 = time.monotonic()
    assert b("runs", "cancel", run_id).rc == 0
    o = wait_run(b, run_id, timeout=5, daemon=d)
    assert o["state"] == "cancelled", o
    assert time.monotonic() - t0 < 1.0
    time.sleep(1.2)  # the retry would have come by now
    assert (b.dags / "a.tries").read_text() == "try1\n"
    assert run_show(b, run_id)["state"] == "cancelled"
    assert d.stop() == 0


def test_timeout_under_daemon(b, daemons):
    b.write("to.yaml", """
        dag: to
        tasks:
          a:
            timeout: 300ms
            run: echo $$ > a.pid; exec sleep 30
        """)
    d = daemons(b)
    t0 = time.monotonic()
    run_id = trigger(b, "to")
    pid = int(wait_file(b.dags / "a.pid", 5, lines=1).strip())
    o = wait_run(b, run_id, timeout=10, daemon=d)
    took = time.monotonic() - t0
    assert o["state"] == "failed" and o["tasks"]["a"]["state"] == "failed", o
    assert 0.25 < took < 2.5, took
    assert poll(lambda: not alive(pid), 2)
    assert d.stop() == 0


def test_max_active_runs_queues_triggers(b, daemons):
    b.write("one.yaml", """
        dag: one
        max_active_runs: 1
        params: {n: "0"}
        tasks:
          a:
            run: '%s'
        """ % stamped("run$PARAM_N", sleep="0.3"))
    d = daemons(b)
    ids = [trigger(b, "one", "--conf", '{"n": "%d"}' % i) for i in range(3)]
    states = [r["state"] for r in runs_list(b, "one")]
    assert states.count("running") <= 1, states
    for run_id in ids:
        assert wait_run(b, run_id, daemon=d)["state"] == "success"
    spans = events(b.dags / "events.log")
    assert len(spans) == 3 and max_overlap(spans) == 1, spans
    assert d.stop() == 0


def test_cancel_a_run_waiting_for_max_active_runs(b, daemons):
    b.write("w.yaml", """
        dag: w
        max_active_runs: 1
        params: {n: "0"}
        tasks:
          a:
            run: echo $PARAM_N >> w.out; sleep 0.4
        """)
    d = daemons(b)
    first = trigger(b, "w", "--conf", '{"n": "1"}')
    second = trigger(b, "w", "--conf", '{"n": "2"}')
    third = trigger(b, "w", "--conf", '{"n": "3"}')
    assert b("runs", "cancel", second).rc == 0
    assert wait_run(b, second, timeout=3, daemon=d)["state"] == "cancelled"
    assert wait_run(b, first, daemon=d)["state"] == "success"
    assert wait_run(b, third, daemon=d)["state"] == "success"
    assert (b.dags / "w.out").read_text().split() == ["1", "3"]
    assert d.stop() == 0


def test_kill9_during_catchup(b, daemons):
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.minute == 59 and now.second > 50:
        time.sleep(11)
        now = datetime.datetime.now(datetime.timezone.utc)
    h = hour_floor(now)
    b.write("kc.yaml", """
        dag: kc
        schedule: "@hourly"
        start: %s
        catchup: true
        max_active_runs: 2
        defaults: {retries: 1, retry_delay: 0s}
        tasks:
          a:
            run: echo $BARAM_TS >> kc.out; sleep 0.3
        """ % iso(h - datetime.timedelta(hours=6)))
    d = daemons(b)
    wait_file(b.dags / "kc.out", 5, lines=3)
    d.kill9()
    d2 = daemons(b, log_name="daemon2.log")

    def done():
        rs = runs_list(b, "kc")
        return len(rs) == 6 and all(r["state"] == "success" for r in rs)
    assert poll(done, 15), (runs_list(b, "kc"), d2.log())
    logical = sorted(x // 1000 for (x,) in db_query(
        b, "SELECT logical_at FROM runs WHERE dag_id = 'kc'"))
    want = [int((h - datetime.timedelta(hours=6 - i)).timestamp()) for i in range(6)]
    assert logical == want, logical
    ts = [int(parse_ts(x)) for x in (b.dags / "kc.out").read_text().split()]
    assert sorted(set(ts)) == want, ts  # each interval ran
    # A run the killed daemon saw end (durably: "run ended" comes after the commit) never
    # runs again. (Tasks that ended in the last few ms before the kill may: see
    # test_downstream_starts_on_a_durable_upstream.)
    ended = [int(parse_ts(ts_of(ln.split(" run=")[1].split()[0])))
             for ln in d.lines("run ended")]
    assert ended, d.log()
    for t in ended:
        assert ts.count(t) == 1, (t, ts, d.log())
    assert d2.stop() == 0


# ---- 10. kill -9 recovery ------------------------------------------------------------------------

def test_kill9_recovery(b, daemons):
    tasks = "".join("""
          t%d:
            %s
            run: >-
              echo $BARAM_TASK >> order.log; echo $$ > pid.$BARAM_TASK.$BARAM_TRY;
              if [ $BARAM_TASK = t3 ] && [ $BARAM_TRY = 1 ]; then exec sleep 30; fi;
              sleep 0.3
    """ % (i, "needs: [t%d]" % (i - 1) if i > 1 else "") for i in range(1, 7))
    b.write("chain.yaml", """
        dag: chain
        defaults: {retries: 1, retry_delay: 0s}
        tasks:
    """ + tasks)
    d = daemons(b)
    run_id = trigger(b, "chain")
    wait_file(b.dags / "order.log", 10, lines=3)
    orphan = int(wait_file(b.dags / "pid.t3.1", 5, lines=1).strip())
    # Its 'running' record (with the pid) is committed a little after the start (the claim,
    # 'queued' with no pid, before it).
    assert poll(lambda: db_query(b, "SELECT 1 FROM tries WHERE task_id = 't3' "
                                    "AND state = 'running'"), 3)
    d.kill9()
    assert alive(orphan), "the try should have outlived its scheduler"
    assert run_show(b, run_id)["state"] == "running"
    rec = db_query(b, "SELECT pid, state FROM tries WHERE run_id = ? AND task_id = 't3'", run_id)
    assert rec == [(0 if ON_PG else orphan, "running")], rec  # a worker's pid is not recorded
    d2 = daemons(b, log_name="daemon2.log")
    assert poll(lambda: not alive(orphan), 3), "orphan %d of the killed daemon lives" % orphan
    o = wait_run(b, run_id, timeout=15, daemon=d2)
    assert o["state"] == "success", (o, d2.log())
    assert (b.dags / "order.log").read_text().split() == \
        ["t1", "t2", "t3", "t3", "t4", "t5", "t6"]
    assert o["tasks"]["t3"]["tries"] == 2, o
    assert all(o["tasks"]["t%d" % i]["tries"] == 1 for i in (1, 2, 4, 5, 6)), o
    assert d2.lines("run resumed"), d2.log()
    assert d2.stop() == 0


def test_kill9_while_a_retry_waits_keeps_its_delay(b, daemons):
    """A task waiting out its retry delay when the scheduler dies: the next one waits what is
    left of the delay (from the failed try's end), not the whole delay again, nor none."""
    b.write("rw.yaml", """
        dag: rw
        tasks:
          retrier:
            retries: 1
            retry_delay: 3s
            run: if [ -e r.once ]; then echo ok; else touch r.once; exit 5; fi
        """)
    d = daemons(b)
    run_id = trigger(b, "rw")
    assert poll(lambda: ti_state(b, run_id, "retrier") == "up_for_retry"), d.log()
    sleep_into_retry_delay(b, run_id, "retrier", 2000)
    d.kill9()
    d2 = daemons(b, log_name="daemon2.log")
    o = wait_run(b, run_id, timeout=15, daemon=d2)
    assert o["state"] == "success" and o["tasks"]["retrier"]["tries"] == 2, (o, d2.log())
    # 1 s was left of the 3 s delay; waiting the whole delay again would make it 5 s or more
    gap = retry_gap_ms(b, run_id, "retrier")
    assert 2900 <= gap < 4500, gap
    assert d2.stop() == 0


def test_kill9_before_the_running_record(b, daemons):
    """SIGKILL a few ms after a try starts, before its 'running' record (with its pid) is
    submitted (ENGINE_RUNNING_DELAY_MS): the try's claim is durable before its process starts,
    so the next daemon counts it as failed (SPEC section 5; t2 has no try left, so it fails
    and does not run again) and still finds and kills the orphan by its environment; the
    finished t1 does not run again."""
    b.write("chain.yaml", """
        dag: chain
        tasks:
          t1:
            run: echo t1 >> order.log
          t2:
            needs: [t1]
            run: >-
              echo $$ > pid.t2; echo t2 >> order.log;
              if [ ! -e again ]; then touch again; exec sleep 30; fi
          t3:
            needs: [t2]
            run: echo t3 >> order.log
        """)
    d = daemons(b)
    run_id = trigger(b, "chain")
    orphan = int(wait_file(b.dags / "pid.t2", 5, lines=1).strip())
    d.kill9()
    assert alive(orphan)
    assert ti_state(b, run_id, "t2") in ("queued", "running")
    d2 = daemons(b, log_name="daemon2.log")
    assert poll(lambda: not alive(orphan), 3), "orphan %d of the killed daemon lives:\n%s" % (
        orphan, d2.log())
    o = wait_run(b, run_id, timeout=10, daemon=d2)
    assert o["state"] == "failed" and o["tasks"]["t2"]["state"] == "failed", (o, d2.log())
    assert o["tasks"]["t2"]["tries"] == 1, o
    assert (b.dags / "order.log").read_text().split() == ["t1", "t2"]
    assert d2.stop() == 0


def test_kill9_a_dag_cannot_hide_its_try_from_the_orphan_scan(b, daemons):
    """A DAG env naming BARAM_RUN_ID (or any BARAM_*) would take the run's tags out of a
    try's environment, so a daemon restarted after a kill -9 would not find the try still
    running and the task would run twice: such a DAG is refused; with its own names, the
    try carries the tags and the next daemon kills it."""
    dag = """
        dag: tagged
        env: {%s: mine}
        tasks:
          a:
            run: echo $$ > pid.a; exec sleep 30
        """
    b.write("tagged.yaml", dag % "BARAM_RUN_ID")
    d = daemons(b)
    r = b("dags", "trigger", "tagged", "--json")
    assert r.rc != 0, r
    errors = json.dumps(b("dags", "list", "--json").json["import_errors"])
    assert "env 'BARAM_RUN_ID' is baram's own" in errors, errors
    assert not (b.dags / "pid.a").exists()
    b.write("tagged.yaml", dag % "MINE")
    run_id = poll(lambda: b("dags", "trigger", "tagged", "--json").json.get("run_id"), 5)
    assert run_id, d.log()
    orphan = int(wait_file(b.dags / "pid.a", 5, lines=1).strip())
    environ = open("/proc/%d/environ" % orphan, "rb").read().split(b"\0")
    assert b"BARAM_DAG=tagged" in environ and b"MINE=mine" in environ, environ
    assert b"BARAM_RUN_ID=" + run_id.encode() in environ, environ
    assert poll(lambda: db_query(b, "SELECT 1 FROM tries WHERE task_id = 'a' "
                                    "AND state = 'running'"), 3)
    d.kill9()
    assert alive(orphan)
    d2 = daemons(b, log_name="daemon2.log")
    assert poll(lambda: not alive(orphan), 3), "orphan %d of the killed daemon lives:\n%s" % (
        orphan, d2.log())
    # On PostgreSQL the try was its in-process worker's: the successor finds that worker gone
    # and kills what it left (the processes tagged with its name).
    assert d2.lines("worker of this host gone: declared dead" if ON_PG else
                    "killing a try left running"), d2.log()
    assert d2.stop() == 0


def test_downstream_starts_on_a_durable_upstream(b, daemons):
    """What a task sees in the store when it starts: its upstream's final state. Were it not
    there, a kill -9 at that moment would lose a finished task and run it again."""
    b.write("chain.yaml", """
        dag: chain
        tasks:
          t1:
            run: "true"
          t2:
            needs: [t1]
            run: >-
              %s > seen.t2
        """ % db_shell(b, "SELECT state FROM tries WHERE run_id = '$BARAM_RUN_ID' "
                          "AND task_id = 't1'"))
    d = daemons(b)
    o = wait_run(b, trigger(b, "chain"), daemon=d)
    assert o["state"] == "success", o
    assert (b.dags / "seen.t2").read_text() == "success\n"
    assert d.stop() == 0


def test_kill9_with_no_tries_left_fails_the_task(b, daemons):
    """SPEC 5: a task instance that was running in a dead process counts as a failed try; with
    no tries left it fails (and its downstream is upstream_failed), and its process is gone."""
    b.write("nt.yaml", """
        dag: nt
        tasks:
          a:
            run: echo $$ > a.pid; exec sleep 30
          b:
            needs: [a]
            run: touch b.ran
        """)
    d = daemons(b)
    run_id = trigger(b, "nt")
    orphan = int(wait_file(b.dags / "a.pid", 5, lines=1).strip())
    assert poll(lambda: db_query(b, "SELECT 1 FROM tries WHERE task_id = 'a'"), 3)
    d.kill9()
    assert alive(orphan)
    d2 = daemons(b, log_name="daemon2.log")
    o = wait_run(b, run_id, timeout=10, daemon=d2)
    assert o["state"] == "failed", o
    assert o["tasks"]["a"]["state"] == "failed" and o["tasks"]["a"]["tries"] == 1, o
    assert o["tasks"]["b"]["state"] == "upstream_failed", o
    assert poll(lambda: not alive(orphan), 3), "orphan %d lives" % orphan
    assert not (b.dags / "b.ran").exists()
    assert d2.stop() == 0


@pytest.mark.parametrize("change", ["modify", "delete"])
def test_resumed_run_keeps_its_version(b, daemons, change):
    """kill -9 mid-run, then the DAG file changes or goes away: the restarted daemon resumes
    the run with the version it started with (stored in the database)."""
    text = """
        dag: kv
        defaults: {retries: 1, retry_delay: 0s}
        tasks:
          first:
            run: >-
              if [ -e again ]; then exit 0; fi; touch again; echo $$ > first.pid;
              exec sleep 30
          second:
            needs: [first]
            run: echo %s > second.out
        """
    b.write("kv.yaml", text % "OLD")
    d = daemons(b)
    run_id = trigger(b, "kv")
    orphan = int(wait_file(b.dags / "first.pid", 5, lines=1).strip())
    assert poll(lambda: db_query(b, "SELECT 1 FROM tries WHERE task_id = 'first'"), 3)
    d.kill9()
    if change == "modify":
        b.write("kv.yaml", text % "NEW")
    else:
        (b.dags / "kv.yaml").unlink()
    d2 = daemons(b, log_name="daemon2.log")
    o = wait_run(b, run_id, timeout=10, daemon=d2)
    assert o["state"] == "success", (o, d2.log())
    assert (b.dags / "second.out").read_text() == "OLD\n"
    assert o["tasks"]["first"]["tries"] == 2, o
    assert poll(lambda: not alive(orphan), 3)
    if change == "delete":
        r = b("dags", "trigger", "kv")
        assert r.rc == 2, r
    assert d2.stop() == 0


# ---- 11. SIGTERM --------------------------------------------------------------------------------

GRACE = """
dag: gr
tasks:
  a:
    run: echo a >> a.count; echo $$ > a.pid.$BARAM_TRY; sleep 1; touch a.done
  b:
    needs: [a]
    run: echo b >> b.count
"""


def test_sigterm_waits_for_running_tries(b, daemons):
    b.write("gr.yaml", GRACE)
    d = daemons(b)
    run_id = trigger(b, "gr")
    wait_file(b.dags / "a.pid.1", 5, lines=1)
    t0 = time.monotonic()
    rc = d.stop(signal.SIGTERM)
    took = time.monotonic() - t0
    assert rc == 0, d.log()
    assert (b.dags / "a.done").exists(), "the running try was not waited for"
    assert 0.5 < took < 5, took
    assert d.lines("stopping: no new tasks start") and d.lines("stopped"), d.log()
    o = run_show(b, run_id)
    assert o["tasks"]["a"]["state"] == "success", o
    if o["state"] == "running":
        d2 = daemons(b, log_name="daemon2.log")
        o = wait_run(b, run_id, daemon=d2)
        assert d2.stop() == 0
    assert o["state"] == "success", o
    assert (b.dags / "a.count").read_text() == "a\n"
    assert (b.dags / "b.count").read_text() == "b\n"


def test_sigterm_starts_no_downstream(b, daemons):
    b.write("gr.yaml", GRACE)
    d = daemons(b)
    run_id = trigger(b, "gr")
    wait_file(b.dags / "a.pid.1", 5, lines=1)
    assert d.stop(signal.SIGTERM) == 0, d.log()
    assert (b.dags / "a.done").exists()
    assert not (b.dags / "b.count").exists(), "a downstream task started while stopping"
    o = run_show(b, run_id)
    assert o["state"] == "running" and o["tasks"]["b"]["state"] != "success", o
    d2 = daemons(b, log_name="daemon2.log")
    assert wait_run(b, run_id, daemon=d2)["state"] == "success"
    assert (b.dags / "b.count").read_text() == "b\n"
    assert d2.stop() == 0


@pytest.mark.parametrize("grace", ["0s", "100ms"])
def test_sigterm_short_grace_kills_and_resumes(b, daemons, grace):
    b.write("gr.yaml", GRACE)
    d = daemons(b, "--grace", grace)
    run_id = trigger(b, "gr")
    pid = int(wait_file(b.dags / "a.pid.1", 5, lines=1).strip())
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0, d.log()
    took = time.monotonic() - t0
    assert took < 0.9, "stop took %.2fs with --grace %s" % (took, grace)
    assert poll(lambda: not alive(pid), 2), "the try's process outlived the grace"
    assert not (b.dags / "a.done").exists()
    assert run_show(b, run_id)["state"] == "running"
    d2 = daemons(b, "--grace", grace, log_name="daemon2.log")
    o = wait_run(b, run_id, daemon=d2)
    assert o["state"] == "success", (o, d2.log())
    assert (b.dags / "a.count").read_text() == "a\na\n"
    assert (b.dags / "a.done").exists() and (b.dags / "b.count").read_text() == "b\n"
    assert d2.stop() == 0


def test_second_signal_cuts_the_grace_short(b, daemons):
    b.write("g2.yaml", """
        dag: g2
        tasks:
          a:
            run: >-
              if [ -e again ]; then exit 0; fi; touch again; echo $$ > a.pid;
              exec sleep 30
          b:
            needs: [a]
            run: touch b.ran
        """)
    d = daemons(b)
    run_id = trigger(b, "g2")
    pid = int(wait_file(b.dags / "a.pid", 5, lines=1).strip())
    d.proc.send_signal(signal.SIGTERM)
    d.wait_log('msg="stopping: no new tasks start"', timeout=5)
    time.sleep(0.3)
    d.assert_alive()  # the grace (30 s by default) holds it
    t0 = time.monotonic()
    assert d.stop(signal.SIGINT) == 0, d.log()
    assert time.monotonic() - t0 < 1.5
    assert d.lines("second signal: stopping now"), d.log()
    assert poll(lambda: not alive(pid), 2)
    assert not (b.dags / "b.ran").exists()
    d2 = daemons(b, log_name="daemon2.log")
    o = wait_run(b, run_id, daemon=d2)
    assert o["state"] == "success", o
    assert (b.dags / "b.ran").exists()
    assert d2.stop() == 0


def test_sighup_is_ignored(b, daemons):
    b.write("h.yaml", SIMPLE % ("h", "x", "h"))
    d = daemons(b)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log('msg="SIGHUP ignored"', timeout=5)
    d.assert_alive()
    assert wait_run(b, trigger(b, "h"), daemon=d)["state"] == "success"
    assert d.stop() == 0


def test_foreground_run_beside_the_daemon(b, daemons):
    """`baram run FILE` on the daemon's home owns its run: the daemon must not take it on
    (resume it) while it is going, nor after it ends."""
    p = b.write("fg.yaml", """
        dag: fg
        tasks:
          a:
            run: echo a >> a.count; sleep 1
          b:
            needs: [a]
            run: echo b >> b.count
        """)
    d = daemons(b)
    r = b.run_json(p)
    assert r["state"] == "success", r
    time.sleep(0.3)
    assert (b.dags / "a.count").read_text() == "a\n"
    assert (b.dags / "b.count").read_text() == "b\n"
    assert not d.lines("run resumed") and not d.lines("run started"), d.log()
    assert run_show(b, r["run_id"])["state"] == "success"
    assert d.stop() == 0


# ---- 12. the home lock and flags ----------------------------------------------------------------

def test_second_daemon_and_flags(b, daemons):
    d = daemons(b)
    r = b("standalone", "--dags", b.dags, timeout=10)
    assert r.rc == 1, r
    assert "scheduler.lock" in r.err or "lock" in r.err, r
    assert str(d.pid) in r.err, r
    d.assert_alive()
    for args in (["--bogus"], ["--parallelism", "0"], ["--parallelism", "x"],
                 ["--grace", "soon"], ["extra"]):
        r = b("standalone", *args, timeout=10)
        assert r.rc == 2, (args, r)
    r = b("standalone", "--help")
    assert r.rc == 0 and "usage: baram standalone" in r.out, r
    assert d.stop() == 0
    # The lock went with it: a new daemon starts.
    d2 = daemons(b, log_name="daemon2.log")
    assert d2.stop() == 0


# ---- 13. idle -----------------------------------------------------------------------------------

def test_idle_cpu(b, daemons):
    for i in range(20):
        sched = ('schedule: "@daily"\nstart: 2026-01-01\n' if i % 2 else
                 'schedule: "0 3 1 1 *"\nstart: 2030-01-01\n')
        b.write("d%02d.yaml" % i, "dag: d%02d\n%stasks:\n  a: {run: 'true'}\n  b: "
                "{run: 'true', needs: [a]}\n" % (i, sched))
    d = daemons(b)
    # The daily ones create today's run (catchup is off) and it succeeds; the 2030 ones wait.
    # Then all is quiet.
    daily = ["d%02d" % i for i in range(1, 20, 2)]

    def daily_ran():
        runs = runs_list(b)
        return sorted(r["dag"] for r in runs if r["state"] == "success") == daily and \
            all(r["run_id"].startswith("scheduled__") for r in runs)
    assert poll(daily_ran, 10), (runs_list(b), d.log())
    time.sleep(0.5)
    c0 = d.cpu_ms()
    time.sleep(3)
    used = d.cpu_ms() - c0
    print("idle CPU over 3 s: %.0f ms" % used)
    assert used < 30, "daemon used %.0f ms of CPU in 3 s idle" % used
    assert d.stop() == 0


@pytest.mark.sqlite_only(reason="compares every row of the SQLite file")
def test_an_idle_restart_writes_nothing(b, daemons):
    """Once a home's DAGs and their versions are recorded, starting and stopping the scheduler
    again (and idling in between) leaves every row of the database as it was, but the registry
    of schedulers (`workers`: a start registers, heartbeats, and a stop records it)."""
    for i in range(5):
        b.write("q%d.yaml" % i, "dag: q%d\nschedule: '0 3 1 1 *'\nstart: 2030-01-01\n"
                "tasks:\n  a: {run: 'true'}\n" % i)
    for _ in range(2):  # the first start records the DAGs; the second settles the WAL
        d = daemons(b)
        time.sleep(0.3)
        assert d.stop() == 0

    def snapshot():
        db = sqlite3.connect("file:%s?mode=ro" % (b.home / "baram.db"), uri=True)
        try:
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'workers'")]
            return {t: sorted(repr(r) for r in db.execute("SELECT * FROM %s" % t))
                    for t in tables}
        finally:
            db.close()

    before = snapshot()
    assert before["runs"] == [] and before["dags"], before
    d = daemons(b)
    time.sleep(2.5)  # past a periodic store sync
    assert d.stop() == 0
    assert snapshot() == before


# ---- 14. hooks ----------------------------------------------------------------------------------

def test_hooks_under_daemon(b, daemons):
    b.write("hk.yaml", """
        dag: hk
        params: {ok: "yes"}
        on_success: {run: echo "$BARAM_RUN_ID $BARAM_RUN_STATE" >> success.hook}
        on_failure: {run: echo "$BARAM_RUN_ID $BARAM_RUN_STATE" >> failure.hook}
        tasks:
          a:
            run: test "$PARAM_OK" = yes
        """)
    d = daemons(b)
    ok = trigger(b, "hk")
    assert wait_run(b, ok, daemon=d)["state"] == "success"
    bad = trigger(b, "hk", "--conf", '{"ok": "no"}')
    assert wait_run(b, bad, daemon=d)["state"] == "failed"
    assert wait_file(b.dags / "success.hook", 5) == "%s success\n" % ok
    assert wait_file(b.dags / "failure.hook", 5) == "%s failed\n" % bad
    assert d.stop() == 0
