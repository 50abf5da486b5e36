"""for_each (SPEC section 2): instances TASK[i] in item order, over a YAML list,
an upstream output that is a JSON array, or its lines; downstream tasks see
the outputs as a JSON array; an empty list skips the task."""

import json
import re

from conftest import states


def outputs(obj, task, n):
    return [obj["tasks"]["%s[%d]" % (task, i)]["output"] for i in range(n)]


def test_for_each_yaml_list(baram):
    p = baram.write("fe.yaml", """
        dag: fe
        tasks:
          shard:
            for_each: [alpha, "beta gamma", "3"]
            run: printf 'item=%s try={{ try }}' {{ item }} > "$BARAM_OUTPUT"
          collect:
            needs: [shard]
            run: |
              printf '%s' {{ outputs.shard }} > tpl.json
              printf '%s' "$OUTPUT_SHARD" > env.json
        """)
    obj = baram.run_json(p)
    names = {n for n in obj["tasks"] if n.startswith("shard")}
    assert names == {"shard[0]", "shard[1]", "shard[2]"}, obj["tasks"].keys()
    assert outputs(obj, "shard", 3) == ["item=alpha try=1", "item=beta gamma try=1", "item=3 try=1"]
    want = ["item=alpha try=1", "item=beta gamma try=1", "item=3 try=1"]
    assert json.loads((baram.dags / "tpl.json").read_text()) == want
    assert json.loads((baram.dags / "env.json").read_text()) == want
    assert obj["tasks"]["collect"]["state"] == "success"
    # logs of a mapped instance: logs/<dag>/<run>/<task>.<index>/<try>.log
    assert baram.try_log(obj, "shard[1]").is_file()


def test_for_each_json_array_output(baram):
    p = baram.write("fj.yaml", """
        dag: fj
        tasks:
          list:
            run: printf '["x", "y z", "w"]' > "$BARAM_OUTPUT"
          each:
            needs: [list]
            for_each: "{{ outputs.list }}"
            run: printf '%s' {{ item }} > "$BARAM_OUTPUT"
        """)
    obj = baram.run_json(p)
    assert outputs(obj, "each", 3) == ["x", "y z", "w"]
    assert "each[3]" not in obj["tasks"]


def test_progress_counts_a_late_for_each_as_mapped(baram):
    """The progress total is what was known at the start; a for_each over an upstream's
    output adds "+N mapped" when it expands instead of moving the total."""
    p = baram.write("fp.yaml", """
        dag: fp
        tasks:
          list:
            run: printf '["x", "y", "z"]' > "$BARAM_OUTPUT"
          each:
            needs: [list]
            for_each: "{{ outputs.list }}"
            run: "true"
          after: {run: "true", needs: [each]}
        """)
    r = baram.run(p)  # stderr not a terminal: one line per finished instance
    assert r.rc == 0, r
    lines = [ln for ln in r.err.splitlines() if re.match(r"^\d+/\d+ ", ln)]
    assert lines[0] == "1/2 list success" or lines[0].startswith("1/2 list success "), r.err
    assert all(re.match(r"^\d+/2 ", ln) for ln in lines), r.err
    assert [ln.split(" ", 3)[1:3] for ln in lines[1:]] == [["+3", "mapped"]] * 4, r.err
    assert lines[-1].startswith("5/2 +3 mapped after success"), r.err


def test_for_each_json_numbers_as_written(baram):
    """Numbers of a JSON array become items as written: 0.1, not 0.10000000000000001."""
    p = baram.write("fn.yaml", """
        dag: fn
        tasks:
          list:
            run: printf '[0.1, 2.5e-3, 7, true]' > "$BARAM_OUTPUT"
          each:
            needs: [list]
            for_each: "{{ outputs.list }}"
            run: printf '%s' {{ item }} > "$BARAM_OUTPUT"
        """)
    obj = baram.run_json(p)
    assert outputs(obj, "each", 4) == ["0.1", "0.0025", "7", "true"]


def test_for_each_lines_output(baram):
    p = baram.write("fl.yaml", """
        dag: fl
        tasks:
          lines:
            run: printf 'one\\n\\ntwo words\\nthree\\n' > "$BARAM_OUTPUT"
          each:
            needs: [lines]
            for_each: "{{ outputs.lines }}"
            run: printf '%s' {{ item }} > "$BARAM_OUTPUT"
        """)
    obj = baram.run_json(p)
    assert outputs(obj, "each", 3) == ["one", "two words", "three"]
    assert "each[3]" not in obj["tasks"]


