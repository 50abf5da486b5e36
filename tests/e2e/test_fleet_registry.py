"""The registry and the "no active worker" note on PostgreSQL (SPEC section 12, issue 12
items 2 and the queues test): `baram workers list`, GET /api/v1/workers, and the note of a
task instance whose try waits on a queue no active worker listens on, in `runs show` (text
and --json) and in the API's task instance objects.

The schedulers hand tries out and workers claim them in ti_queue; here the rows a scheduler
and workers would write are put in by hand on a real run of a real database, so that each
reader is checked against exactly the state it must describe (the whole flow, with real
worker processes, is in test_worker*.py)."""

import pytest

from api_util import ADMIN_PASSWORD, ApiServer, token
from conftest import Baram, db_query

pytestmark = pytest.mark.pg_only

NOTE = "no active worker listens on queue 'gpu'"


def add_node(b, role, name, queues, state="active"):
    """A registry row as `baram scheduler` / `baram worker` registers it: its id."""
    db_query(b.db, "INSERT INTO workers (role, name, hostname, pid, queues, slots, state) VALUES "
                   "(?, ?, 'fleet-host', 4242, string_to_array(?, ','), 4, ?)",
             role, name, queues, state)
    ((i,),) = db_query(b.db, "SELECT id FROM workers WHERE name = ?", name)
    return i


@pytest.fixture
def fleet(tmp_path, pg_url):
    """A home on pg_url with a finished run of fleet whose train instance is put back to
    queued, its try handed out on 'gpu' by a scheduler (sched-1) and not claimed: (b, run_id,
    the scheduler's registry id)."""
    (tmp_path / "dags").mkdir()
    b = Baram(tmp_path / "home", tmp_path / "dags")
    b.env["BARAM_DB"] = b.db = pg_url
    r = b("init", env={"BARAM_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert r.rc == 0, r
    b.env["BARAM_DAGS"] = str(b.dags)
    b.write("fleet.yaml", "dag: fleet\ntasks:\n  prep: {run: 'true'}\n"
                          "  train: {run: 'true', queue: gpu, needs: [prep]}\n")
    r = b("run", str(b.dags / "fleet.yaml"), "--json")
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    # train's try handed out on 'gpu' by its scheduler and not claimed yet
    sched = add_node(b, "scheduler", "sched-1", "default")
    db_query(b.db, "UPDATE task_instances SET state = 'queued' WHERE run_id = ? AND task_id = "
                "'train'", run_id)
    db_query(b.db, "INSERT INTO ti_queue (run_id, task_id, try_number, state, queue, sched_id, "
                "queued_at, spec) VALUES (?, 'train', 1, 'queued', 'gpu', ?, now(), "
                "'{\"v\":1}')", run_id, sched)
    return b, run_id, sched


def show(b, run_id):
    r = b("runs", "show", run_id, "--json")
    assert r.rc == 0, r
    return r.json["tasks"]


def table_row(b, run_id, task):
    r = b("runs", "show", run_id)
    assert r.rc == 0, r
    (row,) = [ln for ln in r.out.splitlines() if ln.split()[:1] == [task]]
    return row


def test_runs_show_notes_a_queue_without_worker(fleet):
    b, run_id, _ = fleet
    tasks = show(b, run_id)
    assert tasks["train"]["state"] == "queued" and tasks["train"]["note"] == NOTE, tasks
    assert "note" not in tasks["prep"], tasks
    row = table_row(b, run_id, "train")
    assert row.split()[1] == "queued" and "queued (%s)" % NOTE in row, row
    assert "(" not in table_row(b, run_id, "prep")
    # a worker on another queue serves nothing here; one on gpu does; once dead it does not
    add_node(b, "worker", "w-cpu", "cpu")
    assert show(b, run_id)["train"]["note"] == NOTE
    w = add_node(b, "worker", "w-gpu", "cpu,gpu")
    assert "note" not in show(b, run_id)["train"]
    assert "(" not in table_row(b, run_id, "train")
    db_query(b.db, "UPDATE workers SET state = 'dead' WHERE id = ?", w)
    assert show(b, run_id)["train"]["note"] == NOTE
    add_node(b, "worker", "w-gpu-2", "gpu", state="draining")  # takes nothing new
    assert show(b, run_id)["train"]["note"] == NOTE
    # a scheduler listing gpu is not a worker
    add_node(b, "scheduler", "sched-gpu", "gpu")
    assert show(b, run_id)["train"]["note"] == NOTE


def test_a_claimed_try_has_no_note_and_counts_as_running(fleet):
    b, run_id, _ = fleet
    w = add_node(b, "worker", "w-gpu", "gpu")
    db_query(b.db, "UPDATE workers SET state = 'dead' WHERE id = ?", w)  # claimed, then died
    w2 = add_node(b, "worker", "w-gpu-2", "gpu")
    db_query(b.db, "UPDATE workers SET state = 'dead' WHERE id = ?", w2)
    assert show(b, run_id)["train"]["note"] == NOTE
    db_query(b.db, "UPDATE ti_queue SET state = 'running', worker_id = ?, claimed_at = now() "
                "WHERE run_id = ?", w2, run_id)
    db_query(b.db, "UPDATE task_instances SET state = 'running' WHERE run_id = ? AND task_id = "
                "'train'", run_id)
    assert "note" not in show(b, run_id)["train"]
    r = b("workers", "list", "--json")
    assert r.rc == 0, r
    by = {x["name"]: x for x in r.json["workers"]}
    assert by["w-gpu-2"]["running"] == 1 and by["w-gpu"]["running"] == 0, by
    assert by["w-gpu-2"]["queues"] == ["gpu"] and by["w-gpu-2"]["slots"] == 4
    assert [x["role"] for x in r.json["workers"]] == ["scheduler", "worker", "worker"]
    head, *rows = b("workers", "list").out.splitlines()
    assert head.split()[4] == "QUEUES", head
    cells = {r.split()[0]: r.split() for r in rows}
    assert cells["w-gpu-2"][4:8] == ["gpu", "4", "1", "DEAD"], cells
    assert cells["sched-1"][4:8] == ["default", "4", "0", "active"], cells


def test_api_task_instances_carry_the_note(fleet, tmp_path):
    b, run_id, _ = fleet
    api = ApiServer(b, tmp_path / "api.log").start()
    try:
        tok = token(b)
        base = "/api/v1/dags/fleet/runs/%s" % run_id
        r = api.get(base + "/tasks", tok)
        assert r.status == 200, r
        by = {t["task_id"]: t for t in r.json["tasks"]}
        assert by["train"]["note"] == NOTE and "note" not in by["prep"], by
        r = api.get(base + "/tasks/train", tok)
        assert r.status == 200 and r.json["note"] == NOTE, r
        r = api.get(base + "/tasks/prep", tok)
        assert r.status == 200 and "note" not in r.json, r
        r = api.get(base, tok)
        assert r.status == 200 and r.json["tasks"]["train"]["note"] == NOTE, r
        add_node(b, "worker", "w-gpu", "gpu")
        r = api.get(base + "/tasks/train", tok)
        assert r.status == 200 and "note" not in r.json, r
        r = api.get("/api/v1/workers", tok)
        assert r.status == 200, r
        ws = r.json
        assert ws["total_entries"] == 2 and [w["name"] for w in ws["workers"]] == \
            ["sched-1", "w-gpu"], ws
        cli = b("workers", "list", "--json")
        assert cli.rc == 0 and cli.json == {"workers": ws["workers"]}, cli
    finally:
        assert api.stop() == 0, api.log()
