"""Where a try's files go (SPEC section 4, src/sched/logpath.h): its log beside the other
tries' in the run's folder, and its $BARAM_OUTPUT in a private scratch folder on tmpfs,
/dev/shm/baram-<uid>/<hash of the home>/, removed once read; a scratch folder that is not
safely ours is refused and the output goes beside the log instead."""

import os
import shutil

import pytest

from conftest import SHM, scratch_of
from daemon_util import daemons, poll, trigger, wait_run  # noqa: F401


def shm_is_tmpfs():
    try:
        with open("/proc/mounts") as f:
            return any(line.split()[1] == SHM and line.split()[2] == "tmpfs" for line in f)
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not shm_is_tmpfs(), reason="no tmpfs at /dev/shm")


DAG = """
    dag: outs
    tasks:
      up:
        run: >-
          printf 'value of up' > "$BARAM_OUTPUT"; echo "out=$BARAM_OUTPUT";
          stat -c 'mode=%a uid=%u' "$(dirname "$BARAM_OUTPUT")"
      each:
        needs: [up]
        for_each: [x, y]
        run: printf '%s+%s' {{ item }} "$OUTPUT_UP" > "$BARAM_OUTPUT"
      down:
        needs: [each]
        run: printf '%s' "$OUTPUT_EACH" > "$BARAM_OUTPUT"
    """


def check_outputs(baram, obj):
    """The outputs were read, handed downstream and stored."""
    t = obj["tasks"]
    assert t["up"]["output"] == "value of up", t
    assert t["each[1]"]["output"] == "y+value of up", t
    assert t["down"]["output"] == '["x+value of up","y+value of up"]', t
    r = baram("runs", "show", obj["run_id"], "--json")
    assert r.rc == 0, r
    assert r.json["tasks"]["down"]["output"] == t["down"]["output"], r.json


def test_outputs_go_through_the_scratch_folder(baram):
    p = baram.write("outs.yaml", DAG)
    obj = baram.run_json(p)
    check_outputs(baram, obj)
    scratch = scratch_of(baram.home)
    log = baram.try_log(obj, "up").read_text()
    assert "out=" + scratch + "/" in log, log
    assert "mode=700 uid=%d\n" % os.geteuid() in log, log
    # outputs removed once read, then the folder when baram stopped; not the user's folder
    assert not os.path.exists(scratch)
    assert os.path.isdir(os.path.dirname(scratch))
    files = sorted(p.name for p in baram.run_dir(obj).iterdir())
    assert files == ["down.1.log", "each.0.1.log", "each.1.1.log", "up.1.log"], files


def test_output_of_a_failed_try_is_removed_unread(baram):
    """A try that fails after writing its output leaves nothing in the scratch folder; its
    retry starts from no output."""
    p = baram.write("fails.yaml", """
        dag: fails
        tasks:
          flaky:
            retries: 1
            run: |
              if [ "$BARAM_TRY" = 1 ]; then echo partial > "$BARAM_OUTPUT"; exit 3; fi
              test ! -e "$BARAM_OUTPUT"
        """)
    obj = baram.run_json(p)
    assert obj["tasks"]["flaky"]["tries"] == 2 and obj["tasks"]["flaky"]["output"] is None, obj
    assert not os.path.exists(scratch_of(baram.home))


