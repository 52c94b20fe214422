# The two commands: `make run` and `make test`. Everything else they need is installed here.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint format typecheck bench compare soak clean install image image-test

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
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/service_benchmark.py
	$(BIN)/python benchmarks/renderer_benchmark.py
	$(BIN)/python benchmarks/color_alignment.py
	$(BIN)/python benchmarks/cluster_benchmark.py
	$(BIN)/python benchmarks/frame_cache_benchmark.py
	$(BIN)/python benchmarks/iiif_benchmark.py

# The fast renderer against fits2image: SSIM on the corpus and a contact sheet in
# benchmarks/results/ (the timings and memory need the whole benchmarks/renderer_benchmark.py).
compare: install
	$(BIN)/python benchmarks/renderer_benchmark.py --compare-only

# Two minutes of mixed traffic, then the store stalled, killed and back empty, the archive
# stalled and a render worker killed, under load (about 4 minutes; not part of `make test`).
soak: install
	$(BIN)/python benchmarks/soak.py

# The container image (Dockerfile), with podman or else docker; CONTAINER_ENGINE=... picks one.
# PYTHON_IMAGE=... builds FROM another base (a mirror, a local build of python:3.11-slim-bookworm).
CONTAINER_ENGINE ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)
IMAGE ?= thumbservice:latest
PYTHON_IMAGE ?=
# podman builds OCI images unless told otherwise, and an OCI image has no HEALTHCHECK.
IMAGE_BUILD_OPTIONS = $(if $(findstring podman,$(notdir $(CONTAINER_ENGINE))),--format docker) \
	$(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE))

image:
	@test -n "$(CONTAINER_ENGINE)" || { echo "make image needs podman or docker"; exit 1; }
	$(CONTAINER_ENGINE) build $(strip $(IMAGE_BUILD_OPTIONS) --tag $(IMAGE)) .

# Start the image on the sample archive, fetch thumbnails, stop it with SIGTERM.
image-test: image
	$(PYTHON) scripts/image_test.py --engine $(CONTAINER_ENGINE) --image $(IMAGE)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
