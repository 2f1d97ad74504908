"""ml.segment on the tiny warehouse: tables, choice of method and k, names, rules, atomic writes, dbt marts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.core.errors import UserError
from ml.core.warehouse.duckdb import DuckDBWarehouse
from ml.segmentation import candidates, kmeans
from ml.segmentation.behaviour import BEHAVIOUR_FEATURES, CLUSTER_FEATURES
from ml.segmentation.run import run_segmentation
from tests.conftest import run_dbt, run_python

K_MIN, K_MAX, SEED, SAMPLE = 2, 5, 3, 1500


def _query(warehouse: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _segment(warehouse: Path) -> kmeans.SegmentationResult:
    result, _ = run_segmentation(k_min=K_MIN, k_max=K_MAX, seed=SEED, sample=SAMPLE, path=warehouse)
    return result


@pytest.fixture(scope="module")
def segmented(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the built warehouse after one in-process segmentation and the dbt marts over it."""
    workdir = tmp_path_factory.mktemp("segmented")
    warehouse = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    result = _segment(warehouse)
    run_dbt("build", "--select", "source:ml_segmentation+", warehouse=warehouse, workdir=workdir)
    return {"warehouse": warehouse, "result": result, "workdir": workdir}


@pytest.mark.slow
def test_every_customer_gets_exactly_one_segment(segmented) -> None:
    counts = _query(
        segmented["warehouse"],
        """
        select
            (select count(*) from marts.customer_features) as customers,
            (select count(*) from ml.customer_segments) as rows,
            (select count(distinct customer_id) from ml.customer_segments) as distinct_ids,
            (select count(*) from ml.customer_segments s
             anti join marts.customer_features f using (customer_id)) as strangers,
            (select count(*) from ml.customer_segments where segment is null) as unnamed
        """,
    ).iloc[0]
    assert counts["customers"] == counts["rows"] == counts["distinct_ids"] > 0
    assert counts["strangers"] == 0 and counts["unnamed"] == 0


@pytest.mark.slow
def test_one_row_per_candidate_and_the_chosen_one_is_the_most_stable(segmented) -> None:
    runs = _query(segmented["warehouse"], "select * from ml.segmentation_runs")
    assert sorted(zip(runs["algorithm"], runs["k"], strict=True)) == [
        (a, k) for a in sorted(candidates.ALGORITHMS) for k in range(K_MIN, K_MAX + 1)
    ]
    assert runs["run_id"].nunique() == 1
    assert runs["silhouette"].notna().all() and runs["silhouette"].between(-1, 1).all()
    assert runs["stability"].between(-1, 1).all() and set(runs["criterion"]) == {"stability"}
    assert runs["bic"].isna().tolist() == (runs["algorithm"] == "KMeans").tolist()
    chosen = runs[runs["is_chosen"]]
    assert len(chosen) == 1
    best = runs["stability"].max()
    assert chosen["stability"].iloc[0] >= best - candidates.STABILITY_TOLERANCE
    near = runs[runs["stability"] >= best - candidates.STABILITY_TOLERANCE]
    assert chosen["k"].iloc[0] == near["k"].min()
    assert json.loads(chosen["cluster_features"].iloc[0]) == list(CLUSTER_FEATURES)
    # the simulated warehouse has sim.customer_truth: every candidate gets an adjusted Rand
    # index, and the run its supervised ceiling
    assert runs["adjusted_rand_index"].notna().all()
    assert runs["adjusted_rand_index"].between(-1, 1).all()
    assert runs["ari_ceiling"].nunique() == 1 and runs["ari_ceiling"].between(0, 1).all()
    assert json.loads(runs["features"].iloc[0]) == list(BEHAVIOUR_FEATURES)
    assert not {"segment", "customer_satisfaction", "age", "income"} & set(
        json.loads(runs["features"].iloc[0])
    )
    # the segment column of customer_segments holds the chosen row's names
    names = json.loads(chosen["segment_names"].iloc[0])
    written = _query(
        segmented["warehouse"], "select distinct cluster_id, segment from ml.customer_segments"
    )
    assert dict(zip(written["cluster_id"], written["segment"], strict=True)) == dict(
        enumerate(names)
    )


