"""The dbt project's layout, read as files (no dbt run): one sources file, unit tests beside their
models, one macro a file with its entry in _macros.yml, named selections used by the Makefile and
the tests, and the indirect selection that lets partial builds run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import DBT_AFTER_TRAINING, DBT_BEFORE_TRAINING, ROOT

PROJECT = ROOT / "dbt_project"
MACRO_DEFINITION = re.compile(r"{%-?\s*(macro|test)\s+(\w+)\s*\(")


def engine_implementations(path: Path) -> set[str]:
    return {f"{engine}__{path.stem}" for engine in ("default", "duckdb", "spark")}


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def project_ymls() -> list[Path]:
    return sorted((PROJECT / "models").rglob("*.yml"))


def test_selectors_are_defined_and_used_by_the_makefile_and_the_tests():
    selectors = {s["name"]: s for s in load(PROJECT / "selectors.yml")["selectors"]}
    assert set(selectors) == {
        "before_training",
        "after_training",
        "production_build",
        "production_scores",
    }
    for production, stage in (
        ("production_build", "before_training"),
        ("production_scores", "after_training"),
    ):  # the same selection, without dbt's unit tests
        union = selectors[production]["definition"]["union"]
        assert {"method": "selector", "value": stage} in union
        assert {"exclude": [{"method": "resource_type", "value": "unit_test"}]} in union
    assert DBT_BEFORE_TRAINING == ("--selector", "before_training")
    assert DBT_AFTER_TRAINING == ("--selector", "after_training")
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "dbt-build", "dbt-scores"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    # (dbt-build ends with $(DBT_BUILD_ARGS): empty here, --full-refresh from `make run`)
    builds = [line.rstrip() for line in dry.stdout.splitlines() if " build --project-dir " in line]
    assert len(builds) == 2
    assert builds[0].endswith("--selector production_build")
    assert builds[1].endswith("--selector production_scores")
    assert "source:ml" not in dry.stdout and "--exclude" not in dry.stdout


def test_partial_builds_skip_tests_of_unselected_models():
    assert load(PROJECT / "dbt_project.yml")["flags"]["indirect_selection"] == "buildable"


def test_every_source_is_declared_once_in_the_staging_sources_file():
    declaring = [p for p in project_ymls() if "sources" in load(p)]
    assert declaring == [PROJECT / "models" / "staging" / "_sources.yml"]
    names = [s["name"] for s in load(declaring[0])["sources"]]
    assert names == ["raw", "ml", "ml_segmentation"]
    for sql in (PROJECT / "models").rglob("*.sql"):
        if "source(" in sql.read_text():
            assert "staging" in sql.relative_to(PROJECT / "models").parts, sql


def test_unit_tests_live_in_the_yml_of_their_model():
    defined = {p: {m["name"] for m in load(p).get("models", [])} for p in project_ymls()}
    unit_tests = 0
    for path in project_ymls():
        for unit_test in load(path).get("unit_tests", []):
            assert unit_test["model"] in defined[path], (path.name, unit_test["name"])
            unit_tests += 1
    assert unit_tests >= 8
    assert not [p for p in project_ymls() if "unit_test" in p.name]


def test_every_macro_has_one_file_and_a_description_entry():
    entries = {m["name"] for m in load(PROJECT / "macros" / "_macros.yml")["macros"]}
    files = sorted((PROJECT / "macros").glob("*.sql"))
    defined = set()
    for path in files:
        found = MACRO_DEFINITION.findall(path.read_text())
        # besides the macro, only its engine implementations (adapter.dispatch)
        found = [(kind, name) for kind, name in found if name not in engine_implementations(path)]
        assert len(found) == 1, f"{path.name}: one macro a file, found {found}"
        kind, name = found[0]
        macro = f"test_{name}" if kind == "test" else name
        assert path.stem == macro, path.name
        defined.add(macro)
    assert defined == entries


def test_copied_dbt_utils_tests_say_where_they_come_from():
    for name in ("accepted_range", "expression_is_true", "unique_combination_of_columns"):
        text = (PROJECT / "macros" / f"test_{name}.sql").read_text()
        assert f"macros/generic_tests/{name}.sql" in text and "dbt deps" in text, name


def test_singular_tests_only_in_the_tests_folder():
    for path in (PROJECT / "tests").rglob("*"):
        if path.is_file():
            assert path.suffix == ".sql" and not MACRO_DEFINITION.search(path.read_text()), path
    assert not list((PROJECT / "tests").glob("*raw_equals_staged_plus_rejected*"))


# SQL that does not run, or silently runs wrong, on one of the two engines (docs/design/spark.md):
# each has a portable form or a macro of macros/ that dispatches per engine.
NOT_PORTABLE = {
    r"\bvarchar\b": "string (both engines)",
    r"\bdate_diff\s*\(": "days_between() / dbt.datediff",
    r"\bepoch\s*\(": "epoch_microseconds()",
    r"\*\s*exclude\s*\(": "* except (...)",
    r"\bregexp_matches\s*\(": "regexp_contains()",
    r"\bregexp_replace\s*\(": "regexp_replace_all()",
    r"\b[lr]?trim\s*\([^()]*,": "trim(trailing/leading ... from ...)",
    r"\bpow(er)?\s*\(": "integer_power() (pow() differs in the last bit between engines)",
    r"\bstrftime\s*\(|\bstrptime\s*\(": "a cast",
}


def test_sql_is_portable_outside_the_dispatching_macros():
    paths = [*PROJECT.glob("models/**/*.sql"), *PROJECT.glob("tests/**/*.sql")]
    paths += [p for p in PROJECT.glob("macros/*.sql") if "adapter.dispatch" not in p.read_text()]
    found = []
    for path in paths:
        text = re.sub(r"{#.*?#}|--[^\n]*", "", path.read_text(), flags=re.DOTALL)
        for pattern, instead in NOT_PORTABLE.items():
            if re.search(pattern, text, flags=re.IGNORECASE):
                found.append(f"{path.relative_to(PROJECT)}: {pattern} (use {instead})")
    assert not found, "\n".join(found)
    ymls = [*PROJECT.glob("models/**/*.yml"), *PROJECT.glob("seeds/*.yml")]
    contracts = "\n".join(p.read_text() for p in ymls)
    assert not re.search(r"data_type:\s*varchar|:\s*varchar\s*$", contracts, flags=re.M)
