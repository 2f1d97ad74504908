"""The comparison's table (markdown, also what the terminal shows) and its JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ml.core.errors import UserError

METRIC_NAMES = {
    "roc_auc": "ROC-AUC",
    "f1": "F1",
    "f1_macro": "macro F1",
    "accuracy": "accuracy",
    "r2": "R²",
    "rmse": "RMSE",
}
OUTPUT_SUFFIXES = (".md", ".json")


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _seconds(value: Any) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _gap(value: float) -> str:
    return f"{value:+.4f}"


def _project_train_s(row: dict[str, Any]) -> float | None:
    parts = [row.get("load_s"), row.get("train_s")]
    return sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None


def _model_cell(row: dict[str, Any]) -> str:
    name = row["model"]
    if row["role"] == "project" and row.get("champion"):
        name += f", champion {row['champion']}"
    if row["status"] != "ok":
        name += f" ({row['status']})"
    return name


def markdown_table(result: dict[str, Any]) -> list[str]:
    """The table of one dataset: a row per model, then the best peer and the project's gap."""
    metrics = result["metrics"]
    binary = result["problem"] == "binary"
    header = ["model", *(METRIC_NAMES[m] for m in metrics)]
    header += ["threshold"] if binary else []
    header += ["train s", "predict s"]
    lines = ["| " + " | ".join(header) + " |", "| --- " + "| ---: " * (len(header) - 1) + "|"]
    for row in result["models"]:
        cells = [_model_cell(row), *(_number(row["metrics"].get(m)) for m in metrics)]
        cells += [_number(row.get("threshold"), 3)] if binary else []
        train_s = _project_train_s(row) if row["role"] == "project" else row.get("train_s")
        cells += [_seconds(train_s), _seconds(row.get("predict_s"))]
        lines.append("| " + " | ".join(cells) + " |")
    summary = result["summary"]
    blank = [""] * (len(header) - 1 - len(metrics))
    best = [
        f"{_number(summary[m]['best_value'])} ({summary[m]['best_peer']})" if m in summary else "–"
        for m in metrics
    ]
    lines.append("| best peer | " + " | ".join(best + blank) + " |")
    gaps = []
    for m in metrics:
        entry = summary.get(m, {})
        if "gap" not in entry:
            gaps.append("–")
            continue
        gaps.append(f"{_gap(entry['gap'])} ({'ahead' if entry['ahead'] else 'behind'})")
    lines.append("| project − best peer | " + " | ".join(gaps + blank) + " |")
    return lines


def _notes(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    split = (
        f"{rows['train']:,} training and {rows['test']:,} test rows "
        f"({1 - result['test_size']:.0%}/{result['test_size']:.0%} split, "
        f"{'stratified by class, ' if result['stratified'] else ''}seed {result['seed']})"
    )
    if rows["unlabelled_left_out"]:
        split += f"; {rows['unlabelled_left_out']:,} rows without a target left out"
    what = f"Target `{result['target']}`, {result['problem']}"
    if result.get("positive_class") is not None:
        what += f", positive class `{result['positive_class']}`"
    if result.get("id_column"):
        what += f", id `{result['id_column']}`"
    notes = [f"{what}; {split}."]
    if result["problem"] == "binary":
        notes.append(
            "F1 at each model's own threshold, chosen without the test rows: the project's by "
            f"ml.train on its training rows, each baseline's on {result['threshold_folds']}-fold "
            "out-of-fold probabilities of the training rows (F1-maximising)."
        )
    project = next((r for r in result["models"] if r["role"] == "project"), None)
    if project is not None:
        args = " ".join(result.get("train_args") or []) or "none"
        notes.append(
            "Project times are wall seconds of subprocesses of this interpreter: train = "
            f"load_csv {_seconds(project.get('load_s'))} s + ml.train "
            f"{_seconds(project.get('train_s'))} s (extra ml.train options: {args}); predict = "
            "the whole ml.predict process (start, read the CSV, load the model, score, write); "
            f"the three processes used {_seconds(project.get('cpu_s'))} CPU seconds. "
            "Baseline times are in-process: train includes the threshold's out-of-fold fits, "
            "predict is the model's predict call."
        )
        if project["status"] != "ok":
            notes.append(
                f"The project failed at its {project.get('failed_step')} step:\n\n```\n"
                f"{project.get('log_tail', '')}\n```"
            )
    failed = [r for r in result["models"] if r["role"] == "baseline" and r["status"] != "ok"]
    for row in failed:
        notes.append(f"{row['model']} failed: {row.get('error')}")
    machine = result["machine"]
    notes.append(
        f"Machine: {machine.get('cores')} cores, {machine.get('memory_gb', '?')} GB; load average "
        f"{machine.get('load_average')} at the start, {result.get('load_average_end')} at the end "
        "(above the core count, other processes shared the CPU and wall times are inflated). "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items())
        + "."
    )
    return notes


def markdown(result: dict[str, Any]) -> str:
    """The report of one comparison as markdown (a heading, the table, notes)."""
    lines = [f"## {result['dataset']}: `{result['target']}` ({result['problem']})", ""]
    if result.get("command"):
        lines += [f"`{result['command']}`", ""]
    lines += markdown_table(result) + [""]
    for note in _notes(result):
        lines += [note, ""]
    return "\n".join(lines).rstrip() + "\n"


def check_output(path: str | Path) -> Path:
    """`--output`: a .md or .json file in an existing folder (refused otherwise)."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"--output must end in .md or .json, got {str(path)!r}")
    if not path.parent.is_dir():
        raise UserError(f"--output: folder {str(path.parent)!r} does not exist")
    return path


def write_output(result: dict[str, Any], path: Path) -> None:
    """Save the report as markdown or JSON, by `path`'s suffix."""
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    else:
        path.write_text(markdown(result), encoding="utf-8")
