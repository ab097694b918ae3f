# The two commands a user needs: `make reproduce` and `make test`. Both build .venv from scratch when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The data folder: ../shared/data where it exists (development machines, CI); elsewhere animepop_reproduce fetches the
# public sources into data/raw first (or, offline, says what to fetch and where to put it).
ifneq ($(wildcard ../shared/data),)
export ANIMEPOP_DATA_DIR ?= $(abspath ../shared/data)
endif
# OpenMP threads that spin while waiting made small torch ops 10x slower when notebooks run side by side on 2 cores
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install reproduce test sync-check nbtest pytest readme docs bench clean-runs

# torch first, alone: its pin takes the CPU wheel this disk carries instead of a multi-GB CUDA build.
$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(STAMP)

# DATA=folder reproduces on another data folder, e.g. the authors' release: make reproduce DATA=data/raw/authors-release
reproduce: install
	$(BIN)/animepop_reproduce --profile cpu $(if $(DATA),--data $(DATA))

# Notebooks are the source of truth: cleaning and exporting them must leave git as it is.
sync-check: install
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	@git status --porcelain -- nbs animepop README.md | grep . && { echo "nbdev_clean/nbdev_export changed the files above: commit the cleaned notebooks and the exported library"; exit 1; } || true

# index.ipynb links relative to nbs/, as nbdev and JupyterLab read it; ReadmeLinks rebases them to the root.
readme: install
	$(BIN)/jupyter nbconvert --execute --to markdown --TagRemovePreprocessor.remove_input_tags=remove_input \
		--ExecutePreprocessor.kernel_name=python3 --MarkdownExporter.preprocessors=animepop.docs.ReadmeLinks \
		nbs/index.ipynb --output-dir . --output README >/dev/null 2>&1
	@git status --porcelain -- README.md | grep . && { echo "README.md is out of date with nbs/index.ipynb: run make readme and commit it"; exit 1; } || true

# The corpus and split caches are built once first, so that notebooks tested in parallel only read them.
# The figures the notebooks write go to a scratch folder: only `make reproduce` writes figures/.
nbtest: install
	$(BIN)/python -c "from animepop.split import load_split; load_split()"
	ANIMEPOP_FIGURES_DIR=$$(mktemp -d) $(BIN)/nbdev_test --n_workers 2 --timing

# The docs site in _docs/: nbdev + Quarto where `quarto` is on PATH, else the static builder; then every link inside
# it is checked (nbs/09b_docs.ipynb). Results come from runs/ (the last `make reproduce`) and figures/.
docs: install
	$(BIN)/animepop_docs

pytest: install
	$(BIN)/python -m pytest -m "not slow and not gpu" tests

test: sync-check readme docs nbtest pytest

bench: install
	$(BIN)/python -m animepop.bench
