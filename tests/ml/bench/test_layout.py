"""ml.bench's place in the layers: only scripts.bench imports it, it connects through the
warehouse interface only, and its scoring worker loads no training code."""

from __future__ import annotations

import ast

from ml.core.config import PROJECT_ROOT

BENCH = PROJECT_ROOT / "ml" / "bench"
SCRIPT = PROJECT_ROOT / "scripts" / "bench.py"


def _imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_only_the_bench_script_imports_ml_bench() -> None:
    sources = [*(PROJECT_ROOT / "ml").rglob("*.py"), *(PROJECT_ROOT / "scripts").rglob("*.py")]
    importers = {
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in sources
        if BENCH not in path.parents
        and any(n == "ml.bench" or n.startswith("ml.bench.") for n in _imports(path))
    }
    assert importers == {"scripts/bench.py", "scripts/benchmark_models.py"}


def test_the_bench_reaches_duckdb_only_through_the_warehouse_interface() -> None:
    for path in [*BENCH.rglob("*.py"), SCRIPT]:
        text = path.read_text().lower()
        assert "duckdb" not in {n.split(".")[0] for n in _imports(path)}, path
        for needle in ("duckdb.connect", "attach ", "begin transaction", "rollback"):
            assert needle not in text, (path, needle)


def test_the_scoring_worker_loads_no_training_code() -> None:
    """Its peak memory is a deployed scorer's: it imports serving code and the bench's process
    helpers only (the import contracts keep training out of serving, and the helpers import
    ml.core only)."""
    allowed = ("ml.core", "ml.serving", "ml.bench.process")
    for name in ("score_worker.py", "process.py"):
        ours = {n for n in _imports(BENCH / name) if n.split(".")[0] in ("ml", "scripts")}
        assert ours and all(n.startswith(allowed) for n in ours), (name, ours)
    assert not any(n.startswith("ml.bench") for n in _imports(BENCH / "process.py"))