@pytest.mark.slow
def test_names_are_unique_and_rules_explain_the_clusters(segmented) -> None:
    result = segmented["result"]
    assert len(set(result.names)) == len(result.names) >= result.chosen.k
    chosen = _query(
        segmented["warehouse"], "select * from ml.segmentation_runs where is_chosen"
    ).iloc[0]
    rules = chosen["explanation_rules"]
    assert isinstance(rules, str) and "class:" in rules and "<=" in rules
    assert "inf" not in rules  # no NULL branches: the tree sees imputed, unscaled features
    assert 0.5 < chosen["explanation_accuracy"] <= 1
    not_chosen = _query(
        segmented["warehouse"], "select * from ml.segmentation_runs where not is_chosen"
    )
    assert not_chosen["explanation_rules"].isna().all()


@pytest.mark.slow
def test_customers_without_orders_are_their_own_segment(segmented) -> None:
    rows = _query(
        segmented["warehouse"],
        """
        select f.order_count = 0 as no_orders, s.segment, s.cluster_id, s.distance_to_centre
        from ml.customer_segments s join marts.customer_features f using (customer_id)
        """,
    )
    idle = rows[rows["no_orders"]]
    busy = rows[~rows["no_orders"]]
    assert len(idle) > 0, "the tiny warehouse has customers without orders"
    assert set(idle["segment"]) == {kmeans.NO_ORDERS_SEGMENT}
    assert idle["distance_to_centre"].isna().all()
    assert kmeans.NO_ORDERS_SEGMENT not in set(busy["segment"])
    assert (busy["distance_to_centre"] >= 0).all()


@pytest.mark.slow
def test_segment_profiles_mart(segmented) -> None:
    profiles = _query(segmented["warehouse"], "select * from marts.segment_profiles")
    customers = _query(segmented["warehouse"], "select count(*) as n from marts.customer_features")
    assert profiles["customer_count"].sum() == customers["n"].iloc[0]
    assert profiles["customer_share"].sum() == pytest.approx(1.0)
    assert set(profiles["segment"]) == set(segmented["result"].names)
    assert profiles["mean_order_count"].notna().all()
    results = json.loads((segmented["workdir"] / "target" / "run_results.json").read_text())
    assert {r["status"] for r in results["results"]} <= {"success", "pass"}


