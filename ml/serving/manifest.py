"""The deployment manifest: `ml.deployments`' current rows as a file a server can watch.

DuckDB lets one process write the warehouse, and a reader that opens it, even for a moment,
can make a writer's open fail. So the HTTP server (`ml.api`) never opens the warehouse while it
serves: every command that changes a deployment (ml.train, ml.promote, ml.rollback) writes
`<artifacts>/deployments.json` right after its transaction commits, and the server reloads a
task's model when the file says another model is deployed. The file is a copy, never the
authority: `ml.serve` rewrites it from the warehouse when it starts, and every model it names
is still hash-checked against the sha256 the file carries (which the registry recorded).

Per task: the current deployment (id, run, model, artifact path and sha256, when, by which
command, why) and the run's other candidates (path and sha256), which a client may ask for by
name to compare them with the deployed model (`?model=` of the predict route).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ml.core.config import artifacts_root, warehouse_path
from ml.core.errors import UserError
from ml.core.files import atomic_write
from ml.core.tables import DEPLOYMENTS, MODEL_RUNS
from ml.core.warehouse import Warehouse

#: The file's layout version; a file of another version is refused (`ml.serve` rewrites it).
MANIFEST_FORMAT = 1
#: The file name, in the artifacts folder.
MANIFEST_NAME = "deployments.json"


def manifest_path() -> Path:
    """`<ARTIFACTS_PATH>/deployments.json`."""
    return artifacts_root() / MANIFEST_NAME


def _text(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def current_deployments(wh: Warehouse) -> dict[str, dict[str, Any]]:
    """task -> its current deployment (the `ml.deployments` row of the highest id) with the
    deployed run's candidates: {model_name: {"path", "sha256"}}."""
    if not wh.exists(DEPLOYMENTS):
        return {}
    rows = wh.query(
        f"""
        select *
        from (
            select
                *,
                row_number() over (partition by task order by deployment_id desc) as recency
            from {DEPLOYMENTS}
        ) as ranked
        where recency = 1
        order by task
        """
    )
    candidates = pd.DataFrame(columns=["task", "run_id", "model_name"])
    if wh.exists(MODEL_RUNS) and not rows.empty:
        candidates = wh.query(
            f"""
            select task, run_id, model_name, artifact_path, artifact_sha256
            from {MODEL_RUNS}
            where artifact_path is not null
              and run_id in (select run_id from {DEPLOYMENTS})  -- not the whole history
            """
        )
    tasks = {}
    for row in rows.to_dict("records"):
        run = candidates[
            (candidates["task"] == row["task"]) & (candidates["run_id"] == row["run_id"])
        ]
        tasks[str(row["task"])] = {
            "deployment_id": int(row["deployment_id"]),
            "run_id": str(row["run_id"]),
            "model_name": str(row["model_name"]),
            "artifact_path": str(row["artifact_path"]),
            "artifact_sha256": str(row["artifact_sha256"]),
            "deployed_at": _text(row["deployed_at"]),
            "command": _text(row["command"]),
            "reason": _text(row["reason"]),
            "previous_deployment_id": _text(row["previous_deployment_id"]),
            "candidates": {
                str(c["model_name"]): {
                    "path": str(c["artifact_path"]),
                    "sha256": str(c["artifact_sha256"]),
                }
                for c in run.to_dict("records")
            },
        }
    return tasks


def write_manifest(wh: Warehouse, path: Path | None = None) -> Path:
    """Write the manifest of `wh`'s current deployments (atomically); its path."""
    content = {
        "format": MANIFEST_FORMAT,
        "warehouse": str(warehouse_path()),
        "written_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "tasks": current_deployments(wh),
    }
    return atomic_write(path or manifest_path(), json.dumps(content, indent=2, sort_keys=True))


def file_state(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of `path`, None when absent: a change means a new file (the
    manifest is always replaced by a rename, so a reader never sees half of one)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def read_manifest(path: Path | None = None) -> dict[str, Any]:
    """The manifest at `path` (default `manifest_path()`), checked for its layout."""
    path = path or manifest_path()
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"no deployment manifest at {path}: train a model first (`make run` or "
            "`python -m ml.train`)"
        ) from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read the deployment manifest {path}: {err}") from None
    if not isinstance(content, dict) or content.get("format") != MANIFEST_FORMAT:
        raise UserError(
            f"the deployment manifest {path} has another layout: restart `python -m ml.serve` "
            "(it rewrites the file from the warehouse)"
        )
    if not isinstance(content.get("tasks"), dict):
        raise UserError(f"the deployment manifest {path} lists no tasks")
    return content
