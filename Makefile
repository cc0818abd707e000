# Quick start: `make run` segments samples/ into output/; `make test` runs lint and the test suite.
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch; a bare range would pull a multi-GB CUDA build. Override on other boxes,
# e.g. `make test TORCH_SPEC='torch==2.9.1'`.
TORCH_SPEC ?= torch==2.13.0
# Debian tools the tests use, as COMMAND or COMMAND:PACKAGE when the package is named otherwise.
SYSTEM_TOOLS ?= ffmpeg sox espeak-ng chromium chromedriver:chromium-driver
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint system-tools clean

run: $(STAMP)
	$(BIN)/segmenter run samples -o output --settle-seconds 0

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Debian packages the tests need (ffmpeg for compressed formats, sox and espeak-ng for samples,
# headless chromium and its driver for the web page and report tests).
system-tools:
	@missing=""; for t in $(SYSTEM_TOOLS); do \
		command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | system-tools
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) output

# Opt-in, not part of `make test`: the package on arm64 under qemu-user (an arm64 Python from
# Debian's packages, PyPI's aarch64 wheels), FP32 parity, INT8 agreement on both runtimes and a
# two-worker batch. About 10-15 minutes; downloads and the arm64 venv are kept in .arm64/.
.PHONY: test-arm64
test-arm64:
	bash scripts/arm64/run.sh