@pytest.mark.slow
def test_a_failed_write_leaves_the_previous_tables_then_history_appends(
    built_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _segment(built_copy)
    before_segments = _query(built_copy, "select * from ml.customer_segments order by customer_id")
    before_runs = _query(built_copy, "select * from ml.segmentation_runs order by algorithm, k")

    with duckdb.connect(str(built_copy)) as con:
        con.execute("create view ml.zz_blocker as select 1 as x")
    real_replace_tables = DuckDBWarehouse.replace_tables

    def failing_replace_tables(self, tables):
        # the segmentation tables are swapped inside the transaction, then replacing a view fails
        return real_replace_tables(self, {**tables, "ml.zz_blocker": pd.DataFrame({"x": [2]})})

    monkeypatch.setattr(DuckDBWarehouse, "replace_tables", failing_replace_tables)
    with pytest.raises(UserError, match="(?i)view"):
        run_segmentation(k_min=K_MIN, k_max=K_MAX, seed=SEED + 1, path=built_copy)
    pd.testing.assert_frame_equal(
        _query(built_copy, "select * from ml.customer_segments order by customer_id"),
        before_segments,
    )
    pd.testing.assert_frame_equal(
        _query(built_copy, "select * from ml.segmentation_runs order by algorithm, k"), before_runs
    )

    monkeypatch.setattr(DuckDBWarehouse, "replace_tables", real_replace_tables)
    second = _segment(built_copy)  # same seed: the same clustering, history appended
    runs = _query(built_copy, "select * from ml.segmentation_runs")
    per_run = len(candidates.ALGORITHMS) * (K_MAX - K_MIN + 1)
    assert len(runs) == 2 * per_run and runs["run_id"].nunique() == 2
    assert second.names == first.names
    np.testing.assert_array_equal(second.segments["cluster_id"], first.segments["cluster_id"])


@pytest.mark.slow
def test_without_the_simulators_truth_adjusted_rand_is_null(built_copy: Path) -> None:
    with duckdb.connect(str(built_copy)) as con:
        con.execute("drop table sim.customer_truth")
    proc = run_python(
        "ml.segment", "--k-min", "2", "--k-max", "3", "--sample", "1000", warehouse=built_copy
    )
    assert "wrote ml.customer_segments" in proc.stdout
    counts = _query(
        built_copy,
        """
        select count(*) as candidates, count(*) filter (where is_chosen) as chosen,
               count(*) filter (where adjusted_rand_index is null) as null_rand,
               count(*) filter (where ari_ceiling is null) as null_ceiling
        from ml.segmentation_runs
        """,
    ).iloc[0]
    n = 2 * len(candidates.ALGORITHMS)
    assert counts["candidates"] == n and counts["chosen"] == 1
    assert counts["null_rand"] == n and counts["null_ceiling"] == n, "NULL in SQL, not NaN"


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    proc = run_python("ml.segment", warehouse=empty, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "marts.customer_features" in lines[0]
    with pytest.raises(UserError, match="k-min"):
        kmeans.segment_customers(pd.DataFrame({"customer_id": [1]}), k_min=4, k_max=3)


def test_name_segments_rules_and_uniqueness() -> None:
    columns = list(BEHAVIOUR_FEATURES)
    centres = pd.DataFrame(0.0, index=range(4), columns=columns)
    centres.loc[0, ["total_spend", "order_count"]] = [1.5, 1.0]
    centres.loc[1, ["avg_discount_pct", "recency_days"]] = [2.0, 0.8]
    centres.loc[3, "total_spend"] = 0.1  # below the threshold: typical, like cluster 2
    names = kmeans.name_segments(centres)
    assert names == ["high spend, frequent", "discount seekers, lapsed", "typical", "typical 2"]
    assert kmeans.unique_names(["a", "a", "a 2"]) == ["a", "a 3", "a 2"]


@pytest.mark.slow
def test_the_report_gets_a_projection_and_z_scores_it_need_not_recompute(segmented) -> None:
    """The segments report reads these instead of refitting the preprocessing and a PCA."""
    result, warehouse = segmented["result"], segmented["warehouse"]
    points = _query(warehouse, "select * from ml.segment_projection order by customer_id")
    assert list(points.columns) == ["run_id", "customer_id", "cluster_id", "segment", "pc1", "pc2"]
    assert set(points["run_id"]) == {result.run_id}
    assert 0 < len(points) <= kmeans.PROJECTION_POINTS
    assert kmeans.NO_ORDERS_SEGMENT not in set(points["segment"])
    chosen = _query(warehouse, "select * from ml.segmentation_runs where is_chosen").iloc[0]
    shares = json.loads(chosen["pca_explained"])
    assert len(shares) == 2 and 0 < shares[1] <= shares[0] < 1
    zscores = json.loads(chosen["segment_zscores"])
    assert [z["segment"] for z in zscores] == result.names[: result.chosen.k]
    assert set(zscores[0]["zscores"]) == set(BEHAVIOUR_FEATURES)
    # the clustered customers' scaled features have mean 0: the segments' means, weighted by
    # their sizes, cancel out
    sizes = np.bincount(result.chosen.labels)
    spend = np.array([z["zscores"]["total_spend"] for z in zscores])
    assert abs(float(sizes @ spend)) < 1e-6 * sizes.sum()
