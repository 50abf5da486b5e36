"""Templates, the environment of a try, and outputs (SPEC section 2)."""

import datetime
import os

from conftest import parse_ts, states


def kv(path):
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


TEMPLATES = """
dag: tpl
params: {x: default-x, my-param: mp}
tasks:
  show:
    run: |
      printf 'ds=%s\\n' {{ ds }} > tpl.txt
      printf 'ts=%s\\n' {{ ts }} >> tpl.txt
      printf 'x=%s\\n' {{ params.x }} >> tpl.txt
      printf 'mp=%s\\n' "{{ params.my-param }}" >> tpl.txt
      printf 'run_id=%s\\n' '{{ run_id }}' >> tpl.txt
      printf 'dag=%s\\n' {{dag}} >> tpl.txt
      printf 'task=%s\\n' {{ task }} >> tpl.txt
      printf 'try=%s\\n' {{ try }} >> tpl.txt
"""


def test_templates_default_params(baram):
    p = baram.write("tpl.yaml", TEMPLATES)
    obj = baram.run_json(p, "--date", "2026-03-04")
    v = kv(baram.dags / "tpl.txt")
    assert v["ds"] == "2026-03-04"
    assert v["ts"].startswith("2026-03-04T00:00:00"), v
    parse_ts(v["ts"])
    assert v["x"] == "default-x"
    assert v["mp"] == "mp"
    assert v["run_id"] == obj["run_id"]
    assert v["dag"] == "tpl"
    assert v["task"] == "show"
    assert v["try"] == "1"


def test_templates_param_override(baram):
    p = baram.write("tpl.yaml", TEMPLATES)
    baram.run_json(p, "--param", "x=over ridden", "--param", "my-param=a=b")
    v = kv(baram.dags / "tpl.txt")
    assert v["x"] == "over ridden"
    assert v["mp"] == "a=b"  # only the first '=' splits


def test_ds_defaults_to_today_utc(baram):
    p = baram.write("tpl.yaml", TEMPLATES)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    baram.run_json(p)
    v = kv(baram.dags / "tpl.txt")
    ds = datetime.date.fromisoformat(v["ds"])
    assert abs((ds - today).days) <= 1, v  # around midnight either day is fine


ENV = """
dag: envdag
params: {region: eu, my-param: mp}
env: {GREETING: hello there, WAREHOUSE: /data/wh}
tasks:
  fetch-data:
    retries: 1
    run: |
      env | grep -E '^(BARAM_|PARAM_|OUTPUT_|GREETING|WAREHOUSE)' | sort > env-$BARAM_TRY.txt
      pwd > cwd.txt
      [ "$BARAM_TRY" = 2 ]
"""


def test_environment_of_a_try(baram, tmp_path):
    p = baram.write("env.yaml", ENV)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    obj = baram.run_json(p, "--date", "2026-07-08", "--param", "region=us", cwd=elsewhere)
    e1 = kv(baram.dags / "env-1.txt")
    e2 = kv(baram.dags / "env-2.txt")
    assert e1["BARAM_TRY"] == "1" and e2["BARAM_TRY"] == "2"
    e = e2
    assert e["BARAM_DAG"] == "envdag"
    assert e["BARAM_RUN_ID"] == obj["run_id"]
    assert e["BARAM_TASK"] == "fetch-data"
    assert e["BARAM_DS"] == "2026-07-08"
    assert e["BARAM_TS"].startswith("2026-07-08T"), e
    parse_ts(e["BARAM_TS"])
    assert e["PARAM_REGION"] == "us"
    assert e["PARAM_MY_PARAM"] == "mp"
    assert e["GREETING"] == "hello there"
    assert e["WAREHOUSE"] == "/data/wh"
    assert "BARAM_OUTPUT" in e and e["BARAM_OUTPUT"]
    # tasks run in the DAG file's folder whatever the cwd of baram
    assert (baram.dags / "cwd.txt").read_text().strip() == os.path.realpath(baram.dags)
    assert not (elsewhere / "cwd.txt").exists()


def test_outputs_between_tasks(baram):
    p = baram.write("out.yaml", """
        dag: outs
        tasks:
          up:
            run: printf 'value from up' > "$BARAM_OUTPUT"
          fetch-data:
            run: printf 'line1\\nline2\\n' > "$BARAM_OUTPUT"
          down:
            needs: [up, fetch-data]
            run: |
              printf '%s' {{ outputs.up }} > tpl.txt
              printf '%s' "$OUTPUT_UP" > env.txt
              printf '%s' "$OUTPUT_FETCH_DATA" > env2.txt
              printf 'down says hi' > "$BARAM_OUTPUT"
          grandchild:
            needs: [down]
            run: env | grep '^OUTPUT_' | cut -d= -f1 | sort > grand.txt
        """)
    obj = baram.run_json(p)
    assert obj["tasks"]["up"]["output"] == "value from up"
    assert obj["tasks"]["fetch-data"]["output"] == "line1\nline2\n"
    assert obj["tasks"]["down"]["output"] == "down says hi"
    assert (baram.dags / "tpl.txt").read_text() == "value from up"
    assert (baram.dags / "env.txt").read_text() == "value from up"
    assert (baram.dags / "env2.txt").read_text() == "line1\nline2\n"
    # OUTPUT_<TASK> only for direct upstreams
    assert (baram.dags / "grand.txt").read_text().split() == ["OUTPUT_DOWN"]


def test_output_at_limit_is_fine(baram):
    p = baram.write("lim.yaml", """
        dag: lim
        tasks:
          big: {run: "head -c 65536 /dev/zero | tr '\\\\000' a > \\"$BARAM_OUTPUT\\""}
        """)
    obj = baram.run_json(p)
    assert obj["tasks"]["big"]["state"] == "success"
    assert obj["tasks"]["big"]["output"] == "a" * 65536


def test_output_over_limit_fails(baram):
    p = baram.write("over.yaml", """
        dag: over
        tasks:
          huge: {run: "head -c 70000 /dev/zero | tr '\\\\000' a > \\"$BARAM_OUTPUT\\""}
          after: {run: "true", needs: [huge]}
        """)
    r = baram.run(p, "--json")
    assert r.rc == 1, r
    obj = r.json
    assert states(obj) == {"huge": "failed", "after": "upstream_failed"}, obj
    log = baram.try_log(obj, "huge").read_text()
    text = (r.err + log + baram("runs", "show", obj["run_id"]).out).lower()
    assert "output" in text and ("64" in text or "65536" in text), (r, log)


def test_unknown_template_name_at_runtime_or_validation(baram):
    p = baram.write("unk.yaml", """
        dag: unk
        tasks:
          a: {run: "echo {{ nonsense }}"}
        """)
    r = baram.run(p)
    assert r.rc == 2, r
    assert "nonsense" in r.err, r


def test_outputs_of_unknown_task_rejected(baram):
    p = baram.write("nu.yaml", """
        dag: nu
        tasks:
          a: {run: "true"}
          b: {run: "echo {{ outputs.nosuch }}", needs: [a]}
        """)
    r = baram.run(p)
    assert r.rc == 2, r
    assert "nosuch" in r.err, r
