"""`baram run` exit codes and usage errors (SPEC section 3), `dags validate`,
`--help` on every command, `--version`."""

import os
import re

import pytest

from conftest import BIN, db_created, db_env

OK_DAG = """
dag: ok
params: {x: 1}
tasks:
  a:
    run: "true"
"""

# Problems in a DAG file; each must give exit 2 from `baram run` and a
# FILE:LINE:COL: error: diagnostic on stderr.
BAD_DAGS = {
    "unknown_key": """
        dag: bad1
        tasks:
          a:
            runn: echo hi
        """,
    "cycle": """
        dag: bad2
        tasks:
          a: {run: "true", needs: [b]}
          b: {run: "true", needs: [a]}
        """,
    "unknown_need": """
        dag: bad3
        tasks:
          extract: {run: "true"}
          load: {run: "true", needs: [extrct]}
        """,
    "malformed_yaml": """
        dag: bad4
        tasks:
          a: {run: "true"
        """,
    "bad_duration": """
        dag: bad5
        tasks:
          a: {run: "true", timeout: 5 parsecs}
        """,
    "bad_trigger": """
        dag: bad6
        tasks:
          a: {run: "true"}
          b: {run: "true", needs: [a], trigger: all_sucess}
        """,
    "two_kinds": """
        dag: bad7
        tasks:
          a: {run: "true", wait: {file: /x}}
        """,
    "unknown_template_param": """
        dag: bad8
        params: {region: eu}
        tasks:
          a: {run: "echo {{ params.regoin }}"}
        """,
}


def diag_re(path):
    return re.compile(r"^%s:\d+:\d+: error: .+" % re.escape(str(path)), re.M)


@pytest.mark.parametrize("case", sorted(BAD_DAGS))
def test_invalid_dag_exit_2_with_gcc_diagnostic(baram, case):
    p = baram.write(case + ".yaml", BAD_DAGS[case])
    r = baram.run(p)
    assert r.rc == 2, r
    assert diag_re(p).search(r.err), r
    assert r.out.strip() == "" or "error" not in r.out, r


def test_invalid_dag_suggestions(baram):
    p = baram.write("k.yaml", BAD_DAGS["unknown_key"])
    r = baram.run(p)
    assert r.rc == 2 and "did you mean" in r.err and "run" in r.err, r
    p = baram.write("n.yaml", BAD_DAGS["unknown_need"])
    r = baram.run(p)
    assert r.rc == 2 and "extract" in r.err, r
    p = baram.write("c.yaml", BAD_DAGS["cycle"])
    r = baram.run(p)
    assert r.rc == 2 and re.search(r"\b(a -> b -> a|b -> a -> b)\b", r.err), r


def test_invalid_dag_leaves_no_run(baram):
    p = baram.write("bad.yaml", BAD_DAGS["cycle"])
    assert baram.run(p).rc == 2
    ok = baram.write("ok.yaml", OK_DAG)
    # nothing recorded for the bad file: the only run is the good one
    assert baram.run(ok).rc == 0
    ids = baram.run_ids()
    assert len(ids) == 1, ids
    r = baram("runs", "list", "bad2")
    assert r.rc == 0 and "manual__" not in r.out and "no runs" in r.out, r


def test_invalid_dag_runs_list_empty(baram):
    p = baram.write("bad.yaml", BAD_DAGS["unknown_key"])
    assert baram.run(p).rc == 2
    r = baram("runs", "list")
    # an empty list, or no database at all yet (a home where nothing ever ran)
    assert "manual__" not in r.out, r
    assert r.rc == 0 or (r.rc == 2 and "no database" in r.err), r


def test_missing_file_exit_2(baram):
    r = baram.run(baram.dags / "nope.yaml")
    assert r.rc == 2, r
    assert "nope.yaml" in r.err, r


def test_unreadable_file_exit_2(baram):
    if os.geteuid() == 0:
        # root reads through chmod 000: use things that cannot be read as a file
        d = baram.dags / "adir.yaml"
        d.mkdir()
        r = baram.run(d)
        assert r.rc == 2, r
        assert "adir.yaml" in r.err, r
        link = baram.dags / "dangling.yaml"
        link.symlink_to(baram.dags / "missing-target.yaml")
        r = baram.run(link)
        assert r.rc == 2, r
        assert "dangling.yaml" in r.err, r
    else:
        p = baram.write("secret.yaml", OK_DAG)
        p.chmod(0)
        r = baram.run(p)
        assert r.rc == 2, r
        assert "secret.yaml" in r.err, r


