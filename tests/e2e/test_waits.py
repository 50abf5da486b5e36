"""The end-to-end tests' waits: one whose time runs out must fail the test.

poll() (daemon_util) and wait_for() (conftest) return a falsy value when their
condition never came true; a call whose value is dropped lets the test go on as
if it had, so every call must assert it or use it."""

import ast
from pathlib import Path

WAITS = {"poll", "wait_for"}


def dropped_waits(path):
    """Lines of path where a wait's result is thrown away (a bare call statement)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            fn = node.value.func
            name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", None)
            if name in WAITS:
                lines.append("%s:%d" % (path.name, node.lineno))
    return lines


def test_no_wait_result_is_dropped():
    dropped = [x for p in sorted(Path(__file__).parent.glob("*.py")) for x in dropped_waits(p)]
    assert dropped == [], "a wait that timed out goes unnoticed at %s: assert it" % dropped


def test_a_dropped_wait_is_found(tmp_path):
    p = tmp_path / "test_x.py"
    p.write_text("def test_x():\n    poll(lambda: False, 1)\n    assert wait_for(f)\n")
    assert dropped_waits(p) == ["test_x.py:2"]