def test_for_each_instance_failure(baram):
    p = baram.write("ff.yaml", """
        dag: ff
        tasks:
          each:
            for_each: [ok1, bad, ok2]
            run: '[ {{ item }} != bad ]'
          after:
            needs: [each]
            run: "true"
        """)
    obj = baram.run_json(p, expect_rc=1)
    s = states(obj)
    assert (s["each[0]"], s["each[1]"], s["each[2]"]) == ("success", "failed", "success")
    assert s["after"] == "upstream_failed"


def test_for_each_empty_list_skipped(baram):
    p = baram.write("fz.yaml", """
        dag: fz
        tasks:
          none:
            for_each: []
            run: touch ran
          after:
            needs: [none]
            run: touch ran2
        """)
    obj = baram.run_json(p)
    assert obj["state"] == "success"
    s = states(obj)
    assert not [n for n in s if n.startswith("none[")], s
    assert s.get("none") == "skipped", s
    assert s["after"] == "skipped"
    assert not (baram.dags / "ran").exists() and not (baram.dags / "ran2").exists()


def test_for_each_empty_output_skipped(baram):
    p = baram.write("fe2.yaml", """
        dag: fe2
        tasks:
          src: {run: "true"}
          each:
            needs: [src]
            for_each: "{{ outputs.src }}"
            run: touch ran
        """)
    obj = baram.run_json(p)
    assert obj["state"] == "success"
    assert states(obj).get("each") == "skipped", obj["tasks"]
    assert not (baram.dags / "ran").exists()


def test_for_each_parallel_instances(baram):
    p = baram.write("fp.yaml", """
        dag: fp
        tasks:
          each:
            for_each: [a, b, c, d, e, f]
            run: sleep 0.5
        """)
    r = baram.run(p, "--parallelism", "6", "--json")
    assert r.rc == 0, r
    assert all(s == "success" for s in states(r.json).values())
    assert r.elapsed < 2.5, r  # not one after another (6 x 0.5 s)


def test_for_each_over_param(baram):
    p = baram.write("fpar.yaml", """
        dag: fpar
        params: {regions: '["eu", "us", "ap"]'}
        tasks:
          each:
            for_each: "{{ params.regions }}"
            run: printf '%s' {{ item }} > "$BARAM_OUTPUT"
        """)
    obj = baram.run_json(p)
    assert outputs(obj, "each", 3) == ["eu", "us", "ap"]
    obj = baram.run_json(p, "--param", 'regions=["x"]')
    assert outputs(obj, "each", 1) == ["x"]
    assert "each[1]" not in obj["tasks"]


def test_mapped_instance_retries_alone(baram):
    p = baram.write("fr.yaml", """
        dag: fr
        tasks:
          each:
            for_each: [a, b]
            retries: 1
            run: |
              echo "{{ item }} try $BARAM_TRY" >> tries.txt
              [ {{ item }} = a ] || [ "$BARAM_TRY" = 2 ]
        """)
    obj = baram.run_json(p)
    assert obj["tasks"]["each[0]"]["tries"] == 1
    assert obj["tasks"]["each[1]"]["tries"] == 2
    assert sorted((baram.dags / "tries.txt").read_text().splitlines()) == [
        "a try 1", "b try 1", "b try 2"]
    assert baram.try_log(obj, "each[1]", 2).is_file()
    assert not baram.try_log(obj, "each[0]", 2).exists()


def test_downstream_of_mapped_waits_for_all(baram):
    p = baram.write("fw.yaml", """
        dag: fw
        tasks:
          each:
            for_each: ["0.1", "0.8", "0.3"]
            run: sleep {{ item }}; date +%s.%N > "$BARAM_OUTPUT"
          after:
            needs: [each]
            run: date +%s.%N > "$BARAM_OUTPUT"
        """)
    obj = baram.run_json(p, "--parallelism", "4")
    ends = [float(obj["tasks"]["each[%d]" % i]["output"]) for i in range(3)]
    assert float(obj["tasks"]["after"]["output"]) >= max(ends)


