"""Every shipped example (examples/*.yaml) runs green with `baram run`, and
scripts/run-examples reports them all."""

import subprocess

import pytest

from conftest import BIN, ROOT, base_env, check_run_shape, db_created, states

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 3, EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(baram, path):
    r = baram("run", path, "--json", cwd=baram.dags)
    assert r.rc == 0, r
    obj = r.json
    check_run_shape(obj)
    assert obj["state"] == "success"
    assert not [s for s in states(obj).values() if s in ("failed", "upstream_failed")], obj
    r = baram("dags", "validate", path)
    assert r.rc == 0, r


def test_example_branching_both_ways(baram):
    path = ROOT / "examples" / "branching.yaml"
    sat = baram.run_json(path, "--date", "2026-11-28")
    mon = baram.run_json(path, "--date", "2026-11-30", "--param", "smoke=off")
    s, m = states(sat), states(mon)
    assert (s["weekday_load"], s["weekend_load"], s["publish"]) == ("skipped", "success", "success")
    assert (m["weekday_load"], m["weekend_load"], m["publish"]) == ("success", "skipped", "success")
    assert m["smoke_test"] == "skipped" and m["cleanup"] == "success"


def test_example_etl_fans_out(baram):
    obj = baram.run_json(ROOT / "examples" / "etl.yaml", "--date", "2026-03-01")
    loads = [n for n in obj["tasks"] if n.startswith("load[")]
    assert len(loads) == 4, obj["tasks"].keys()
    assert obj["tasks"]["report"]["state"] == "success"


def test_run_examples_script(tmp_path):
    work = tmp_path / "repo"
    env = base_env(work / ".baram")
    del env["BARAM_HOME"]  # the script uses the default home ./.baram of its cwd...
    # ...which is the repository root; run it from a copy so the tree stays clean
    (work / "scripts").mkdir(parents=True)
    subprocess.run(["cp", "-r", str(ROOT / "examples"), str(work / "examples")], check=True,
                   timeout=60)
    subprocess.run(["cp", str(ROOT / "scripts" / "run-examples"), str(work / "scripts")],
                   check=True, timeout=60)
    r = subprocess.run([str(work / "scripts" / "run-examples"), BIN], cwd=str(work), env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("ok ", "FAIL "))]
    assert len(lines) == len(EXAMPLES), r.stdout
    assert all(ln.startswith("ok ") for ln in lines), r.stdout
    assert r.stdout.count("manual__") >= 2 * len(EXAMPLES), r.stdout  # result lines + runs list
    assert db_created(work / ".baram")
    # a failing example makes it fail
    (work / "examples" / "zz_broken.yaml").write_text("dag: broken\ntasks:\n  a: {run: 'exit 3'}\n")
    r = subprocess.run([str(work / "scripts" / "run-examples"), BIN], cwd=str(work), env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r.stdout
    assert "FAIL  examples/zz_broken.yaml" in r.stdout, r.stdout
