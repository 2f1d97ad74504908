# Two commands: `make run` builds the whole warehouse, `make test` runs the test suite.
# Both create .venv and install the locked dependencies first; a second run skips the install
# (the stamp file is keyed on the hash of the lock files).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# SETUP_VERSION is part of the stamp: bump it when the install recipe changes so old venvs rebuild.
SETUP_VERSION := 2
LOCK_HASH := $(shell (echo $(SETUP_VERSION); cat requirements.lock requirements-bootstrap.txt) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)

# ENGINE picks the warehouse engine (WAREHOUSE_ENGINE for Python and profiles.yml): duckdb, the
# embedded default, or spark (local[2], a Parquet lakehouse under warehouse/spark; needs Java 17+).
ENGINE ?= $(or $(WAREHOUSE_ENGINE),duckdb)
export WAREHOUSE_ENGINE := $(ENGINE)
ifeq ($(ENGINE),spark)
export WAREHOUSE_PATH ?= $(CURDIR)/warehouse/spark
else
export WAREHOUSE_PATH ?= $(CURDIR)/warehouse/warehouse.duckdb
endif
export DBT_PROFILES_DIR := $(CURDIR)
export DBT_PROJECT_DIR := $(CURDIR)/dbt_project
# Keep dbt from phoning home and TensorFlow from chattering.
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export TF_CPP_MIN_LOG_LEVEL := 3

CUSTOMERS ?= 50000
SEED ?= 42
TRAIN_ARGS ?=
# make train: whether a task's new champion replaces its deployed model (ml.train --promote):
# auto (on a significant gain with the quality and fairness gates passed), never, or force.
# make run passes force: it lands a new world, on which the old deployment was never trained.
PROMOTE ?= auto
BENCH_ARGS ?=
# make batch: the months one batch covers and the drift it carries (scripts.simulate --drift,
# e.g. DRIFT=income=1.5 or DRIFT=concept=credit_score; docs/data_contract.md lists them all).
MONTHS ?= 1
DRIFT ?=
# extra arguments of the dbt build of staging and marts (make run passes --full-refresh: it lands
# a new world, so the incremental tables start again from batch 0)
DBT_BUILD_ARGS ?=
REPORTS_DIR ?= reports
DBT := $(VENV)/bin/dbt
# dbt's named selections live in dbt_project/selectors.yml: production_build is before_training
# (everything but the nodes built from the tables ml.train / ml.segment write) without dbt's unit
# tests, as dbt Labs recommends (their inputs are fixed fixtures: they test the SQL, not the data,
# and cost ~2 s a build; `make dbt-unit` and `make test` run them); production_scores is
# after_training (only those nodes, built after training) without them.

.PHONY: help setup java chromium serve run batch test test-fast simulate dbt-build dbt-unit gate train score monitor segment dbt-scores eda report bench docs lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock requirements-bootstrap.txt
	@echo "==> creating $(VENV) with $(PYTHON) and installing the locked dependencies"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required, found " + sys.version.split()[0])'
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-bootstrap.txt
	@# --compile-bytecode: uv does not write .pyc by default, and where PYTHONDONTWRITEBYTECODE is
	@# set nothing ever would, so every dbt/python process would recompile its imports (~2 s each).
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(PY) --require-hashes requirements.lock
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the locked dependencies (skipped when up to date)

# Spark runs on the JVM: one clear line when Java 17+ is missing, not a stack trace from py4j.
JAVA_MAJOR = $(shell java -version 2>&1 | sed -nE 's/.*version "(1\.)?([0-9]+).*/\2/p' | head -1)
# what a step on the warehouse needs: the venv, and Java when the engine is Spark
ENGINE_READY = $(STAMP) $(if $(filter spark,$(ENGINE)),java)

java:  ## check that Java 17+ is installed (Spark needs it: make ENGINE=spark ..., make test)
	@[ -n "$(JAVA_MAJOR)" ] && [ "$(JAVA_MAJOR)" -ge 17 ] || { echo "make: Spark needs Java 17 or newer$(if $(JAVA_MAJOR), (found $(JAVA_MAJOR)),, and java is not on PATH): install it with 'apt-get install -y openjdk-17-jre-headless' (or set JAVA_HOME)" >&2; exit 1; }

# The browser tests drive Debian's Chromium with Playwright's Python client (locked in
# requirements.lock; `playwright install` cannot download browsers here). As root, make installs
# the package when it is missing; otherwise one line says how.
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser)

