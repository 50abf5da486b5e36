"""Exit 99 (skip), the trigger rules of SPEC section 2, and the run-state rule
(SPEC section 1: success when every leaf is success or skipped)."""

import textwrap

import pytest

from conftest import read_events, stamp, states

# Sources of every upstream state: ok (success), bad (failed), skip (skipped),
# skip2 (skipped), uf (upstream_failed: all_success below a failure).
SOURCES = """
  ok: {run: "true"}
  bad: {run: "exit 1"}
  skip: {run: "exit 99"}
  skip2: {run: "exit 99"}
  uf: {run: "true", needs: [bad]}
"""

# (rule, upstreams, expected state of the downstream)
CASES = [
    ("all_success", ["ok"], "success"),
    ("all_success", ["ok", "bad"], "upstream_failed"),
    ("all_success", ["ok", "uf"], "upstream_failed"),
    ("all_success", ["ok", "skip"], "skipped"),
    ("all_success", ["bad", "skip"], "upstream_failed"),
    ("all_failed", ["bad", "uf"], "success"),
    ("all_failed", ["bad"], "success"),
    ("all_failed", ["bad", "ok"], "skipped"),
    ("all_failed", ["bad", "skip"], "skipped"),
    ("all_done", ["ok", "bad", "skip", "uf"], "success"),
    ("all_done", ["bad"], "success"),
    ("one_success", ["ok", "bad"], "success"),
    ("one_success", ["ok", "skip"], "success"),
    ("one_success", ["bad", "skip"], "upstream_failed"),
    ("one_success", ["bad", "uf"], "upstream_failed"),
    ("one_success", ["skip", "skip2"], "skipped"),
    ("one_failed", ["ok", "bad"], "success"),
    ("one_failed", ["ok", "uf"], "success"),
    ("one_failed", ["ok", "skip"], "skipped"),
    ("one_failed", ["ok"], "skipped"),
    ("none_failed", ["ok", "skip"], "success"),
    ("none_failed", ["skip", "skip2"], "success"),
    ("none_failed", ["ok", "bad"], "upstream_failed"),
    ("none_failed", ["skip", "uf"], "upstream_failed"),
]


def case_name(i, rule, ups):
    return "d%02d_%s__%s" % (i, rule, "_".join(ups))


@pytest.fixture(scope="module")
def trigger_run(tmp_path_factory):
    from conftest import Baram
    base = tmp_path_factory.mktemp("triggers")
    (base / "dags").mkdir()
    b = Baram(base / "home", base / "dags")
    text = "dag: triggers\ntasks:\n" + SOURCES
    for i, (rule, ups, _) in enumerate(CASES):
        text += "  %s: {run: 'true', needs: [%s], trigger: %s}\n" % (
            case_name(i, rule, ups), ", ".join(ups), rule)
    p = b.write("triggers.yaml", text)
    return b.run_json(p, "--parallelism", "8", expect_rc=1)


def test_sources(trigger_run):
    s = states(trigger_run)
    assert (s["ok"], s["bad"], s["skip"], s["uf"]) == (
        "success", "failed", "skipped", "upstream_failed")
    assert trigger_run["tasks"]["skip"]["exit_code"] == 99
    assert trigger_run["tasks"]["uf"]["tries"] == 0


@pytest.mark.parametrize("i", range(len(CASES)),
                         ids=["%s(%s)" % (c[0], ",".join(c[1])) for c in CASES])
def test_trigger_rule(trigger_run, i):
    rule, ups, want = CASES[i]
    t = trigger_run["tasks"][case_name(i, rule, ups)]
    assert t["state"] == want, (rule, ups, t)
    if want == "success":
        assert t["tries"] == 1
    else:
        assert t["tries"] == 0, t


def test_skip_cascades(baram):
    p = baram.write("sk.yaml", """
        dag: sk
        tasks:
          branch: {run: 'exit 99'}
          down: {run: 'touch ran', needs: [branch]}
          further: {run: 'touch ran2', needs: [down]}
        """)
    obj = baram.run_json(p)
    assert obj["state"] == "success"
    assert states(obj) == {"branch": "skipped", "down": "skipped", "further": "skipped"}
    assert not (baram.dags / "ran").exists() and not (baram.dags / "ran2").exists()


def test_one_success_starts_early(baram):
    p = baram.write("early.yaml", """
        dag: early
        tasks:
          fast: {run: 'true'}
          slow: {run: 'sleep 2; %s'}
          eager: {run: '%s', needs: [fast, slow], trigger: one_success}
        """ % (stamp("end"), stamp("start")))
    obj = baram.run_json(p, "--parallelism", "4")
    assert obj["tasks"]["eager"]["state"] == "success"
    ev = read_events(baram.dags / "events.log")
    assert ev["eager"]["start"] < ev["slow"]["end"], ev


def test_one_failed_starts_early(baram):
    p = baram.write("early2.yaml", """
        dag: early2
        tasks:
          boom: {run: 'exit 1'}
          slow: {run: 'sleep 2; %s'}
          alarm: {run: '%s', needs: [boom, slow], trigger: one_failed}
        """ % (stamp("end"), stamp("start")))
    obj = baram.run_json(p, "--parallelism", "4")
    assert obj["tasks"]["alarm"]["state"] == "success"
    ev = read_events(baram.dags / "events.log")
    assert ev["alarm"]["start"] < ev["slow"]["end"], ev


# run state: (tasks yaml, expected run state, exit code)
RUN_STATE = {
    "failed_nonleaf_all_done_leaf": ("""
          a: {run: 'exit 1'}
          cleanup: {run: 'true', needs: [a], trigger: all_done}
        """, "success", 0),
    "leaf_skipped": ("""
          a: {run: 'true'}
          b: {run: 'exit 99', needs: [a]}
        """, "success", 0),
    "leaf_upstream_failed": ("""
          a: {run: 'exit 1'}
          b: {run: 'true', needs: [a]}
        """, "failed", 1),
    "leaf_failed": ("""
          a: {run: 'true'}
          b: {run: 'exit 2', needs: [a]}
        """, "failed", 1),
    "one_leaf_failed_other_ok": ("""
          a: {run: 'true'}
          b: {run: 'exit 2'}
        """, "failed", 1),
    "failure_handled_by_all_failed": ("""
          a: {run: 'exit 1'}
          recover: {run: 'true', needs: [a], trigger: all_failed}
        """, "success", 0),
    "all_failed_leaf_skipped_when_ok": ("""
          a: {run: 'true'}
          recover: {run: 'true', needs: [a], trigger: all_failed}
        """, "success", 0),
}


@pytest.mark.parametrize("case", sorted(RUN_STATE))
def test_run_state_rule(baram, case):
    tasks, want, rc = RUN_STATE[case]
    body = textwrap.indent(textwrap.dedent(tasks).strip("\n"), "  ")
    p = baram.write("rs.yaml", "dag: rs\ntasks:\n" + body + "\n")
    r = baram.run(p, "--json")
    assert r.rc == rc, r
    assert r.json["state"] == want, r
