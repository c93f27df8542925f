# streamlab — the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: demo test bench lab lint typecheck datasets system-deps venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[notebook,bench,dev]"
	@touch $(STAMP)

## venv: create .venv and install streamlab with every extra
venv: $(STAMP)

## system-deps: Debian packages the tests use (GStreamer RTSP server, Chromium, ffmpeg)
system-deps:
	@scripts/system-deps.sh

## demo: serve the analysed synthetic demo stream and print the viewer URL
demo: venv
	$(VENV)/bin/streamlab serve --source "synthetic://?size=640x480&fps=30" --name demo \
		--analyze motion --host $(HOST) --port $(PORT)

## test: install everything, then run the whole suite (notebooks included)
test: venv system-deps
	$(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider --durations=40

## bench: run benchmarks/default.toml (<= 10 min) -> reports/default.json + report.md/.html
bench: venv system-deps
	$(VENV)/bin/streamlab bench --scenarios benchmarks/default.toml --out reports

## bench-codecs: the codecs at equal quality (BD-rate against VP8, ~2 min) -> reports/codecs/
.PHONY: bench-codecs
bench-codecs: venv
	$(VENV)/bin/streamlab bench codecs --out reports/codecs

## bench-full: benchmarks/full.toml (3 repeats, Chromium, 30-min soak; ~2 h) + micro-benchmarks
.PHONY: bench-full
bench-full: venv system-deps
	@mkdir -p reports/full/micro
	STREAMLAB_BENCH_FULL=1 $(PY) -m pytest benchmarks --benchmark-enable --benchmark-only \
		--benchmark-json=reports/full/micro/bench.json -p no:cacheprovider
	$(VENV)/bin/streamlab report reports/full/micro/bench.json --out reports/full/micro
	$(VENV)/bin/streamlab bench --scenarios benchmarks/full.toml --out reports/full

## lab: JupyterLab on 127.0.0.1 (with a token; --allow-root when run as root, e.g. a container)
lab: venv
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.root_dir=notebooks \
		$(if $(filter 0,$(shell id -u)),--allow-root) \
		--IdentityProvider.token=$${JUPYTER_TOKEN:-$$(openssl rand -hex 16 2>/dev/null || echo streamlab-$$RANDOM$$RANDOM)}

## datasets: write the synthetic clips with ground truth listed in datasets/manifest.json
datasets: venv
	$(VENV)/bin/streamlab datasets build

lint: venv
	$(VENV)/bin/ruff check streamlab tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) reports .pytest_cache
