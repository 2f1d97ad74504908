"""Model artifacts on disk and their registry rows in `ml.model_runs`.

A trained pipeline is written to `artifacts/<task>/<run_id>/<model>.joblib` with a
`<model>.json` beside it for people (features, dtypes, categories, metrics, threshold, versions;
the same metadata is inside the joblib file, so the hash covers it). The file's sha256 is recorded
in `ml.model_runs`; loading recomputes the hash and refuses a file whose bytes differ *before*
unpickling it, because unpickling runs code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import joblib

from ml import config
from ml.errors import UserError


class ArtifactIntegrityError(UserError):
    """A model file is missing or its bytes do not match the hash in the registry."""


def artifacts_root() -> Path:
    """Where models are stored: `ARTIFACTS_PATH`, or `artifacts/` in the repository."""
    value = os.environ.get("ARTIFACTS_PATH", "").strip()
    if value:
        return Path(value).expanduser().resolve()
    return config.PROJECT_ROOT / "artifacts"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(
    model: Any, metadata: dict[str, Any], task: str, run_id: str, name: str
) -> tuple[Path, str]:
    """Write the model and its metadata atomically; return (path, sha256)."""
    folder = artifacts_root() / task / run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.joblib"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump({"pipeline": model, "metadata": metadata}, tmp, compress=3)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    digest = sha256_file(path)
    meta_path = folder / f"{name}.json"
    meta_path.write_text(json.dumps({**metadata, "artifact_sha256": digest}, indent=2, default=str))
    return path, digest


def load_verified(path: str | Path, expected_sha256: str) -> tuple[Any, dict[str, Any]]:
    """(pipeline, metadata) from `path`, unpickled only if its sha256 equals `expected_sha256`."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactIntegrityError(
            f"model file {path} is missing: retrain with `python -m ml.train`"
        )
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"refusing to load {path}: its sha256 {actual[:12]}... does not match the registry's "
            f"{expected_sha256[:12]}... (the file changed after training; retrain the task)"
        )
    bundle = joblib.load(path)
    return bundle["pipeline"], bundle["metadata"]


def write_run_summary(task: str, run_id: str, summary: dict[str, Any]) -> Path:
    """`artifacts/<task>/<run_id>/metadata.json`: the run's candidates, champion and hashes.

    For people and tools browsing the artifacts; loading never trusts it (the registry's hash
    and the metadata inside each joblib file are what `load_verified` uses).
    """
    path = artifacts_root() / task / run_id / "metadata.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str))
    return path
