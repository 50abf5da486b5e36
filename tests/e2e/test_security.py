"""SECURITY: template values are inserted shell-quoted (SPEC section 2), so a
hostile parameter, output or for_each item is printed literally and never
runs as shell syntax."""

import os

import pytest

HOSTILE = {
    "quote_semicolon": "'; touch PWNED; '",
    "dollar_paren": "$(touch PWNED)",
    "backticks": "`touch PWNED`",
    "dquote_semicolon": '"; touch PWNED; #',
    "newline": "x\ntouch PWNED",
    "backslash_quote": "\\'; touch PWNED; echo \\",
    "dollar_var": "${HOME:+$(touch PWNED)}",
    "pipe_amp": "a | touch PWNED & touch PWNED2 > y",
    "empty": "",
}

DAG = """
dag: inject
params: {v: harmless}
tasks:
  unquoted:
    run: printf '%s' {{ params.v }} > unquoted.out
  double:
    run: printf '%s' "{{ params.v }}" > double.out
  single:
    run: printf '%s' '{{ params.v }}' > single.out
  mixed:
    run: printf '%s' "pre-{{ params.v }}-post" > mixed.out
  echo:
    run: echo {{ params.v }}
  env:
    run: printf '%s' "$PARAM_V" > env.out
  down:
    needs: [unquoted]
    run: printf '%s' "$PARAM_V" > "$BARAM_OUTPUT"
  consume:
    needs: [down]
    run: printf '%s' {{ outputs.down }} > consume.out
"""


def pwned(folder):
    return [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files
            if f.startswith("PWNED")]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_param_printed_literally(baram, name):
    value = HOSTILE[name]
    p = baram.write("inject.yaml", DAG)
    obj = baram.run_json(p, "--param", "v=" + value)
    assert obj["state"] == "success", obj
    d = baram.dags
    for f in ("unquoted", "double", "single", "env", "consume"):
        assert (d / (f + ".out")).read_text() == value, f
    assert (d / "mixed.out").read_text() == "pre-" + value + "-post"
    log = baram.try_log(obj, "echo").read_text()
    assert log == value + "\n", log
    assert obj["tasks"]["down"]["output"] == value
    assert pwned(baram.dags.parent) == []


def test_hostile_output_and_items(baram):
    # values arriving from an upstream's output, as lines for for_each
    lines = ["$(touch PWNED)", "`touch PWNED`", "'; touch PWNED; '", '"; touch PWNED; #']
    (baram.dags / "hostile.txt").write_text("\n".join(lines) + "\n")
    p = baram.write("items.yaml", """
        dag: items
        tasks:
          src: {run: 'cat hostile.txt > "$BARAM_OUTPUT"'}
          each:
            needs: [src]
            for_each: "{{ outputs.src }}"
            run: printf '%s' {{ item }} > "$BARAM_OUTPUT"
          each_dq:
            needs: [src]
            for_each: "{{ outputs.src }}"
            run: printf '%s' "{{ item }}" > "$BARAM_OUTPUT"
        """)
    obj = baram.run_json(p)
    for task in ("each", "each_dq"):
        got = [obj["tasks"]["%s[%d]" % (task, i)]["output"] for i in range(len(lines))]
        assert got == lines, (task, got)
    assert pwned(baram.dags.parent) == []


def test_dag_env_value_not_evaluated_by_baram(baram):
    # the DAG's env values are set as they are (the shell may expand them only
    # where the task's own command asks for it)
    p = baram.write("envq.yaml", """
        dag: envq
        env: {V: "$(touch PWNED)"}
        tasks:
          a: {run: printf '%s' "$V" > v.out}
        """)
    baram.run_json(p)
    assert (baram.dags / "v.out").read_text() == "$(touch PWNED)"
    assert pwned(baram.dags.parent) == []


