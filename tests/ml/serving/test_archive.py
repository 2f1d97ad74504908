"""The prediction archive: one row per model and entity, the latest; pruning keeps the named
models."""

from __future__ import annotations

import pandas as pd

from ml.core.warehouse import open_warehouse
from ml.serving.archive import HASH, archive_rows, archived, updated_archive

TASK = "toy"


def _predictions(run: str, ids: list[int], value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ids,
            "prediction": [value] * len(ids),
            "run_id": pd.Series([run] * len(ids), dtype="str"),
            "model_name": pd.Series(["m"] * len(ids), dtype="str"),
        }
    )


def test_archive_keeps_the_latest_row_per_model_and_entity(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    first = archive_rows(_predictions("r1", [1, 2, 3], 0.1), ["a", "b", "c"])
    assert list(first[HASH]) == ["a", "b", "c"]
    with open_warehouse(path) as wh:
        wh.execute("create schema if not exists ml")
        wh.replace_tables(
            {"ml.toy_prediction_archive": updated_archive(wh, TASK, first, "item_id")}
        )
        second = archive_rows(_predictions("r2", [1, 2], 0.2), ["a", "b"])
        again = archive_rows(_predictions("r1", [3, 4], 0.3), ["c2", "d"])
        table = updated_archive(wh, TASK, pd.concat([second, again]), "item_id")
        wh.replace_tables({"ml.toy_prediction_archive": table})
        r1 = archived(wh, TASK, "r1", "m").sort_values("item_id")
        assert list(r1["item_id"]) == [1, 2, 3, 4]
        assert list(r1["prediction"]) == [0.1, 0.1, 0.3, 0.3]
        assert list(r1[HASH]) == ["a", "b", "c2", "d"]
        assert len(archived(wh, TASK, "r2", "m")) == 2
        pruned = updated_archive(wh, TASK, second.head(0), "item_id", keep_models={"r2/m"})
        assert set(pruned["run_id"]) == {"r2"}
        assert archived(wh, "other", "r1", "m").empty