def test_unknown_flag_did_you_mean(baram):
    p = baram.write("ok.yaml", OK_DAG)
    r = baram.run(p, "--paralelism", "2")
    assert r.rc == 2, r
    assert "--paralelism" in r.err and "did you mean" in r.err and "--parallelism" in r.err, r


def test_missing_file_argument(baram):
    r = baram("run")
    assert r.rc == 2, r
    assert r.err.strip(), r


@pytest.mark.parametrize("date", ["2026-13-01", "2026-02-30", "yesterday", "2026/01/01", ""])
def test_bad_date_exit_2(baram, date):
    p = baram.write("ok.yaml", OK_DAG)
    r = baram.run(p, "--date", date)
    assert r.rc == 2, r
    assert r.err.strip(), r


def test_good_date_exit_0(baram):
    p = baram.write("ok.yaml", OK_DAG)
    r = baram.run(p, "--date", "2024-02-29")
    assert r.rc == 0, r


@pytest.mark.parametrize("n", ["0", "-1", "abc", "2x"])
def test_bad_parallelism_exit_2(baram, n):
    p = baram.write("ok.yaml", OK_DAG)
    r = baram.run(p, "--parallelism", n)
    assert r.rc == 2, r


def test_param_without_equals_exit_2(baram):
    p = baram.write("ok.yaml", OK_DAG)
    r = baram.run(p, "--param", "x")
    assert r.rc == 2, r
    assert "x" in r.err, r


def test_unknown_param_exit_2(baram):
    p = baram.write("p.yaml", """
        dag: p
        params: {region: eu}
        tasks:
          a: {run: "echo {{ params.region }}"}
        """)
    r = baram.run(p, "--param", "regoin=us")
    assert r.rc == 2, r
    assert "regoin" in r.err and "did you mean" in r.err and "region" in r.err, r
    assert "manual__" not in baram("runs", "list").out


@pytest.mark.parametrize("null", ["null", "~"])
def test_missing_required_param_exit_2(baram, null):
    p = baram.write("req.yaml", """
        dag: req
        params:
          x: %s
        tasks:
          a: {run: "echo {{ params.x }} > x.txt"}
        """ % null)
    r = baram.run(p)
    assert r.rc == 2, r
    assert "x" in r.err, r
    assert not (baram.dags / "x.txt").exists()
    r = baram.run(p, "--param", "x=given")
    assert r.rc == 0, r
    assert (baram.dags / "x.txt").read_text() == "given\n"


def test_relative_home(tmp_path, baram):
    # the home given relative to baram's cwd, the DAG in another folder: the
    # task (running in the DAG's folder) must still reach $BARAM_OUTPUT
    p = baram.write("sub/rel.yaml", """
        dag: rel
        tasks:
          a: {run: printf 'from a' > "$BARAM_OUTPUT"}
          b: {run: printf '%s' "$OUTPUT_A" > got.txt, needs: [a]}
        """)
    for how in ("flag", "env"):
        home = baram.dags / ("relhome" if how == "flag" else "relhome2")
        if how == "flag":
            r = baram("run", "sub/rel.yaml", "--json", "--home", "relhome", env=db_env(home))
        else:
            r = baram("run", "sub/rel.yaml", "--json",
                      env=dict(db_env(home), BARAM_HOME="relhome2"))
        assert r.rc == 0, (how, r)
        assert r.json["tasks"]["a"]["output"] == "from a", r
        assert (p.parent / "got.txt").read_text() == "from a"
        assert db_created(home)
        assert (home / "logs" / "rel").is_dir()
        (p.parent / "got.txt").unlink()


def test_home_flag(tmp_path, baram):
    other = tmp_path / "other-home"
    p = baram.write("ok.yaml", OK_DAG)
    r = baram("run", p, "--home", other, env=db_env(other))
    assert r.rc == 0, r
    assert db_created(other)
    r = baram("runs", "list", "--home", other, env=db_env(other))
    assert r.rc == 0 and "manual__" in r.out, r
    # the BARAM_HOME of the environment was not used
    assert "manual__" not in baram("runs", "list").out


