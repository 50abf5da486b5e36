"""The runs of every DAG, filtered (SPEC section 13, the Runs page's list): GET /api/v1/runs
?state=&dag=&from=&to=&limit=&offset= and `baram runs list --state --from --to`, on the real
binary and both backends.

One home for the module: a known history of runs written into the runs table (the list must
show whatever the store holds, in its order: newest logical date first, then newest queued),
then one `baram api` serves every test. Hostile filters get a 400 naming the argument (exit 2
on the CLI), never a 500 or a list that ignores them.
"""

import json
import urllib.parse

import pytest

from api_util import ApiServer, alive_cleanup, check_problem, make_home, token
from conftest import db_query

DAY = 86_400_000
JAN1 = 1767225600000  # 2026-01-01T00:00:00Z

# (run_id, dag, state, day after 2026-01-01); queued at the logical date + 1 s (+ its index)
HISTORY = [
    ("a1", "alpha", "success", 0),
    ("a2", "alpha", "failed", 1),
    ("a3", "alpha", "success", 2),
    ("a4", "alpha", "running", 3),
    ("b1", "beta", "failed", 1),
    ("b2", "beta", "cancelled", 2),
    ("b3", "beta", "queued", 4),  # manual: one scheduled run per DAG and logical date
    ("b4", "beta", "success", 4),  # same logical date as b3, queued later: listed first
]


def iso(day):
    return "2026-01-%02dT00:00:00.000Z" % (day + 1)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs_list")
    b = make_home(root)
    for i, (rid, dag, state, day) in enumerate(HISTORY):
        at = JAN1 + day * DAY
        db_query(b, "INSERT INTO runs (run_id, dag_id, state, type, logical_at, queued_at, "
                    "owner) VALUES (?, ?, ?, ?, ?, ?, 'cli')",
                 rid, dag, state, "manual" if rid == "b3" else "scheduled", at, at + 1000 + i)
    srv = ApiServer(b, root / "api.log").start()
    e = {"b": b, "srv": srv, "viewer": None}
    r = b("users", "add", "v", "--role", "viewer", env={"BARAM_PASSWORD": "pw-xxxxxxxx"})
    assert r.rc == 0, r
    e["viewer"] = token(b, "v")
    yield e
    alive_cleanup([srv])


def get(env, query):
    return env["srv"].get("/api/v1/runs" + query, token=env["viewer"])


def ids(env, query):
    r = get(env, query)
    assert r.status == 200, r
    o = r.json
    return [x["run_id"] for x in o["runs"]], o["total_entries"]


def order(states=None, dag=None, lo=None, hi=None):
    """The ids HISTORY gives for a filter (days lo..hi included), newest logical date first,
    then newest queued (later in HISTORY)."""
    rows = [(day, i, rid) for i, (rid, d, st, day) in enumerate(HISTORY)
            if (states is None or st in states) and (dag is None or d == dag)
            and (lo is None or day >= lo) and (hi is None or day <= hi)]
    return [rid for _, _, rid in sorted(rows, reverse=True)]


ALL = order()


def test_every_dag_newest_first(env):
    assert ALL == ["b4", "b3", "a4", "b2", "a3", "b1", "a2", "a1"]
    assert ids(env, "") == (ALL, 8)
    r = get(env, "?limit=1")
    o = r.json
    (one,) = o["runs"]
    assert one["dag"] == "beta" and one["state"] == "success" and one["type"] == "scheduled"
    assert one["logical_date"] == iso(4) and one["queued_at"].startswith("2026-01-05T00:00:01")


@pytest.mark.parametrize("query,want", [
    ("?state=failed", order({"failed"})),
    ("?state=failed,running", order({"failed", "running"})),
    ("?state=running,failed,failed", order({"failed", "running"})),
    ("?state=queued&dag=beta", ["b3"]),
    ("?dag=alpha", ["a4", "a3", "a2", "a1"]),
    ("?dag=alpha&state=success", ["a3", "a1"]),
    ("?dag=nope", []),
    ("?state=cancelled&dag=alpha", []),
    # logical dates, both ends included; a date is midnight UTC
    ("?from=2026-01-03", order(lo=2)),
    ("?to=2026-01-02", order(hi=1)),
    ("?from=2026-01-02&to=2026-01-03", order(lo=1, hi=2)),
    ("?from=2026-01-03T00:00:00Z&to=2026-01-03T00:00:00.000Z", order(lo=2, hi=2)),
    ("?from=2026-01-03T00:00:00.001Z", order(lo=3)),
    ("?from=2026-01-05&state=success,queued&dag=beta", ["b4", "b3"]),
    ("?from=2027-01-01", []),
    # a time with a space for the T, as when_parse reads it
    ("?from=" + urllib.parse.quote("2026-01-03 00:00"), order(lo=2)),
])
def test_filters(env, query, want):
    got, total = ids(env, query)
    assert got == want and total == len(want), (query, got, total)


def test_paging_keeps_the_filtered_total(env):
    want = order({"success", "failed"})
    assert len(want) == 5
    for off in (0, 2, 4, 9):
        assert ids(env, "?state=success,failed&limit=2&offset=%d" % off) == (want[off:off + 2], 5)


def q(s):
    return urllib.parse.quote(s, safe="")


