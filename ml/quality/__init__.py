"""The data-quality gate: validate warehouse tables against the Great Expectations suites.

`python -m scripts.check_quality [--suite NAME ...]` reads the table of each suite in
`expectations/` from the warehouse (opened read-only), validates it with Great Expectations on
pandas, and appends one row per expectation to `quality.check_results` (one transaction, after
the validation). A suite is a Great Expectations 1.x `ExpectationSuite` serialised as JSON whose
`meta.table` names the table; the suite parameter `as_of_date` is the dbt var of that name.

The modules, one job each: `suites` (loading and selecting suite files), `frames` (reading a
table through the warehouse interface), `validator` (Great Expectations), `gate` (running the
suites), `describe` (results as lines people read), `outcomes` (what a run found) and `results`
(storing a run; `require_passing_gate`, which training and segmentation call first).
"""
