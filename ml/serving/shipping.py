"""A model shipped to an engine's workers: its bundle's bytes and their expected sha256.

`ship(model)` takes the bytes of the model file the registry hash-checked (or, for a model made
in this process, its bundle serialized here); a worker's `ShippedModel.load()` checks the sha256
of the bytes it received BEFORE unpickling them, as `load_model` checks a file. A worker process
scores several parts in turn: it unpickles a model once and checks the bytes of every part.
"""

from __future__ import annotations

from dataclasses import dataclass

from ml.serving.bundle import bundle_bytes, bundle_from_bytes, check_bytes
from ml.serving.model import TrainedModel

#: Models a worker process unpickled, by sha256 (a Python worker scores several parts in turn).
_LOADED: dict[str, TrainedModel] = {}


@dataclass(frozen=True)
class ShippedModel:
    """A model's bundle as bytes, to be checked and unpickled where it scores."""

    content: bytes
    sha256: str
    name: str  # task/model, for messages

    def load(self) -> TrainedModel:
        """The model, unpickled only if the bytes' sha256 is the expected one."""
        what = f"the model {self.name} shipped"
        check_bytes(self.content, self.sha256, what)
        model = _LOADED.get(self.sha256)
        if model is None:
            bundle = bundle_from_bytes(self.content, self.sha256, what)
            model = _LOADED.setdefault(self.sha256, TrainedModel.of(bundle))
        return model


def ship(model: TrainedModel) -> ShippedModel:
    """`model` ready to ship: the bytes of its hash-checked file (see `bundle_bytes`)."""
    content, sha256 = bundle_bytes(model)
    return ShippedModel(content, sha256, f"{model.task}/{model.model_name}")
