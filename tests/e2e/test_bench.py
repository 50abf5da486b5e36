"""The benchmark workload format (the shared generator, ../shared/bench/gen.py):
baram must run it from inside the workload folder, tasks using relative
paths out/... in the DAG file's folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, check_run_shape

GEN_CANDIDATES = [ROOT.parent / "shared" / "bench" / "gen.py", Path("/work/shared/bench/gen.py")]
GEN = next((g for g in GEN_CANDIDATES if g.is_file()), None)


@pytest.mark.skipif(GEN is None, reason="bench/gen.py not found")
@pytest.mark.parametrize("shape", [["wide", "50"], ["chain", "20"], ["lattice", "4", "4"]],
                         ids=lambda s: "_".join(s))
def test_bench_workload(baram, tmp_path, shape):
    work = tmp_path / "work"
    subprocess.run([sys.executable, str(GEN)] + shape + ["--out", str(work)], check=True,
                   timeout=60, capture_output=True)
    meta = json.loads((work / "meta.json").read_text())
    r = baram("run", "dag.yaml", "--parallelism", "8", "--json", cwd=work)
    assert r.rc == 0, r
    obj = r.json
    check_run_shape(obj)
    assert obj["state"] == "success"
    assert len(obj["tasks"]) == meta["tasks"]
    bad = {n: t["state"] for n, t in obj["tasks"].items() if t["state"] != "success"}
    assert bad == {}
    assert len(os.listdir(work / "out")) == meta["tasks"]
