"""Time zones (SPEC section 13): a DAG's `timezone:` and baram.yaml's default,
as `baram dags show` and the API's DAG show the next run (UTC instants, the
same on the DAG's clock, the zone's name), and a bad zone as an error (exit 2).

The DST rules themselves are unit tests (tests/unit/dag/cron_tz_test.c); here
the schedule starts on Europe/Berlin's spring day of 2031, so the first fire
is the skipped 02:30, which fires at 03:00 CEST (01:00Z).
"""

import pytest

from api_util import ApiServer, alive_cleanup, make_home, record_dags, token

BERLIN = """
    dag: berlin
    schedule: "30 2 * * *"
    start: 2031-03-29T12:00:00Z
    timezone: Europe/Berlin
    tasks:
      a: {run: echo hi}
"""

PLAIN = """
    dag: plain
    schedule: "30 2 * * *"
    start: 2031-03-29T12:00:00Z
    tasks:
      a: {run: echo hi}
"""

BERLIN_NEXT = {
    "logical_date": "2031-03-30T01:00:00.000Z",
    "due_at": "2031-03-31T00:30:00.000Z",
    "logical_date_local": "2031-03-30T03:00:00+02:00",
    "due_at_local": "2031-03-31T02:30:00+02:00",
    "timezone": "Europe/Berlin",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("tz")
    b = make_home(root)
    b.write("berlin.yaml", BERLIN)
    b.write("plain.yaml", PLAIN)
    record_dags(b, root / "record.log")
    srv = ApiServer(b, root / "api.log").start()
    yield {"b": b, "srv": srv, "root": root, "tok": token(b, "admin")}
    alive_cleanup([srv])


def test_dags_show_gives_the_next_run_on_the_dags_clock(env):
    b = env["b"]
    r = b("dags", "show", "berlin", "--json", env={"BARAM_DAGS": str(b.dags)})
    assert r.rc == 0, r
    assert r.json["timezone"] == "Europe/Berlin"
    assert r.json["next_run"] == BERLIN_NEXT, r.json
    r = b("dags", "show", "berlin", env={"BARAM_DAGS": str(b.dags)})
    assert r.rc == 0, r
    assert "timezone:         Europe/Berlin\n" in r.out, r.out
    assert ("next run:         2031-03-30T03:00:00+02:00 (due 2031-03-31T02:30:00+02:00) "
            "(Europe/Berlin)\n") in r.out, r.out
    r = b("dags", "list", "--json", env={"BARAM_DAGS": str(b.dags)})
    assert r.rc == 0, r
    zones = {d["dag_id"]: d["timezone"] for d in r.json["dags"]}
    assert zones == {"berlin": "Europe/Berlin", "plain": "UTC"}, r.json


def test_the_apis_dag_has_its_zone_and_next_run(env):
    srv = env["srv"]
    r = srv.get("/api/v1/dags/berlin", token=env["tok"])
    assert r.status == 200, r
    assert r.json["timezone"] == "Europe/Berlin" and r.json["next_run"] == BERLIN_NEXT, r.json
    r = srv.get("/api/v1/dags", token=env["tok"])
    assert r.status == 200, r
    by_id = {d["dag_id"]: d for d in r.json["dags"]}
    assert by_id["berlin"]["next_run"] == BERLIN_NEXT
    assert by_id["plain"]["timezone"] == "UTC"
    assert by_id["plain"]["next_run"]["logical_date"] == "2031-03-30T02:30:00.000Z"


def test_the_homes_default_zone_applies_to_dags_without_one(env, tmp_path):
    b = env["b"]
    e = {"BARAM_DAGS": str(b.dags), "BARAM_TIMEZONE": "America/New_York"}
    r = b("dags", "show", "plain", "--json", env=e)
    assert r.rc == 0, r
    assert r.json["timezone"] == "America/New_York"
    # 02:30 EDT on 2031-03-30 (New York changed on March 9th)
    assert r.json["next_run"]["logical_date"] == "2031-03-30T06:30:00.000Z", r.json
    r = b("dags", "show", "berlin", "--json", env=e)  # its own zone wins
    assert r.json["timezone"] == "Europe/Berlin", r.json
    # The same from baram.yaml.
    other = make_home(tmp_path)
    other.write("plain.yaml", PLAIN)
    (other.home / "baram.yaml").write_text("timezone: Asia/Tokyo\n")
    r = other("dags", "show", "plain", "--json", env={"BARAM_DAGS": str(other.dags)})
    assert r.rc == 0, r
    assert r.json["timezone"] == "Asia/Tokyo"
    assert r.json["next_run"]["logical_date_local"] == "2031-03-30T02:30:00+09:00", r.json
    (other.home / "baram.yaml").write_text("timezone: Asia/Tokio\n")
    r = other("dags", "list", env={"BARAM_DAGS": str(other.dags)})
    assert r.rc == 2, r
    assert "baram.yaml:1:11: error: unknown time zone 'Asia/Tokio' (did you mean " \
           "'Asia/Tokyo'?)" in r.err, r.err


@pytest.mark.parametrize("zone,message", [
    ("Europe/Berln", "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
    ("../../../etc/passwd", "unknown time zone '../../../etc/passwd' (an IANA name"),
    ("[1, 2]", "'timezone' must be a string"),
])
def test_a_bad_zone_is_an_error(env, tmp_path, zone, message):
    b = env["b"]
    p = tmp_path / "bad.yaml"
    p.write_text(BERLIN.replace("Europe/Berlin", zone).replace("\n    ", "\n").lstrip())
    r = b("run", p)
    assert r.rc == 2, r
    assert "bad.yaml:4:11: error: " + message in r.err, r.err
    r = b("dags", "validate", p)
    assert r.rc == 1 and message in r.out + r.err, r  # SPEC 3: validation found errors
    r = b("dags", "list", env={"BARAM_TIMEZONE": zone})
    assert r.rc == 2, r
    assert "BARAM_TIMEZONE" in r.err, r.err


def test_runs_show_logical_dates_on_the_dags_clock(env):
    b = env["b"]
    r = b("run", b.dags / "berlin.yaml", "--date", "2031-03-30T01:00:00Z", "--json")
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    assert r.json["logical_date"] == "2031-03-30T01:00:00.000Z"  # stored in UTC
    r = b("runs", "list")
    assert r.rc == 0, r
    assert "LOCAL DATE" in r.out, r.out
    row = [ln for ln in r.out.splitlines() if ln.startswith(run_id)]
    assert row and "2031-03-30  2031-03-30T03:00+02:00 Europe/Berlin  " in row[0], r.out
    r = b("runs", "show", run_id)
    assert r.rc == 0, r
    assert "\nlocal    2031-03-30T03:00+02:00 Europe/Berlin\n" in r.out, r.out
    r = b("dags", "show", "berlin", env={"BARAM_DAGS": str(b.dags)})
    assert "2031-03-30T03:00+02:00 Europe/Berlin" in r.out, r.out