def test_large_fan_out_reaches_its_downstream_through_a_file(baram):
    """3,000 instances x 100 bytes: the JSON array of their outputs (over 300 KB) is more than
    Linux lets one environment variable hold (128 KiB), so it comes in the file that
    OUTPUT_<TASK>_FILE names, OUTPUT_<TASK> is unset, and {{ outputs.TASK }} still expands
    (the long command runs from a file); a small upstream's output stays in OUTPUT_<TASK>."""
    p = baram.write("big.yaml", """
        dag: big
        tasks:
          list:
            run: seq 0 2999 > "$BARAM_OUTPUT"
          fan:
            needs: [list]
            for_each: "{{ outputs.list }}"
            run: printf '%0100d' {{ item }} > "$BARAM_OUTPUT"
          collect:
            needs: [list, fan]
            run: |
              test -z "${OUTPUT_FAN+set}"
              cp "$OUTPUT_FAN_FILE" collected.json
              printf '%s' "$OUTPUT_LIST" > list.txt
              test -z "${OUTPUT_LIST_FILE+set}"
          templated:
            needs: [fan]
            run: printf '%s' {{ outputs.fan }} > templated.json; exit 99
        """)
    obj = baram.run_json(p, "--parallelism", "16", timeout=300)
    want = ["%0100d" % i for i in range(3000)]
    assert obj["tasks"]["collect"]["state"] == "success", obj["tasks"]["collect"]
    assert json.loads((baram.dags / "collected.json").read_text()) == want
    assert (baram.dags / "list.txt").read_text().split() == [str(i) for i in range(3000)]
    assert obj["tasks"]["templated"]["state"] == "skipped", obj["tasks"]["templated"]
    assert json.loads((baram.dags / "templated.json").read_text()) == want
    # The file lives with the run's logs: HOME/logs/<dag>/<run>/<task>.out.
    f = baram.run_dir(obj) / "fan.out"
    assert json.loads(f.read_text()) == want


def test_command_too_large_for_exec_fails_the_try_clearly(baram):
    """A value no file can stand in for (a DAG env of 200 KB): the try fails with a message
    naming it, not 'Argument list too long'."""
    p = baram.write("huge.yaml", """
        dag: huge
        env: {HUGE: "%s"}
        tasks:
          a:
            run: "true"
        """ % ("x" * 200000))
    obj = baram.run_json(p, expect_rc=1)
    a = obj["tasks"]["a"]
    assert a["state"] == "failed", a
    log = baram.try_log(obj, "a").read_text()
    assert "'HUGE'" in log and "128 KiB" in log, log


def test_many_large_outputs_fit_what_exec_takes(baram):
    """40 upstreams of 60 KB each: every one fits in its variable, but not all together within
    ARG_MAX (2 MiB by default): the largest go to files until the rest fit, and the
    downstream still gets every output, each in OUTPUT_<TASK> or OUTPUT_<TASK>_FILE."""
    ups = "".join("""
          up%02d:
            run: printf '%%%ds' '' | tr ' ' %s > "$BARAM_OUTPUT"
        """ % (i, 60000 + i, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"[i]) for i in range(40))
    p = baram.write("wide.yaml", """
        dag: wide
        tasks:%s
          all:
            needs: [%s]
            run: |
              for i in $(seq -w 0 39); do
                eval "v=\\${OUTPUT_UP$i+set} f=\\${OUTPUT_UP${i}_FILE:-}"
                if [ -n "$f" ]; then [ -z "$v" ] || exit 3; wc -c < "$f"; echo file >> how.txt
                else eval 'printf %%s "$OUTPUT_UP'$i'"' | wc -c; echo var >> how.txt; fi
              done > sizes.txt
        """ % (ups, ", ".join("up%02d" % i for i in range(40))))
    obj = baram.run_json(p)
    assert obj["tasks"]["all"]["state"] == "success", obj["tasks"]["all"]
    sizes = [int(x) for x in (baram.dags / "sizes.txt").read_text().split()]
    assert sizes == [60000 + i for i in range(40)]
    how = (baram.dags / "how.txt").read_text().split()
    assert "file" in how and "var" in how, how


def test_command_over_the_template_limit_fails_the_try_clearly(baram):
    p = baram.write("long.yaml", """
        dag: long
        params: {p: "%s"}
        tasks:
          a:
            run: echo {{ params.p }} {{ params.p }} {{ params.p }} {{ params.p }} {{ params.p }}
        """ % ("y" * 120000 * 2))
    obj = baram.run_json(p, expect_rc=1)
    assert obj["tasks"]["a"]["state"] == "failed", obj["tasks"]["a"]
    log = baram.try_log(obj, "a").read_text()
    assert "expands to more than 1024 KiB" in log, log
