# Quick start: `make run` segments samples/ into output/; `make test` runs lint, a strict build of the
# docs site and the test suite; `make test-fast`, the inner loop, runs lint and the tests not marked
# slow (pyproject.toml's markers); `make docs` builds the site, `make docs-serve` serves it.
# One venv, two stamps: `make run` installs only what the batch needs (the package: onnxruntime,
# no torch, no Debian package, as samples/ is read by libsndfile); `make test` adds the dev extra
# (torch among it) and the Debian tools the tests use. Either after the other installs no more.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch, for the tests: the pin, and the index that has its +cpu wheel (on the
# public index alone, torch==2.13.0 is the multi-GB CUDA build). Empty TORCH_INDEX where that
# index is unreachable and a local wheel cache holds the CPU build; other boxes may override,
# e.g. `make test TORCH_SPEC='torch==2.9.1'`.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# Debian tools the tests use, as COMMAND or COMMAND:PACKAGE when the package is named otherwise.
TEST_TOOLS ?= ffmpeg sox espeak-ng chromium chromedriver:chromium-driver systemd-analyze:systemd
# Where `make docs` and `make test` build the docs site (git-ignored); without material's banner
# about its successor on every build.
SITE ?= site
export NO_MKDOCS_2_WARNING := 1
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q --disable-pip-version-check
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test test-fast lint test-tools clean docs docs-serve docs-cli

run: $(RUN_STAMP)
	$(BIN)/segmenter run samples -o output --settle-seconds 0

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mkdocs build --strict --quiet --site-dir $(SITE)
	$(BIN)/pytest -q

# the inner loop: lint and every test but the slow ones (over ~10 s each: `pytest -m slow` lists
# them); `make test` still runs them all
test-fast: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -m "not slow"

# The docs site (mkdocs.yml, docs/): built with --strict, so a broken link, a missing anchor or a
# page left out of the nav fails the build (and `make test`). docs-serve: http://127.0.0.1:8000/.
# docs-cli rewrites docs/reference/cli.md from the parsers (tests/test_docs.py fails when stale).
docs: $(TEST_STAMP)
	$(BIN)/mkdocs build --strict --site-dir $(SITE)

docs-serve: $(TEST_STAMP)
	$(BIN)/mkdocs serve --strict

docs-cli: $(TEST_STAMP)
	$(BIN)/python docs/gen_cli.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Debian packages the tests need (ffmpeg for compressed formats, sox and espeak-ng for samples,
# headless chromium and its driver for the web page and report tests, systemd-analyze to verify
# jobs/'s units), without the desktop services apt would recommend with chromium (printer tools,
# power and notification daemons).
test-tools:
	@missing=""; for t in $(TEST_TOOLS); do \
		command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

# bytecode compiled as a wheel install would (an editable install under PYTHONDONTWRITEBYTECODE
# compiles every module again in every process: coordinator, fork server, workers)
$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	$(BIN)/python -m compileall -q segmenter
	touch $@

# torch alone from its index (its dependencies come with the dev extra from the usual indexes, so
# an unreachable TORCH_INDEX costs one lookup's retries, not one per dependency)
$(TEST_STAMP): $(RUN_STAMP) | test-tools
	$(PIP) --no-deps $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PIP) -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) output $(SITE) dist

# Opt-in, not part of `make test`: the package on arm64 under qemu-user (an arm64 Python from
# Debian's packages, PyPI's aarch64 wheels), FP32 parity, INT8 agreement on both runtimes and a
# two-worker batch. About 10-15 minutes; downloads and the arm64 venv are kept in .arm64/.
.PHONY: test-arm64
test-arm64:
	bash scripts/arm64/run.sh
