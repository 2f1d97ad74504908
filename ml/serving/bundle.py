"""A saved model: the fitted pipeline with its input contract and output layout, hash-checked.

`ml.train` writes every candidate to `artifacts/<task>/<run_id>/<model>.joblib`, with a
`<model>.json` beside it for people. The joblib file holds plain values and the pipeline:

- the input contract: the id column and the feature columns (numeric, categorical), their
  dtypes and known categories at training, and the columns left out and why;
- the output layout (`ml.serving.output.OutputLayout`): problem type, classes, threshold;
- `info`: what people want to know (metrics, parameters, library versions, seed, relation);
- `reference`: the rows the champion's SHAP explanation was computed against at training, so a
  row explained online (`ml.api`) gets the values and reasons the warehouse holds.

That is everything serving needs: it never imports the training code. The file's sha256 is
recorded in `ml.model_runs`; loading recomputes it and refuses a file whose bytes differ BEFORE
unpickling it, because unpickling runs code. `bundle_bytes` / `bundle_from_bytes` do the same for
a bundle's bytes shipped to an engine's workers (`ml.serving.shipping`).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import joblib
import pandas as pd

from ml.core.errors import UserError
from ml.core.files import atomic_write, sha256_file
from ml.serving.output import OutputLayout

#: The layout of the joblib file; a file of another layout is refused (retrain it).
BUNDLE_FORMAT = 2


class ArtifactIntegrityError(UserError):
    """A model file is missing, its bytes do not match the registry, or it cannot be read."""


@dataclass(frozen=True)
class InputContract:
    """The columns a model reads, as it was trained on them."""

    #: Categories listed per column at most: a shorter list is every category seen in training.
    MAX_CATEGORIES: ClassVar[int] = 200

    id_column: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    dtypes: dict[str, str] = field(default_factory=dict)  # pandas dtype at training
    categories: dict[str, list[str]] = field(default_factory=dict)  # up to MAX_CATEGORIES
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature
    #: numeric column -> [min, median, max] of its values at training (forms, documentation;
    #: a value outside is still scored). Empty in bundles saved before it existed.
    ranges: dict[str, list[float]] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """Every feature column, numeric first (the model frame's order)."""
        return [*self.numeric, *self.categorical]

    def as_dict(self) -> dict[str, Any]:
        """Plain values, as the bundle stores them."""
        return {
            "id_column": self.id_column,
            "features": self.features,
            "numeric_features": list(self.numeric),
            "categorical_features": list(self.categorical),
            "dtypes": dict(self.dtypes),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "dropped_columns": dict(self.dropped),
            "ranges": {k: list(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InputContract:
        """The contract `as_dict` wrote."""
        return cls(
            id_column=values["id_column"],
            numeric=tuple(values["numeric_features"]),
            categorical=tuple(values["categorical_features"]),
            dtypes=dict(values.get("dtypes") or {}),
            categories={k: list(v) for k, v in (values.get("categories") or {}).items()},
            dropped=dict(values.get("dropped_columns") or {}),
            ranges={k: list(v) for k, v in (values.get("ranges") or {}).items()},
        )


@dataclass
class ModelBundle:
    """A fitted pipeline and what is needed to validate its input and lay out its output."""

    task: str
    run_id: str
    model_name: str
    pipeline: Any
    contract: InputContract
    output: OutputLayout
    info: dict[str, Any] = field(default_factory=dict)
    #: The background of the champion's SHAP explanation at training (a seeded sample of the
    #: training rows, model-frame columns): explaining a row online with it gives the values
    #: `ml.prediction_explanations` holds. None in bundles saved before it existed.
    reference: pd.DataFrame | None = field(default=None, compare=False)
    #: The file it was loaded from and that file's sha256 as the registry holds it (None for a
    #: bundle made in this process).
    artifact_path: Path | None = field(default=None, compare=False)
    artifact_sha256: str | None = field(default=None, compare=False)

    def describe(self) -> dict[str, Any]:
        """Everything but the pipeline, as plain values (the readable `.json` beside the file)."""
        return {
            "format": BUNDLE_FORMAT,
            "task": self.task,
            "run_id": self.run_id,
            "model_name": self.model_name,
            "contract": self.contract.as_dict(),
            "output": self.output.as_dict(),
            "info": self.info,
        }


def _content(bundle: ModelBundle) -> dict[str, Any]:
    return {**bundle.describe(), "pipeline": bundle.pipeline, "reference": bundle.reference}


def save_bundle(bundle: ModelBundle, folder: Path) -> tuple[Path, str]:
    """Write `<folder>/<model>.joblib` (atomically) and its `.json`; return (path, sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bundle.model_name}.joblib"
    atomic_write(path, lambda fh: joblib.dump(_content(bundle), fh, compress=3))
    digest = sha256_file(path)
    readable = json.dumps({**bundle.describe(), "artifact_sha256": digest}, indent=2, default=str)
    atomic_write(folder / f"{bundle.model_name}.json", readable)
    return path, digest


def load_bundle(path: str | Path, expected_sha256: str) -> ModelBundle:
    """The bundle at `path`, unpickled only if its sha256 equals `expected_sha256`."""
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
    bundle = _unpickled(path, f"model file {path}")
    bundle.artifact_path, bundle.artifact_sha256 = path, expected_sha256
    return bundle


def _unpickled(source: Any, what: str) -> ModelBundle:
    """The bundle joblib reads from `source` (a path or a file object) whose hash was checked."""
    older = (
        f"{what} was saved by an older version of the project: retrain with `python -m ml.train`"
    )
    try:
        content = joblib.load(source)
    except (ModuleNotFoundError, AttributeError):  # classes that moved since it was saved
        raise ArtifactIntegrityError(older) from None
    if not isinstance(content, dict) or content.get("format") != BUNDLE_FORMAT:
        raise ArtifactIntegrityError(older)
    return ModelBundle(
        task=content["task"],
        run_id=content["run_id"],
        model_name=content["model_name"],
        pipeline=content["pipeline"],
        contract=InputContract.from_dict(content["contract"]),
        output=OutputLayout.from_dict(content["output"]),
        info=dict(content.get("info") or {}),
        reference=content.get("reference"),
    )


def bundle_bytes(bundle: ModelBundle) -> tuple[bytes, str]:
    """The bytes of `bundle` as a model file holds them, and their sha256: the file's own bytes,
    checked against the registry's hash, for a bundle loaded from one; else serialized here."""
    if bundle.artifact_path is not None and bundle.artifact_sha256 is not None:
        path = Path(bundle.artifact_path)
        try:
            content = path.read_bytes()
        except OSError as err:
            raise ArtifactIntegrityError(f"cannot read model file {path}: {err.strerror}") from None
        check_bytes(content, bundle.artifact_sha256, f"model file {path}")
        return content, bundle.artifact_sha256
    buffer = io.BytesIO()
    joblib.dump(_content(bundle), buffer, compress=3)
    content = buffer.getvalue()
    return content, hashlib.sha256(content).hexdigest()


def bundle_from_bytes(content: bytes, expected_sha256: str, what: str) -> ModelBundle:
    """The bundle of `bundle_bytes`' output, unpickled only if its sha256 is `expected_sha256`."""
    check_bytes(content, expected_sha256, what)
    return _unpickled(io.BytesIO(content), what)


def check_bytes(content: bytes, expected_sha256: str, what: str) -> None:
    """Refuse (`ArtifactIntegrityError`) bytes whose sha256 is not `expected_sha256`."""
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"refusing to load {what}: its sha256 {actual[:12]}... does not match the "
            f"registry's {expected_sha256[:12]}... (it changed after training; retrain the task)"
        )


def write_run_summary(folder: Path, summary: dict[str, Any]) -> Path:
    """`<folder>/metadata.json`: a run's candidates, champion and hashes, for people and tools
    browsing the artifacts (loading never trusts it: the registry's hash does)."""
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(folder / "metadata.json", json.dumps(summary, indent=2, default=str))
