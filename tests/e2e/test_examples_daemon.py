"""The examples written for the daemon (`make run` loads examples/ into `baram
standalone`): nightly_etl.yaml, order_saga.yaml and fanout.yaml. Each runs
here with `baram run` in a fresh home and must end exactly as its header
comment says: states of every task, outputs passed between steps, the pool
limit of the fan-out, the files of the ETL. examples/README.md must list every
example."""

import shutil

import pytest

from conftest import ROOT, parse_ts, states

EX = ROOT / "examples"
SAGA = EX / "order_saga.yaml"
FANOUT = EX / "fanout.yaml"
ETL = EX / "nightly_etl.yaml"
SAGA_STEPS = ("create_order", "verify_consumer", "create_ticket", "authorize_card",
              "approve_order")


@pytest.mark.parametrize("path", [SAGA, FANOUT, ETL], ids=lambda p: p.name)
def test_validates(baram, path):
    r = baram("dags", "validate", path)
    assert r.rc == 0, r


# ---- order_saga -------------------------------------------------------------------------

def test_saga_happy_path(baram):
    obj = baram.run_json(SAGA)
    assert obj["dag"] == "order_saga" and obj["state"] == "success"
    s = states(obj)
    assert set(s) == set(SAGA_STEPS) | {"reject_order", "cancel_ticket"}, s
    assert all(s[t] == "success" for t in SAGA_STEPS), s
    assert s["reject_order"] == "skipped" and s["cancel_ticket"] == "skipped", s
    out = {t: obj["tasks"][t]["output"] for t in SAGA_STEPS}
    order = out["create_order"]
    assert order.startswith("ord-") and len(order) == 10, out
    num = order[4:]
    # the ids travel through outputs: order -> consumer check -> ticket -> authorization
    assert out["verify_consumer"] == "%s alice" % order, out
    assert out["create_ticket"] == "tkt-" + num, out
    assert out["authorize_card"] == "auth-" + num, out
    assert out["approve_order"] == "APPROVED auth-" + num, out
    log = baram.try_log(obj, "create_order").read_text()
    assert "order %s PENDING for alice: 2x bibimbap, 1x kimchi" % order in log, log


def test_saga_card_declined_compensates(baram):
    obj = baram.run_json(SAGA, "--param", "card_ok=no", expect_rc=1)
    assert obj["state"] == "failed"
    s = states(obj)
    assert s["authorize_card"] == "failed" and obj["tasks"]["authorize_card"]["tries"] == 1, s
    assert s["approve_order"] == "upstream_failed", s
    assert s["reject_order"] == "success" and s["cancel_ticket"] == "success", s
    assert all(s[t] == "success" for t in SAGA_STEPS[:3]), s
    order = obj["tasks"]["create_order"]["output"]
    ticket = obj["tasks"]["create_ticket"]["output"]
    assert obj["tasks"]["reject_order"]["output"] == "REJECTED %s: card not authorized" % order
    assert obj["tasks"]["cancel_ticket"]["output"] == "CANCELLED " + ticket
    log = baram.try_log(obj, "authorize_card").read_text()
    assert "card declined" in log, log


def test_saga_consumer_refused_has_no_ticket_to_cancel(baram):
    obj = baram.run_json(SAGA, "--param", "consumer=mallory", expect_rc=1)
    s = states(obj)
    assert s["verify_consumer"] == "failed", s
    assert [s[t] for t in SAGA_STEPS[2:]] == ["upstream_failed"] * 3, s
    assert s["reject_order"] == "success", s
    assert s["cancel_ticket"] == "skipped", s  # ran (one_failed), found no ticket id, exit 99
    order = obj["tasks"]["create_order"]["output"]
    assert obj["tasks"]["reject_order"]["output"] == "REJECTED %s: consumer not verified" % order
    log = baram.try_log(obj, "cancel_ticket").read_text()
    assert "no ticket was created" in log, log


# ---- fanout -----------------------------------------------------------------------------

def instances(obj):
    return sorted((n for n in obj["tasks"] if n.startswith("process[")),
                  key=lambda n: int(n[len("process["):-1]))


def max_overlap(obj, names):
    """The most instances running at one moment, from the JSON's start/end times."""
    iv = [(parse_ts(obj["tasks"][n]["started_at"]), parse_ts(obj["tasks"][n]["ended_at"]))
          for n in names]
    return max(sum(1 for a, b in iv if a <= s < b) for s, _ in iv)