@pytest.mark.parametrize("query,names", [
    ("?state=faild", ["'state'", "did you mean 'failed'"]),
    ("?state=bogus", ["'state'", "expected queued, running"]),
    ("?state=failed,", ["'state'", "empty state"]),
    ("?state=,", ["'state'"]),
    ("?state=FAILED", ["'state'"]),
    ("?state=" + "x" * 300, ["'state'", "too long"]),
    ("?state=%FF%FE", ["'state'"]),
    ("?state=failed%00running", ["'state'", "empty or not readable"]),
    ("?state=", ["'state'", "empty"]),
    ("?state=&dag=&from=&to=", ["'state'", "empty"]),
    ("?dag=", ["'dag'", "empty"]),
    ("?dag=a%00b", ["'dag'"]),
    ("?dag=%ZZ", ["'dag'"]),
    ("?to=", ["'to'"]),
    ("?from=" + "1" * 300, ["'from'", "too long"]),
    ("?from=yesterday", ["'from'", "YYYY-MM-DD"]),
    ("?from=2026-02-30", ["'from'"]),
    ("?to=2026-13-01", ["'to'"]),
    ("?to=%FF", ["'to'"]),
    ("?from=2026-01-03&to=2026-01-02", ["'from'", "after", "'to'"]),
    ("?dag=" + "d" * 201, ["'dag'", "not a DAG id"]),
    ("?limit=abc", ["'limit'"]),
    ("?limit=0", ["'limit'"]),
    ("?limit=10001", ["'limit'"]),
    ("?offset=-1", ["'offset'"]),
    ("?offset=1e3", ["'offset'"]),
], ids=lambda v: v[:40] if isinstance(v, str) else "")
def test_bad_filters_are_a_400_naming_the_argument(env, query, names):
    p = check_problem(get(env, query), 400)
    for n in names:
        assert n in p["detail"], (query, p)


def test_a_huge_query_is_refused_by_the_server(env):
    r = get(env, "?state=" + "x" * 100000)
    assert r.status in (400, 414), r
    assert ids(env, "") == (ALL, 8)  # the server goes on


def test_hostile_dag_values(env):
    # not a DAG id: refused, whatever the bytes (PostgreSQL would refuse bad UTF-8 itself)
    for dag in ["alpha' OR '1'='1", "%", "alpha;DROP TABLE runs", "\u00e9", "..", "a b"]:
        p = check_problem(get(env, "?dag=" + q(dag)), 400)
        assert "'dag'" in p["detail"] and "not a DAG id" in p["detail"], (dag, p)
    for raw in ["%FF%FE", "%C3%28", "%ED%A0%80"]:
        p = check_problem(get(env, "?dag=" + raw), 400)
        assert "'dag'" in p["detail"], (raw, p)
    # an id no DAG has: nothing, not an error
    assert ids(env, "?dag=_lpha") == ([], 0)
    assert ids(env, "?dag=" + "d" * 200) == ([], 0)
    assert ids(env, "") == (ALL, 8)  # nothing was harmed


def test_roles(env):
    check_problem(env["srv"].get("/api/v1/runs"), 401)
    check_problem(env["srv"].get("/api/v1/runs", token="not.a.token"), 401)


# ---- the CLI: baram runs list ----

def cli_ids(b, *args):
    r = b("runs", "list", *args, "--json")
    assert r.rc == 0, r
    o = json.loads(r.out)
    return [x["run_id"] for x in o["runs"]], o["total_entries"]


def test_cli_filters_match_the_api(env):
    b = env["b"]
    assert cli_ids(b) == (ALL, 8)
    assert cli_ids(b, "--state", "failed,running") == (order({"failed", "running"}), 3)
    assert cli_ids(b, "alpha", "--state", "success") == (["a3", "a1"], 2)
    assert cli_ids(b, "--from", "2026-01-02", "--to", "2026-01-03") == (order(lo=1, hi=2), 4)
    assert cli_ids(b, "--state", "success", "--limit", "1") == (["b4"], 3)
    r = b("runs", "list", "--state", "failed")
    assert r.rc == 0 and "a2" in r.out and "b1" in r.out and "a1" not in r.out, r


@pytest.mark.parametrize("args,words", [
    (["--state", "faild"], ["--state", "did you mean 'failed'"]),
    (["--state", ""], ["--state", "empty"]),
    (["", "--state", "failed"], ["DAG", "empty"]),
    (["--from", "2026-02-30"], ["--from"]),
    (["--to", "soon"], ["--to"]),
    (["--from", "2026-01-03", "--to", "2026-01-01"], ["--from", "after", "--to"]),
    (["--state", "x" * 5000], ["--state", "too long"]),
    (["--sate", "failed"], ["did you mean '--state'"]),
], ids=lambda v: " ".join(a[:20] for a in v))
def test_cli_bad_filters_exit_2(env, args, words):
    r = env["b"]("runs", "list", *args)
    assert r.rc == 2 and r.out == "", r
    for w in words:
        assert w in r.err, (args, r)


def test_cli_help_names_the_filters(env):
    r = env["b"]("runs", "list", "--help")
    assert r.rc == 0, r
    for w in ("--state", "--from", "--to", "both ends included"):
        assert w in r.out, r
