# The two commands: `make run` and `make test`. Everything else they need is installed here.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint format typecheck bench compare clean install

$(BIN)/uv:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(BIN)/uv pyproject.toml uv.lock
	$(BIN)/uv sync --frozen --python $(BIN)/python
	@touch $@

install: $(VENV)/.synced

# The service on an embedded default: a local archive of generated sample frames and the local
# filesystem store. Override any variable from the README's table on the command line.
run: install
	ARCHIVE_SOURCE=$${ARCHIVE_SOURCE:-samples} \
	THUMBNAIL_STORE=$${THUMBNAIL_STORE:-local} \
	TMP_DIR=$${TMP_DIR:-var/tmp} \
	LOG_FORMAT=$${LOG_FORMAT:-console} \
	$(BIN)/python -m thumbservice.entrypoints.devserver

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/service_benchmark.py
	$(BIN)/python benchmarks/color_alignment.py
	$(BIN)/python benchmarks/cluster_benchmark.py

# The fast renderer against fits2image: SSIM on the corpus and a contact sheet in
# benchmarks/results/ (the timings and memory need the whole benchmarks/renderer_benchmark.py).
compare: install
	$(BIN)/python benchmarks/renderer_benchmark.py --compare-only

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
