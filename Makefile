# ftbook: the two commands are `make book` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ftbook-stamp
# Data: ../shared/data when it holds the dataset (CI, offline), else ftbook finds or downloads it.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/hymenoptera_data),)
export FTBOOK_DATA ?= $(SHARED_DATA)
endif
export HF_HUB_OFFLINE ?= 1
# Chapters save their key numbers here; the index page (built last) summarises them.
export FTBOOK_RESULTS ?= $(abspath _build/results)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
JUNIT := $(abspath _build/junit)

.PHONY: help install export check-export test test-py test-nbs book clean
help:
	@echo "make book  - install, export the package, execute every chapter, build _build/html/index.html"
	@echo "make test  - install, check notebooks and package agree, run pytest tests/ and nbval on nbs/ (smoke)"

# Idempotent install: redone only when the pins or the packaging change (stamp file).
$(STAMP): constraints.txt settings.ini setup.py pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@
install: $(STAMP)

export: $(STAMP)
	$(BIN)/nbdev_export

# The package must be exactly what the notebooks export.
check-export: $(STAMP)
	@tmp=$$(mktemp -d); cp -r ftbook $$tmp/; $(BIN)/nbdev_export; \
	if ! diff -r -x __pycache__ $$tmp/ftbook ftbook; then \
	  echo "ERROR: ftbook/ did not match nbs/: nbdev_export has now updated it, review and commit it."; rm -rf $$tmp; exit 1; fi; \
	rm -rf $$tmp; echo "check-export: ftbook/ matches the notebooks"

test-py: $(STAMP)
	@mkdir -p $(JUNIT)
	$(BIN)/python -m pytest tests/ -q -rs -n 2 --durations=15 --junitxml=$(JUNIT)/tests.xml

# Every notebook executed as a test, on the smoke profile (every cell runs, on a few images): the numbers are
# `make book`'s job. FTBOOK_TEST_PROFILE=quick runs them at the book's size.
test-nbs: $(STAMP)
	@mkdir -p $(JUNIT)
	FTBOOK_PROFILE=$${FTBOOK_TEST_PROFILE:-smoke} FTBOOK_RESULTS=$(abspath _build/test-results) \
	  $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=1800 -p no:cacheprovider nbs/ -q --junitxml=$(JUNIT)/nbs.xml

test: check-export test-py test-nbs
	@$(BIN)/python .ci/summary.py $(JUNIT)/tests.xml $(JUNIT)/nbs.xml

book: $(STAMP) export
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_book.py
	@echo "Book built: open file://$(abspath _build/html/index.html)"

clean:
	rm -rf _build