chromium:  ## install Debian's chromium for the browser tests when missing (as root), else say how
	@if [ -z "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "==> installing Debian's chromium for the browser tests (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "make: the browser tests need Chromium: install it with 'sudo apt-get install -y chromium'" >&2; exit 1; \
		fi; \
	fi

simulate: $(ENGINE_READY)  ## land raw.* and sim.* (CUSTOMERS=50000 SEED=42)
	$(PY) -m scripts.simulate --customers $(CUSTOMERS) --seed $(SEED)

dbt-build: $(ENGINE_READY)  ## dbt build: staging, marts, data tests, contracts (not the marts over predictions)
	$(DBT) build --project-dir $(DBT_PROJECT_DIR) --selector production_build $(DBT_BUILD_ARGS)

dbt-unit: $(ENGINE_READY)  ## dbt's unit tests only, on a warehouse `make run` built (they read their inputs' column types)
	$(DBT) test --project-dir $(DBT_PROJECT_DIR) --select test_type:unit

train: $(ENGINE_READY)  ## python -m ml.train: tune, cross-validate, ensemble, persist; deploy a challenger on evidence (PROMOTE=auto|never|force)
	$(PY) -m ml.train --seed $(SEED) --promote $(PROMOTE) $(TRAIN_ARGS)

score: $(ENGINE_READY)  ## python -m ml.score: score only the new and changed rows with each task's deployed model
	$(PY) -m ml.score

# HOST/PORT of `make serve`; binding elsewhere than loopback needs SERVE_API_KEY.
HOST ?= 127.0.0.1
PORT ?= 8000

serve: $(ENGINE_READY)  ## python -m ml.serve: the prediction API and the loan officer's page on http://127.0.0.1:8000/ (HOST=, PORT=)
	$(PY) -m ml.serve --host $(HOST) --port $(PORT)

monitor: $(ENGINE_READY)  ## python -m ml.monitor: PSI and realised metric of the latest batch; exit 1 when action is needed
	$(PY) -m ml.monitor

segment: $(ENGINE_READY)  ## python -m ml.segment: customer segments (k-means or a Gaussian mixture, method and k by stability)
	$(PY) -m ml.segment --seed $(SEED)

dbt-scores: $(ENGINE_READY)  ## dbt build of the marts over the ml.* predictions (after training)
	$(DBT) build --project-dir $(DBT_PROJECT_DIR) --selector production_scores

eda: $(ENGINE_READY)  ## EDA report: reports/eda/index.html (REPORTS_DIR=reports)
	$(PY) -m scripts.eda --output $(REPORTS_DIR)/eda

report: $(ENGINE_READY)  ## every report + reports/index.html: EDA, one page per model, segments
	$(PY) -m scripts.report --output $(REPORTS_DIR)

gate: $(ENGINE_READY)  ## Great Expectations quality gate over raw and feature tables
	$(PY) -m scripts.check_quality

# The gate runs twice: on raw.* before dbt publishes anything built from it, and on the feature
# marts after dbt build (dbt publishes each model before its tests run, so a bad feature table
# must be caught before any model trains on it).
run: $(ENGINE_READY)  ## simulate -> raw gate -> dbt build -> feature gate -> train -> segment -> dbt marts over ml.* -> reports
	$(MAKE) --no-print-directory simulate
	$(PY) -m scripts.check_quality --suite raw.customers raw.orders raw.loans
	$(MAKE) --no-print-directory dbt-build DBT_BUILD_ARGS=--full-refresh
	$(PY) -m scripts.check_quality --suite marts.customer_features marts.loan_features
	$(MAKE) --no-print-directory train PROMOTE=force
	$(MAKE) --no-print-directory segment
	$(MAKE) --no-print-directory dbt-scores
	$(MAKE) --no-print-directory report
	@echo "==> done: warehouse at $(WAREHOUSE_PATH); reports: $(REPORTS_DIR)/index.html"

# Day two, after `make run`: the next period's batch through the same gates, built and scored
# incrementally, then the drift and realised-performance marts and the monitor. The reports are
# written whatever the monitor says; when the monitor exits 1 (a feature, the score or the
# realised metric needs action -> retrain) make fails with its own exit code 2, so a scheduler
# can act on it.
batch: $(ENGINE_READY)  ## day two: simulate --append (MONTHS=1 DRIFT=...) -> raw gate -> incremental dbt -> feature gate -> ml.score -> marts -> reports -> ml.monitor
	$(PY) -m scripts.simulate --append --months $(MONTHS) --seed $(SEED) $(if $(DRIFT),--drift $(DRIFT))
	$(PY) -m scripts.check_quality --suite raw.customers raw.orders raw.loans
	$(MAKE) --no-print-directory dbt-build
	$(PY) -m scripts.check_quality --suite marts.customer_features marts.loan_features
	$(MAKE) --no-print-directory score
	$(MAKE) --no-print-directory dbt-scores
	$(MAKE) --no-print-directory report
	$(PY) -m ml.monitor

test: $(STAMP) java chromium  ## run the whole test suite (what CI runs)
	$(PY) -m pytest -n 3 --dist loadfile

test-fast: $(STAMP) java  ## the suite without the whole-flow tests marked slow (under 2 minutes)
	$(PY) -m pytest -n 3 --dist loadfile -m "not slow"

bench: $(STAMP) java  ## time simulate, dbt, train, scoring at 100k/1M/10M orders (and on Spark at 100k/1M): reports/bench.md (BENCH_ARGS=...)
	$(PY) -m scripts.bench --output $(REPORTS_DIR) $(BENCH_ARGS)

docs: $(ENGINE_READY)  ## dbt docs generate (open dbt_project/target/index.html)
	$(DBT) docs generate --project-dir $(DBT_PROJECT_DIR)

lint: $(STAMP)  ## ruff lint and format check, and the import contracts of docs/architecture.md
	$(VENV)/bin/ruff check ml scripts tests
	$(VENV)/bin/ruff format --check ml scripts tests
	$(VENV)/bin/lint-imports --no-cache

clean:  ## remove the warehouse, dbt target and reports (keeps .venv)
	rm -rf warehouse dbt_project/target dbt_project/logs reports artifacts