def test_dags_validate_folder(baram):
    folder = baram.dags / "mixed"
    folder.mkdir()
    (folder / "good.yaml").write_text("dag: good\ntasks:\n  a: {run: 'true'}\n")
    (folder / "good2.yaml").write_text("dag: good2\ntasks:\n  a: {run: 'true'}\n"
                                       "  b: {run: 'true', needs: [a]}\n")
    (folder / "bad.yaml").write_text("dag: bad\ntasks:\n  a: {runn: 'true'}\n")
    (folder / "worse.yaml").write_text("dag: worse\ntasks:\n  a: {run: 'true', needs: [zz]}\n")
    r = baram("dags", "validate", folder)
    assert r.rc == 1, r
    assert re.search(r"bad\.yaml:3:\d+: error: ", r.err), r
    assert re.search(r"worse\.yaml:3:\d+: error: ", r.err), r
    assert "good.yaml:" not in r.err and "good2.yaml:" not in r.err, r
    r = baram("dags", "validate", folder / "good.yaml", folder / "good2.yaml")
    assert r.rc == 0, r
    r = baram("dags", "validate", folder / "good.yaml", folder / "bad.yaml")
    assert r.rc == 1, r


def test_version():
    import subprocess
    r = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    assert re.match(r"^baram \d+\.\d+", r.stdout), r.stdout


HELP_COMMANDS = [
    [], ["run"], ["dags"], ["dags", "validate"], ["runs"], ["runs", "list"], ["runs", "show"],
    ["runs", "profile"], ["tasks"], ["tasks", "test"], ["logs"], ["init"],
    ["dags", "versions"], ["db"], ["db", "clean"],
]


@pytest.mark.parametrize("cmd", HELP_COMMANDS, ids=lambda c: "-".join(c) or "top")
def test_help_everywhere(baram, cmd):
    r = baram(*cmd, "--help")
    assert r.rc == 0, r
    assert "usage" in r.out.lower(), r
    if cmd:
        assert cmd[-1] in r.out, r


API_FLAGS = ("--listen", "--api-max-rps", "--api-threads")


def test_scheduler_help_lists_only_the_flags_it_takes(baram):
    """`baram scheduler` has no API: its help lists none of the API's flags, and it refuses
    them (exit 2) rather than ignoring them; `baram standalone` lists and takes them."""
    r = baram("scheduler", "--help")
    assert r.rc == 0 and "usage: baram scheduler" in r.out, r
    assert not [f for f in API_FLAGS if f in r.out], r.out
    for f in ("--dags", "--parallelism", "--grace", "--home"):
        assert f in r.out, (f, r.out)
    for f in API_FLAGS:
        r = baram("scheduler", f, "1")
        assert r.rc == 2 and "unknown flag '%s'" % f in r.err, r
    r = baram("standalone", "--help")
    assert r.rc == 0 and "usage: baram standalone" in r.out, r
    assert all(f in r.out for f in API_FLAGS), r.out


def test_unknown_command_did_you_mean(baram):
    r = baram("rnu")
    assert r.rc == 2, r
    assert "did you mean" in r.err and "run" in r.err, r


@pytest.mark.parametrize("cmd", [["run", "{f}"], ["runs", "list"], ["dags", "validate", "{f}"],
                                 ["tasks", "test", "{f}", "a"]], ids=lambda c: "-".join(c[:2]))
def test_global_home_flag_everywhere(baram, tmp_path, cmd):
    # --home is a global flag (`baram --help`): every command takes it, before or after
    p = baram.write("ok.yaml", OK_DAG)
    other = tmp_path / "h2"
    assert baram("run", p, "--home", other).rc == 0  # so that the home exists
    args = [a.format(f=p) for a in cmd]
    r = baram(*args, "--home", other)
    assert r.rc == 0, r
    r = baram("--home", other, *args)
    assert r.rc == 0, r


def test_unusable_home_exit_2(baram, tmp_path):
    p = baram.write("ok.yaml", OK_DAG)
    afile = tmp_path / "afile"
    afile.write_text("")
    r = baram.run(p, "--home", afile)
    assert r.rc == 2 and "afile" in r.err, r
    baram.home.mkdir(parents=True, exist_ok=True)
    r = baram.run(p, env={"BARAM_PARALLELISM": "lots"})
    assert r.rc == 2 and "BARAM_PARALLELISM" in r.err, r