# Harder quoting contexts for the template lexer. For each, baram must either
# refuse the DAG (exit 2, nothing run) or print every hostile value exactly;
# in no case may PWNED appear.
CONTEXTS = {
    "dq_after_sq_backslash": ("printf '%s\\n' \"{{ V }}\" > OUT", "{v}\n"),
    "dq_with_escaped_quotes": ("printf '%s' \"a\\\"{{ V }}\\\"b\" > OUT", 'a"{v}"b'),
    "cmdsubst_in_dq": ("printf '%s' \"$(printf '%s' {{ V }})\" > OUT", "{v}"),
    "cmdsubst_dq_in_dq": ("printf '%s' \"$(printf '%s' \"{{ V }}\")\" > OUT", "{v}"),
    "backticks_in_dq": ("printf '%s' \"`printf '%s' {{ V }}`\" > OUT", "{v}"),
    "param_default": ("printf '%s' \"${UNSET_X:-{{ V }}}\" > OUT", "{v}"),
    "assignment": ("X={{ V }}; printf '%s' \"$X\" > OUT", "{v}"),
    "heredoc": ("cat > OUT <<EOF\n{{ V }}\nEOF", "{v}\n"),
    "comment": ("printf done > OUT # {{ V }}", "done"),
    "sq_then_dq_then_unquoted": ("printf '%s' 'a'\"b\"{{ V }} > OUT", "ab{v}"),
}
CTX_VALUES = ["$(touch PWNED)", "`touch PWNED`", "'; touch PWNED; '", '"; touch PWNED; #',
              "x\ntouch PWNED", "\\\"; touch PWNED; #", "$((1+1))"]


@pytest.mark.parametrize("ctx", sorted(CONTEXTS))
def test_quoting_contexts(baram, ctx):
    cmd, want = CONTEXTS[ctx]
    params = "".join("  v%d: harmless\n" % i for i in range(len(CTX_VALUES)))
    tasks = ""
    for i in range(len(CTX_VALUES)):
        c = cmd.replace("{{ V }}", "{{ params.v%d }}" % i).replace("OUT", "out%d.txt" % i)
        tasks += "  t%d:\n    run: |\n%s\n" % (i, "\n".join("      " + ln for ln in c.split("\n")))
    p = baram.write("ctx.yaml", "dag: ctx\nparams:\n" + params + "tasks:\n" + tasks)
    args = []
    for i, v in enumerate(CTX_VALUES):
        args += ["--param", "v%d=%s" % (i, v)]
    r = baram.run(p, "--json", *args)
    try:
        if r.rc == 2:  # refused as unsafe: then nothing ran
            assert not list(baram.dags.glob("out*.txt")), r
            assert "error" in r.err, r
            return
        assert r.rc == 0, r
        for i, v in enumerate(CTX_VALUES):
            got = (baram.dags / ("out%d.txt" % i)).read_text()
            assert got == want.format(v=v), (ctx, v, got)
    finally:
        assert pwned(baram.dags.parent) == [], (ctx, r)


@pytest.mark.parametrize("dag_id,task", [("..", "a"), ("x", ".."), ("..", ".."), (".", ".")])
def test_ids_cannot_escape_the_logs_folder(baram, dag_id, task):
    # DAG ids and task names are path components of HOME/logs/<dag>/<run>/<task>/:
    # "." and ".." must be refused or kept inside HOME/logs/<dag>/<run>/
    p = baram.write("dots.yaml", 'dag: "%s"\ntasks:\n  "%s": {run: "echo hi"}\n' % (dag_id, task))
    r = baram.run(p, "--json")
    if r.rc == 2:
        assert "error" in r.err, r
        return
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    logs = (baram.home / "logs").resolve()
    for f in baram.home.rglob("*"):
        if f.is_file() and f.name != "baram.db" and not f.name.startswith(("baram.db", "secret")):
            rel = f.resolve()
            assert str(rel).startswith(str(logs) + "/"), f
            parts = rel.relative_to(logs).parts
            # <dag>/<run_id>/<task>/<file>: one folder per level, none of them . or ..
            assert len(parts) == 4 and parts[1] == run_id, parts
