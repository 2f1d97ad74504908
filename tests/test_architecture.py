"""The layers of docs/architecture.md hold: imports point down, serving loads no training code,
only the warehouse implementation connects, modules stay small and import at the top."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "ml").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])
MAX_LINES = 700
#: The one module that may open a connection or begin a transaction.
WAREHOUSE_IMPLEMENTATION = ROOT / "ml" / "core" / "warehouse" / "duckdb.py"
CONNECTING = re.compile(
    # a transaction's rollback, not `ml.rollback` (the command that restores a deployment)
    r"duckdb\.connect\(|\bbegin transaction\b|[\"'](commit|rollback)[\"']|\.rollback\(|"
    r"\battach\s+['\"{]",
    re.IGNORECASE,
)
#: Function-level imports of our own code that are there on purpose (module -> imported).
LAZY_ON_PURPOSE = {
    ("ml/__init__.py", "ml.serving.model"),  # `from ml import load_model` stays cheap
    ("ml/core/warehouse/__init__.py", "ml.core.warehouse.duckdb"),  # the engine, on demand
    ("ml/core/warehouse/__init__.py", "ml.core.warehouse.spark"),  # pyspark, only for Spark
    ("ml/serving/trees.py", "ml.serving._tree_kernel"),  # numba, loaded in the background
}


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "broken" not in proc.stdout.lower().replace("0 broken", "")


def test_serving_a_model_loads_no_training_code_and_no_entry_point() -> None:
    code = (
        "import sys, ml.predict, ml.serving.batch; "
        "print('\\n'.join(m for m in sys.modules if m.startswith(('ml.', 'scripts'))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "ml.serving.model" in loaded
    assert not {m for m in loaded if m.startswith(("ml.training", "ml.bench", "scripts"))}


def test_only_the_warehouse_implementation_connects_or_begins_transactions() -> None:
    offenders = []
    for path in SOURCES:
        if path == WAREHOUSE_IMPLEMENTATION:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if CONNECTING.search(code):
                offenders.append(f"{_relative(path)}:{number}: {line.strip()}")
    assert offenders == []
    assert CONNECTING.search(WAREHOUSE_IMPLEMENTATION.read_text())  # the pattern still matches


@pytest.mark.parametrize("path", SOURCES, ids=_relative)
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_relative(path)} has {lines} lines: it holds two jobs"


def test_our_own_code_is_imported_at_the_top() -> None:
    hidden = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in top:
                continue
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            hidden += [
                f"{_relative(path)}:{node.lineno} imports {name}"
                for name in names
                if name.split(".")[0] in ("ml", "scripts")
                and (_relative(path), name) not in LAZY_ON_PURPOSE
            ]
    assert hidden == []
