"""A model bundle is hash-checked before it is unpickled, and carries its contract and layout."""

from __future__ import annotations

import os
import pickle

import joblib
import pytest

from ml.core.files import sha256_file
from ml.serving.bundle import (
    ArtifactIntegrityError,
    InputContract,
    ModelBundle,
    load_bundle,
    save_bundle,
)
from ml.serving.output import OutputLayout


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _bundle(pipeline: object = None) -> ModelBundle:
    return ModelBundle(
        task="t",
        run_id="run1",
        model_name="m",
        pipeline=pipeline if pipeline is not None else {"weights": [1, 2]},
        contract=InputContract("id", ("x",), ("colour",), {"x": "float64"}, {"colour": ["red"]}),
        output=OutputLayout("id", "multiclass", (0, 1), ("no", "yes"), None),
        info={"seed": 3},
    )


def test_a_saved_bundle_loads_with_its_hash(tmp_path) -> None:
    path, digest = save_bundle(_bundle(), tmp_path / "t" / "run1")
    loaded = load_bundle(path, digest)
    assert loaded.pipeline == {"weights": [1, 2]}
    assert loaded.contract == _bundle().contract
    assert loaded.output == _bundle().output
    assert loaded.output.class_columns == ("probability_no", "probability_yes")
    assert loaded.info == {"seed": 3}
    assert path.with_suffix(".json").exists()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_changed_bytes_are_refused(tmp_path) -> None:
    path, digest = save_bundle(_bundle(), tmp_path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="sha256"):
        load_bundle(path, digest)


def test_a_foreign_pickle_is_never_executed(tmp_path) -> None:
    path, digest = save_bundle(_bundle(), tmp_path)
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(ArtifactIntegrityError, match="refusing"):
        load_bundle(path, digest)
    assert not marker.exists()


def test_a_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        load_bundle(tmp_path / "nope.joblib", "0" * 64)


def test_a_file_of_an_older_layout_is_refused_with_a_retrain_hint(tmp_path) -> None:
    path = tmp_path / "old.joblib"
    joblib.dump({"pipeline": {}, "metadata": {"task": "t"}}, path)  # the layout before bundles
    with pytest.raises(ArtifactIntegrityError, match="older version.*retrain"):
        load_bundle(path, sha256_file(path))
