"""Model reports: one static HTML page per trained task, from the latest `ml.train` run.

`python -m scripts.report_models [--output reports/models] [--task T ...]` reads the warehouse
(`WAREHOUSE_PATH`, read-only; the connection is closed before anything is drawn) and
writes `<task>.html` for every task with a champion (or the tasks named) with:

- a headline (champion, run, primary metric on the test split against the oracle, the
  simulator's truth used as a model) and the leaderboard of every candidate;
- a leaderboard chart: cross-validation mean and standard deviation, test score, oracle;
- the evaluation of the held-out test split, from `ml.evaluation_predictions`:
  binary: ROC and precision-recall curves of every candidate, the champion's confusion matrix at
  its threshold, its calibration (with the best other candidate) and its probabilities by class;
  multiclass: one-vs-rest ROC curves, confusion matrix, calibration of the predicted class's
  confidence and per-class precision, recall and F1; regression: predicted against actual,
  residuals against fitted values and the distribution of residuals;
- SHAP explanations of the champion: global importance (`ml.feature_importance`), a beeswarm of
  the top features and dependence plots of the top three, drawn from the SHAP values `ml.train`
  stored for a sample of the rows it explained (`ml.shap_sample`; at most `--shap-rows` of
  them, a seeded subsample);
- fairness by group of each sensitive attribute (`ml.fairness_metrics`), drawn against the
  default limits of the promotion's fairness gate (`ml.fairness.gate`), and the gaps between the
  groups, each attribute said gated or reported only;
- the deployments of the task (`ml.deployments`, newest first, the current one marked) and its
  promotion decisions (`ml.promotion_decisions`: evidence, gates, verdict). When the latest run's
  champion is not the deployed model, the summary says so at the top.

The latest run of a task is the run of its most recent champion row in `ml.model_runs`. A part
that cannot be drawn (a run trained before `ml.evaluation_predictions` or `ml.shap_sample` existed,
or with `--explain-rows 0`; a warehouse without `ml.deployments`) is skipped with a note on the
page.

Exit codes: 0 written; 2 a user error (no warehouse, locked, nothing trained, unknown task, output
not writable), printed as one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from ml.core.cli import run
from ml.reports.model_data import DEFAULT_SEED, DEFAULT_SHAP_ROWS
from ml.reports.model_page import DEFAULT_OUTPUT, write_model_reports
from scripts._report_options import add_drawing_options, add_limit, report_parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write one page per task, print one line per page."""
    prog = "python -m scripts.report_models"
    parser = report_parser(prog, __doc__, DEFAULT_OUTPUT, "<task>.html")
    parser.add_argument(
        "--task",
        action="append",
        metavar="TASK",
        help="a task to report (repeatable; default: every task with a trained champion)",
    )
    what = "rows of the stored SHAP sample drawn in the beeswarm and dependence plots"
    add_limit(parser, "--shap-rows", DEFAULT_SHAP_ROWS, what, zero="none")
    add_drawing_options(
        parser, DEFAULT_SEED, "the SHAP subsample and the jitter", "DIR/figures/<task>/"
    )
    args = parser.parse_args(argv)
    pages = write_model_reports(
        args.output, args.task, embed=not args.png_files, shap_rows=args.shap_rows, seed=args.seed
    )
    for page, n_plots in pages:
        print(f"wrote {page} ({n_plots} plots)")
    return 0


if __name__ == "__main__":
    run(main, "scripts.report_models")