def test_fanout_default(baram):
    obj = baram.run_json(FANOUT)
    assert obj["state"] == "success"
    names = instances(obj)
    assert names == ["process[%d]" % i for i in range(8)], obj["tasks"].keys()
    lines = obj["tasks"]["list_shards"]["output"].splitlines()
    assert lines == ["%d %d" % (i * 1000 + 1, (i + 1) * 1000) for i in range(8)]
    for i, n in enumerate(names):
        a, b = i * 1000 + 1, (i + 1) * 1000
        assert obj["tasks"][n]["output"] == str((a + b) * (b - a + 1) // 2), (n, obj["tasks"][n])
        assert obj["tasks"][n]["duration_s"] >= 0.19, obj["tasks"][n]
    assert obj["tasks"]["merge"]["output"] == str(8000 * 8001 // 2)
    # no pool configured: 128 slots, so the instances overlap
    assert max_overlap(obj, names) >= 3, obj


def test_fanout_params_and_pool_limit(baram):
    baram.home.mkdir(parents=True, exist_ok=True)
    (baram.home / "baram.yaml").write_text("pools:\n  fanout: 2\n")
    obj = baram.run_json(FANOUT, "--param", "shards=6", "--param", "size=70000")
    names = instances(obj)
    assert len(names) == 6, obj["tasks"].keys()
    n = 6 * 70000
    assert obj["tasks"]["merge"]["output"] == str(n * (n + 1) // 2)  # above 2^31: no awk %d
    assert max_overlap(obj, names) <= 2, obj
    span = parse_ts(obj["tasks"]["merge"]["started_at"]) - \
        parse_ts(obj["tasks"]["process[0]"]["started_at"])
    assert span >= 3 * 0.2 - 0.01, span  # 6 instances of 0.2 s, two at a time
    log = baram.try_log(obj, "merge").read_text()
    assert "6 of 6 shards" in log, log


def test_fanout_bad_param_fails_early(baram):
    obj = baram.run_json(FANOUT, "--param", "shards=x", expect_rc=1)
    s = states(obj)
    assert s["list_shards"] == "failed", s
    assert s.get("merge") == "upstream_failed", s


# ---- nightly_etl ------------------------------------------------------------------------

DS = "2026-11-25"


@pytest.fixture
def etl_data():
    """examples/data/: the folders of DS are removed afterwards, and the parents if the test
    made them and they are empty."""
    data = EX / "data"
    day = data / DS
    part = data / "warehouse" / "sales" / ("ds=" + DS)
    parents = [data / "warehouse" / "sales", data / "warehouse", data]
    existed = {p: p.exists() for p in [day, part] + parents}
    yield data
    for p in (day, part):
        if not existed[p]:
            shutil.rmtree(p, ignore_errors=True)
    for p in parents:
        if not existed[p]:
            try:
                p.rmdir()
            except OSError:
                pass


def test_nightly_etl_day(baram, etl_data):
    obj = baram.run_json(ETL, "--date", DS)
    assert obj["dag"] == "nightly_etl" and obj["state"] == "success"
    assert obj["logical_date"] == DS + "T00:00:00.000Z", obj["logical_date"]
    s = states(obj)
    assert list(s) == ["extract", "validate", "transform", "load", "report"], s
    assert set(s.values()) == {"success"}, s
    t = {k: v["output"] for k, v in obj["tasks"].items()}
    rows = int(t["extract"])
    valid, rejected = map(int, t["validate"].split())
    assert valid + rejected == rows and 0 < rejected < rows, t
    day = etl_data / DS
    for f in ("raw_eu.csv", "valid_eu.csv", "rejected_eu.csv", "summary_eu.tsv", "report_eu.txt"):
        assert (day / f).is_file(), f
    assert len((day / "raw_eu.csv").read_text().splitlines()) == rows + 1
    assert len((day / "valid_eu.csv").read_text().splitlines()) == valid + 1
    part = etl_data / "warehouse" / "sales" / ("ds=" + DS) / "eu.tsv"
    summary = part.read_text().splitlines()
    assert len(summary) == int(t["transform"]) and summary, summary
    assert all(line.split("\t")[:2] == [DS, "eu"] for line in summary), summary
    revenue = sum(float(line.split("\t")[5]) for line in summary)
    assert abs(revenue - float(t["load"])) < 0.005, (revenue, t["load"])
    assert t["report"] == "%s eu: %d orders, %d units, revenue %s" % (
        DS, valid, sum(int(line.split("\t")[4]) for line in summary), t["load"])
    report = (day / "report_eu.txt").read_text()
    assert "orders extracted: %d" % rows in report and obj["run_id"] in report, report
    # the same day again gives the same data (deterministic extract, idempotent load)
    again = baram.run_json(ETL, "--date", DS)
    assert again["tasks"]["load"]["output"] == t["load"]
    assert part.read_text().splitlines() == summary


def test_nightly_etl_retry_region_and_refusal(baram, etl_data):
    obj = baram.run_json(ETL, "--date", DS, "--param", "flaky=yes", "--param", "region=us")
    ex = obj["tasks"]["extract"]
    assert ex["state"] == "success" and ex["tries"] == 2, ex
    assert parse_ts(ex["ended_at"]) - parse_ts(ex["started_at"]) >= 0.9, ex  # retry_delay 1s
    assert "could not connect" in baram.try_log(obj, "extract").read_text()
    assert (etl_data / DS / "report_us.txt").is_file()
    assert obj["tasks"]["report"]["output"].startswith(DS + " us: ")

    obj = baram.run_json(ETL, "--date", DS, "--param", "max_bad_percent=0", expect_rc=1)
    s = states(obj)
    assert (s["extract"], s["validate"]) == ("success", "failed"), s
    assert [s[k] for k in ("transform", "load", "report")] == ["upstream_failed"] * 3, s
    assert "too many bad rows" in baram.try_log(obj, "validate").read_text()


def test_nightly_etl_schedule_header():
    text = ETL.read_text()
    for line in ('dag: nightly_etl', 'schedule: "0 3 * * *"', "start: 2026-11-25",
                 "catchup: true", "max_active_runs: 2", "pool: warehouse"):
        assert "\n" + line in text or "\n    " + line in text, line


def test_readme_lists_every_example():
    readme = (EX / "README.md").read_text()
    for p in sorted(EX.glob("*.yaml")):
        assert "`%s`" % p.name in readme, p.name
    assert "make run" in readme and "baram standalone" in readme
