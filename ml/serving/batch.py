"""Batch scoring: a warehouse table in, a warehouse table of predictions out, in bounded memory.

    from ml import load_model
    from ml.core.warehouse import open_warehouse
    from ml.serving.batch import score_table

    with open_warehouse() as wh:                  # read-write: the target is replaced
        model = load_model("loan_repayment", wh)  # hash-checked, like ml.predict
        rows = score_table(wh, model, "marts.loan_features", "ml.loan_scores")

`score_table` streams the source as Arrow record batches of at most `batch_rows` rows (never one
DataFrame of the whole table), scores each batch (`ml.serving.fastpath.BatchScorer`) and appends
it to the target through the warehouse's table writer: the target is built under a temporary
name in ONE transaction and swapped in at the end, so a failure or a kill half-way leaves the
previous table as it was and no temporary one. The rows are the ones `TrainedModel.predict`
returns for the whole table, with one `scored_at` for the run; non-finite predictions are
refused and probabilities clipped to [0, 1], as there.

Reading, preparing, predicting and inserting overlap: the next batch is read and prepared in one
background thread and the previous one inserted in another while the current one is predicted
(numpy, Arrow, the engine and the estimators release the GIL).

The work goes through `Warehouse.map_table`: DuckDB streams the table through this process as
above; Spark ships the model (its file's bytes and the registry's sha256, checked by each worker
before unpickling, `ml.serving.shipping`) to its executors, which score their parts of the table
with `PartScorer` where they lie, and switches the complete output in (docs/design/spark.md).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from ml.core.errors import UserError
from ml.core.names import find_column, parse_relation
from ml.core.warehouse import TableWriter, Warehouse
from ml.core.warehouse.base import BatchJob
from ml.serving.fastpath import BatchScorer, Clock, Unsupported
from ml.serving.model import TrainedModel
from ml.serving.output import now, output_batch
from ml.serving.prepare import MissingColumnError, NoRowsError
from ml.serving.shipping import ShippedModel, ship

#: Rows per Arrow record batch asked of the engine (DuckDB hands out at most this many, often
#: fewer: one row group of 122,880). Large enough that per-batch overhead is small, small enough
#: that a batch's matrices stay a few hundred MB.
DEFAULT_BATCH_ROWS = 262_144
#: The engine's memory limit while scoring (`Warehouse.bounded_memory`): DuckDB caches what a
#: transaction appends up to its limit, so without one the process grows with the table (at
#: 512 MB that cache was 471 of the 1,250 MB peak at 10M rows, see docs/design/scoring.md).
DEFAULT_MEMORY_LIMIT = "256MB"

Progress = Callable[[int], None]
STAGES = ("read", "verify", "prepare", "predict", "write", "wait")


@dataclass
class ScoringStats:
    """Where the time of a `score_table` run went, and which path scored.

    `stage_s` / `stage_cpu_s`: busy wall and CPU seconds of reading the Arrow batches from
    DuckDB, checking the fast path on the first batch, turning batches into model matrices, the
    estimators, writing (output columns, queueing or inserting, the swap and the commit), and
    the scoring thread waiting for the next prepared batch. With background threads, reading
    and preparing overlap the rest (their CPU is the reader thread's own); the other stages'
    CPU is the whole process's during the stage (the estimators use their own threads), so it
    includes overlapping background work. `writer_s` / `writer_cpu_s`: the insert thread.
    `estimator_s`: wall seconds per ensemble member (the whole pipeline on the generic path).
    `compiled_trees`: per xgboost member, "compiled" when `ml.serving.trees` evaluated its
    trees, else why xgboost did. `path`: "fast" or "generic" (see `fallback_reason`).
    """

    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    stage_cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    estimator_s: dict[str, float] = field(default_factory=dict)
    writer_s: float = 0.0
    writer_cpu_s: float = 0.0
    fast: bool = False
    fallback_reason: str | None = None
    compiled_trees: dict[str, str] = field(default_factory=dict)
    distributed: bool = False  # scored by the engine's workers: rows and times only

    def add(self, stage: str, wall: float, cpu: float) -> None:
        """Add a lap to a stage."""
        self.stage_s[stage] += wall
        self.stage_cpu_s[stage] += cpu

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rows_per_s"] = self.rows / self.seconds if self.seconds > 0 else None
        out["path"] = self.path
        return out

    @property
    def path(self) -> str:
        """Which path scored the rows: "fast" or "generic" (or "distributed": the engine's
        workers, each on the fast path where it could)."""
        if self.distributed:
            return "distributed"
        return "fast" if self.fast else "generic"


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


class _Failed:
    """An exception raised in the prefetch thread, handed to the scoring thread."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Prefetcher:
    """Yields (batch, matrices or None, slot): the next batches read and, on the fast path,
    prepared in a background thread while the current one is predicted and written.

    Two buffer slots alternate: a slot is prepared again only after `release(slot)`.
    Without `background`, batches are read and prepared in the calling thread instead.
    """

    def __init__(self, reader, scorer: BatchScorer, first, background: bool) -> None:
        self.reader, self.scorer, self.first = reader, scorer, first
        self.busy = {"read": [0.0, 0.0], "prepare": [0.0, 0.0]}  # wall, thread CPU
        self.items: queue.Queue = queue.Queue(maxsize=1)
        self.free: queue.Queue = queue.Queue()
        for slot in (0, 1):
            self.free.put(slot)
        self.stopped = threading.Event()
        self.thread = None
        if background:
            self.thread = threading.Thread(target=self._run, name="ml.serving reader", daemon=True)
            self.thread.start()

    def _timed(self, stage: str, func, *args):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return func(*args)
        finally:
            self.busy[stage][0] += time.perf_counter() - wall
            self.busy[stage][1] += time.thread_time() - cpu

    def _batches(self):
        batch = self.first
        while batch is not None:
            if batch.num_rows:
                yield batch
            batch = self._timed("read", _next_batch, self.reader)

    def _prepared(self, batch, slot: int):
        scorer = self.scorer
        if not scorer.fast:
            return None
        try:
            return self._timed("prepare", scorer.prepare, batch, slot)
        except Unsupported as why:  # score the rest on the generic path
            scorer.fall_back(str(why))
            return None

    def _put(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self._batches():
                slot = None
                while slot is None and not self.stopped.is_set():
                    try:
                        slot = self.free.get(timeout=0.1)
                    except queue.Empty:
                        continue
                if slot is None or not self._put((batch, self._prepared(batch, slot), slot)):
                    return
        except BaseException as err:  # handed to the scoring thread
            self._put(_Failed(err))
        finally:
            self._put(None)

    def __iter__(self):
        if self.thread is None:  # in the calling thread
            for batch in self._batches():
                yield batch, self._prepared(batch, 0), 0
            return
        while True:
            item = self.items.get()
            if item is None:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def release(self, slot: int) -> None:
        """The scoring thread is done with `slot`'s matrices."""
        if self.thread is not None:
            self.free.put(slot)

    def abort(self) -> None:
        """Stop reading ahead (after a failure in the scoring thread)."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()


def _source_columns(wh: Warehouse, model: TrainedModel, relation: str) -> dict[str, str]:
    """Output name -> source column of what the model reads (the id first, if the source has
    one); a missing feature is refused as `TrainedModel.predict` refuses it."""
    names = list(wh.describe(relation).names)
    found = {c: find_column(names, c) for c in model.features}
    missing = [c for c, have in found.items() if have is None]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingColumnError(f"input is missing column {missing[0]!r}{more}")
    id_column = model.output.id_column
    id_source = find_column(names, id_column)
    columns = {id_column: id_source} if id_source else {}
    columns.update((c, found[c]) for c in model.features if c != id_column)
    return columns


def score_table(
    wh: Warehouse,
    model: TrainedModel,
    source_relation: str,
    target_relation: str,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    *,
    fast: bool = True,
    allow_empty: bool = False,
    background: bool = True,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    progress: Progress | None = None,
    stats: ScoringStats | None = None,
) -> int:
    """Score every row of `source_relation` with `model` into `target_relation`; return the rows.

    `fast=False` scores on the generic path only. An empty source is refused like
    `TrainedModel.predict` refuses no rows, unless `allow_empty` (then the target is replaced by
    an empty table). `background=False` reads, prepares and inserts in the calling thread.
    `memory_limit` bounds the engine's memory while scoring (None: leave it). `progress(rows)`
    is called after every batch; `stats`, if given, is filled in.

    On an engine with workers of its own (`Warehouse.distributed`: Spark) the model's
    hash-checked bytes are shipped to them and each scores its parts of the table
    (`Warehouse.map_table`); `progress` is then called once, at the end, and `stats` holds the
    rows and times only.
    """
    if batch_rows < 1:
        raise UserError("batch_rows must be at least 1")
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = stats if stats is not None else ScoringStats()
    source = tuple(p.casefold() for p in parse_relation(source_relation))
    if source == tuple(p.casefold() for p in parse_relation(target_relation)):
        raise UserError(f"cannot score {source_relation} into itself")
    columns = _source_columns(wh, model, source_relation)
    job = _ScoringJob(
        model, source_relation, columns, fast, allow_empty, background, stats, progress
    )
    with wh.bounded_memory(memory_limit):
        rows = wh.map_table(
            source_relation,
            columns,
            job,
            target_relation,
            batch_rows=batch_rows,
            background=background,
        )
    if job.finished is not None:
        stats.add("write", *job.finished.lap())  # the swap and the commit
    if job.writer is not None:
        stats.writer_s, stats.writer_cpu_s = job.writer.busy_s, job.writer.busy_cpu_s
    stats.distributed = wh.distributed
    if wh.distributed and progress is not None:
        progress(rows)
    stats.rows = rows
    stats.seconds = time.perf_counter() - started
    stats.cpu_s = time.process_time() - cpu_started
    return rows


class _ScoringJob(BatchJob):
    """`score_table`'s work: streamed here (`run`), or shipped to an engine's workers."""

    def __init__(
        self,
        model: TrainedModel,
        source_relation: str,
        columns: dict[str, str],
        fast: bool,
        allow_empty: bool,
        background: bool,
        stats: ScoringStats,
        progress: Progress | None,
    ) -> None:
        self.model, self.source_relation, self.fast = model, source_relation, fast
        self.allow_empty, self.background = allow_empty, background
        self.stats, self.progress = stats, progress
        self.has_ids = model.output.id_column in columns
        self.numbered = not self.has_ids
        self.finished: Clock | None = None
        self.writer: TableWriter | None = None

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        id_type = schema.field(self.model.output.id_column).type if self.has_ids else pa.int64()
        return self.model.output.arrow_schema(id_type)

    def run(self, reader: pa.RecordBatchReader, writer: TableWriter) -> int:
        stats = self.stats
        scorer = BatchScorer(self.model, reader.schema, fast=self.fast)
        try:
            rows = _score_batches(
                reader, scorer, writer, self.has_ids, self.background, stats, self.progress
            )
        finally:
            scorer.release()
        self.writer = writer
        stats.fast = scorer.fast
        stats.fallback_reason = scorer.fallback_reason
        stats.compiled_trees = scorer.compiled_trees()
        return rows

    def finish(self, rows: int) -> None:
        if rows == 0 and not self.allow_empty:
            raise NoRowsError(f"no rows to score: {self.source_relation} is empty")
        self.finished = Clock()

    def part_task(self) -> PartScorer:
        return PartScorer(ship(self.model), self.has_ids, self.fast, now())


@dataclass(frozen=True)
class PartScorer:
    """What an engine's worker runs on its parts of the source: the shipped model, checked and
    unpickled there, scores each batch as `score_table` does (on the fast path where it can,
    checked on the part's first batch)."""

    model: ShippedModel
    has_ids: bool
    fast: bool
    scored_at: datetime

    def __call__(self, batches: Iterator[pa.RecordBatch], first_row: int) -> Iterator[pa.Table]:
        model = self.model.load()
        output, scorer, done = model.output, None, 0
        for batch in batches:
            n = batch.num_rows
            if n == 0:
                continue
            if scorer is None:
                scorer = BatchScorer(model, batch.schema, fast=self.fast)
                if scorer.fast:
                    scorer.verify(batch)
            values = None
            if scorer.fast:
                try:
                    values = scorer.fast_values(batch)
                except Unsupported as why:
                    scorer.fall_back(str(why))
            if values is None:
                values = scorer.generic_values(batch)
            start = first_row - 1 + done
            if self.has_ids:
                ids = batch.column(output.id_column)
            else:
                ids = pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64))
            yield output_batch(
                output, ids, values, model.run_id, model.model_name, self.scored_at, start
            )
            done += n
        if scorer is not None:
            scorer.release()


def _split_predict_time(stats: ScoringStats, scorer: BatchScorer, lap: tuple[float, float]) -> None:
    """A batch's scoring lap: the estimators' share is "predict" (per member in estimator_s),
    the rest (the generic path's pandas part) "prepare"."""
    wall, cpu = lap
    for name, (member_wall, member_cpu) in scorer.timings.items():
        stats.estimator_s[name] = stats.estimator_s.get(name, 0.0) + member_wall
        stats.add("predict", member_wall, member_cpu)
        wall, cpu = wall - member_wall, cpu - member_cpu
    stats.add("prepare", wall, cpu)
    scorer.timings.clear()


def _score_batches(
    reader: pa.RecordBatchReader,
    scorer: BatchScorer,
    writer: TableWriter,
    has_ids: bool,
    background: bool,
    stats: ScoringStats,
    progress: Progress | None,
) -> int:
    """Score the reader's batches into the writer (the first one checks the fast path before
    anything else is prepared with it); return the rows."""
    model, scored_at, rows = scorer.model, now(), 0
    clock = Clock()
    first = _next_batch(reader)
    while first is not None and first.num_rows == 0:
        first = _next_batch(reader)
    stats.add("read", *clock.lap())
    if first is not None and scorer.fast:
        scorer.verify(first)
        stats.add("verify", *clock.lap())
    feeder = _Prefetcher(reader, scorer, first, background)
    try:
        clock.lap()
        for batch, matrices, slot in feeder:
            stats.add("wait", *clock.lap())
            n = batch.num_rows
            if matrices is not None:
                values = scorer.predict_prepared(matrices)
            else:
                values = scorer.generic_values(batch)
            feeder.release(slot)
            _split_predict_time(stats, scorer, clock.lap())
            if has_ids:
                ids = batch.column(model.output.id_column)
            else:
                ids = pa.array(np.arange(rows + 1, rows + n + 1, dtype=np.int64))
            out = output_batch(
                model.output, ids, values, model.run_id, model.model_name, scored_at, rows
            )
            writer.append(out)
            del out, values, batch, ids, matrices
            rows += n
            stats.batches += 1
            stats.add("write", *clock.lap())
            if progress is not None:
                progress(rows)
            clock.lap()
    except BaseException:
        feeder.abort()
        raise
    for stage in ("read", "prepare"):
        stats.add(stage, *feeder.busy[stage])
        if feeder.thread is None:  # read and prepared while the scorer waited
            stats.add("wait", *(-t for t in feeder.busy[stage]))
    return rows