@pytest.mark.parametrize("plant", ["symlink", "open_folder", "other_user"])
def test_unsafe_scratch_folder_is_refused(baram, tmp_path, plant):
    """Something planted at the scratch folder's path is never written through: the run
    works with its outputs beside the logs."""
    scratch = scratch_of(baram.home)
    os.makedirs(os.path.dirname(scratch), mode=0o700, exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    if plant == "symlink":
        os.symlink(elsewhere, scratch)
    else:
        os.mkdir(scratch, 0o700)
        if plant == "open_folder":
            os.chmod(scratch, 0o777)
        elif os.geteuid() == 0:
            os.chown(scratch, 65534, 65534)
        else:
            pytest.skip("making a folder of another user needs root")
    try:
        p = baram.write("outs.yaml", DAG)
        r = baram("run", p, "--json")
        assert r.rc == 0, r
        obj = r.json
        check_outputs(baram, obj)
        assert "scratch folder refused" in r.err, r
        assert list(elsewhere.iterdir()) == []
        if plant != "symlink":
            assert os.listdir(scratch) == []
        out = baram.run_dir(obj) / "up.1.output"
        assert out.read_text() == "value of up"
        assert "out=%s\n" % out in baram.try_log(obj, "up").read_text()
    finally:
        if os.path.islink(scratch):
            os.unlink(scratch)
        else:
            shutil.rmtree(scratch)


def test_daemon_makes_a_removed_scratch_folder_again(baram, daemons):
    """A scratch folder removed while the daemon runs (a cleaner of /dev/shm) is made again
    at the next run's start: its tries still have their outputs read and stored."""
    baram.env["BARAM_DAGS"] = str(baram.dags)
    baram.write("outs.yaml", DAG)
    d = daemons(baram)
    first = wait_run(baram, trigger(baram, "outs"), daemon=d)
    check_outputs(baram, first)
    scratch = scratch_of(baram.home)
    shutil.rmtree(scratch)
    again = wait_run(baram, trigger(baram, "outs"), daemon=d)
    check_outputs(baram, again)
    assert [n for n in os.listdir(scratch) if not n.startswith(".engine-")] == []
    assert "scratch folder refused" not in d.log()
    assert d.stop() == 0
    assert not os.path.exists(scratch)


def test_scratch_folder_removed_mid_run_is_made_again_for_the_next_try(baram):
    """The scratch folder removed while a run goes on (a cleaner of /dev/shm, logind's
    RemoveIPC): the next try finds it gone, makes it again and writes its output there."""
    p = baram.write("mid.yaml", """
        dag: mid
        tasks:
          a:
            run: rm -rf "$(dirname "$BARAM_OUTPUT")"
          b:
            needs: [a]
            run: printf hello > "$BARAM_OUTPUT"; echo "out=$BARAM_OUTPUT"
        """)
    r = baram("run", p, "--json")
    assert r.rc == 0, r
    assert r.json["tasks"]["b"]["output"] == "hello", r.json
    scratch = scratch_of(baram.home)
    assert "out=" + scratch + "/" in baram.try_log(r.json, "b").read_text()
    assert not os.path.exists(scratch)
    assert "scratch folder refused" not in r.err, r


PLANT = r'''
import os, sys


def fnv(h, s):
    for byte in s.encode():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


scratch = os.path.dirname(os.environ["BARAM_OUTPUT"])
run = fnv(fnv(fnv(0xcbf29ce484222325, os.environ["BARAM_DAG"]), "/"), os.environ["BARAM_RUN_ID"])
names = ["%016x.1.1.output" % run,  # by b's place in the run (what baram once used)
         "%016x.1.output" % fnv(fnv(run, "/"), "b")]  # by b's name: b's own
for name in names:
    with open(os.path.join(scratch, name), "w") as f:
        f.write("not b")
'''


def test_a_file_left_at_a_tries_output_is_not_taken_for_its_output(baram):
    """A file already at a try's $BARAM_OUTPUT (left by a daemon that died, or another task
    instance's of an earlier order) is removed before the try starts: a try that writes
    nothing has no output."""
    baram.write("plant.py", PLANT)
    p = baram.write("planted.yaml", """
        dag: planted
        tasks:
          a:
            run: python3 "%s/plant.py"
          b:
            needs: [a]
            run: "true"
        """ % baram.dags)
    r = baram("run", p, "--json")
    assert r.rc == 0, r
    assert r.json["tasks"]["b"]["output"] is None, r.json
    scratch = scratch_of(baram.home)
    left = os.listdir(scratch)
    for name in left:  # the old-style name: nothing of baram's, so nothing removes it
        os.unlink(os.path.join(scratch, name))
    assert [n for n in left if not n.endswith(".1.1.output")] == [], left


def test_an_engine_stopping_leaves_the_folder_another_engine_of_the_home_uses(baram, daemons):
    """Two bakers of one home (a daemon and a `baram run`): the one that stops removes the
    scratch folder only when no other engine has its mark there, so a try of the other that
    writes its output later still finds it."""
    baram.env["BARAM_DAGS"] = str(baram.dags)
    baram.write("slow.yaml", """
        dag: slow
        tasks:
          late:
            run: >-
              touch started; while [ ! -e go ]; do sleep 0.05; done;
              printf late > "$BARAM_OUTPUT"
        """)
    quick = baram.write("quick.yaml", """
        dag: quick
        tasks:
          a: {run: printf q > "$BARAM_OUTPUT"}
        """)
    d = daemons(baram)
    run_id = trigger(baram, "slow")
    assert poll(lambda: (baram.dags / "started").exists(), 10), d.log()
    r = baram("run", quick, "--json")
    assert r.rc == 0 and r.json["tasks"]["a"]["output"] == "q", r
    assert os.path.isdir(scratch_of(baram.home))
    (baram.dags / "go").touch()
    o = wait_run(baram, run_id, daemon=d)
    assert o["state"] == "success" and o["tasks"]["late"]["output"] == "late", (o, d.log())
    assert d.stop() == 0
    assert not os.path.exists(scratch_of(baram.home))
