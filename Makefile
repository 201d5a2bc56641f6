# `make run`: venv + install + open the terminal on the demo market.
# `make test`: venv + install with the dev extra + lint + the whole test suite (every core).
# The first install takes a minute or two: each step says what it does and pip lists
# every package as it collects and installs it (no silent wait).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAMP_DEV := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip --disable-pip-version-check
say = @printf '\n==> %s\n' "$(1)"

.PHONY: run test lint format daemon bench clean

$(BIN)/python:
	$(call say,creating the virtual environment $(VENV) with $(PYTHON))
	$(PYTHON) -m venv $(VENV)
	$(call say,upgrading pip in $(VENV))
	$(PIP) install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(call say,installing qgtm and its dependencies into $(VENV) (first time: a minute or two))
	$(PIP) install -e .
	@touch $@
	$(call say,installed: $(BIN)/qgtm)

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(call say,installing qgtm with the dev extra into $(VENV) (first time: a minute or two))
	$(PIP) install -e '.[dev]'
	$(call say,installing the test-ref extra (optional reference implementations))
	$(PIP) install --quiet -e '.[dev,test-ref]' || echo "test-ref extra not installed: reference tests will skip"
	@touch $@ $(STAMP)

run: $(STAMP)
	$(BIN)/qgtm $(ARGS)

daemon: $(STAMP)
	$(BIN)/qgtm --daemon $(ARGS)

lint: $(STAMP_DEV)
	$(call say,lint: ruff check and ruff format --check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(call say,tests: pytest on every core)
	$(BIN)/pytest -n auto

format: $(STAMP_DEV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
