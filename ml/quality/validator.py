"""Great Expectations, held to what the gate needs: an in-memory context validating DataFrames."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ml.quality.suites import SuiteError

_INDEX_KEY = "check_quality_index"


class Validator:
    """An ephemeral Great Expectations context that validates DataFrames against suites.

    Nothing is written to disk (no `gx/` folder), analytics and progress bars are off. Creating
    one imports Great Expectations, which takes a few seconds. Each `validate` call adds a suite
    and a validation definition and deletes them afterwards, and empties the execution engine's
    metric cache: GX keeps every metric it computed (columns and masks as long as the frame) for
    the life of the data source, which would hold every column of every table in memory.
    """

    def __init__(self) -> None:
        # GX takes seconds to import: only the gate's runs pay for it, not its error paths
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self._gx = gx
        project = DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        )
        self._context = gx.get_context(mode="ephemeral", project_config=project)
        self._source = self._context.data_sources.add_pandas("warehouse")
        asset = self._source.add_dataframe_asset("table")
        self._batch = asset.add_batch_definition_whole_dataframe("whole_table")
        self._runs = 0

    def suite(self, name: str, expectations: Sequence[Mapping[str, Any]]) -> Any:
        """Build a `gx.ExpectationSuite`; configurations GX rejects raise `SuiteError`."""
        try:
            return self._gx.ExpectationSuite(
                name=name, expectations=[dict(e) for e in expectations]
            )
        except Exception as err:  # GX raises many types for a bad configuration
            raise SuiteError(f"suite {name}: invalid expectation: {err}") from None

    def validate(
        self,
        name: str,
        expectations: Sequence[Mapping[str, Any]],
        frame: pd.DataFrame,
        parameters: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """Validate `frame`; one JSON-ready result dict per expectation, in the given order."""
        if not expectations:
            return []
        tagged = []
        for i, exp in enumerate(expectations):
            tagged.append({**exp, "meta": {**(exp.get("meta") or {}), _INDEX_KEY: i}})
        self._runs += 1
        run_name = f"{name}#{self._runs}"
        suite = self._context.suites.add(self.suite(run_name, tagged))
        definition = self._context.validation_definitions.add(
            self._gx.ValidationDefinition(name=run_name, data=self._batch, suite=suite)
        )
        try:
            result = definition.run(
                batch_parameters={"dataframe": frame}, expectation_parameters=dict(parameters)
            )
        finally:
            self._context.validation_definitions.delete(run_name)
            self._context.suites.delete(run_name)
            # GX 1.24 has no public way to drop cached metrics; a new data source per call
            # would, but triples the per-call overhead (11 -> 30 ms, about 100 calls a run).
            cache = getattr(self._source.get_execution_engine(), "_metric_cache", None)
            if isinstance(cache, dict):
                cache.clear()
        ordered: list[dict[str, Any] | None] = [None] * len(expectations)
        for res in result.results:
            doc = res.to_json_dict()
            index = doc["expectation_config"]["meta"].pop(_INDEX_KEY)
            ordered[index] = doc
        missing = [expectations[i]["type"] for i, r in enumerate(ordered) if r is None]
        if missing:  # pragma: no cover - GX returns one result per expectation
            raise RuntimeError(f"no result for {missing}")
        return [r for r in ordered if r is not None]
