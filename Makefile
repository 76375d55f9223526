# xalign: every target sets up what it needs on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
STORE ?= store
HOST ?= 127.0.0.1
PORT ?= 8000
BIN := $(VENV)/bin
# The base model is converted once into this cache; `make model` is idempotent on top of it.
CACHE ?= .cache/xalign
# Tatoeba accuracy of every variant goes into the manifest when the shared data is beside the checkout.
TATOEBA ?= ../shared/data/tatoeba
# BUCC-2018 de-en F1 too; the gate of the aligned default compares base and aligned on both.
BUCC ?= ../shared/data/bucc2018
# The committed delta of the aligned default (deltas/README.md); without it only the base is published.
DELTA ?= deltas/xalign-e5-small
# The ONNX variants published; add fp16 for a GPU deployment (the service's variant=auto serves it on CUDA).
VARIANTS ?= fp32 int8
# The SENSIA-adapted Backpack, committed as a small checkpoint; published beside the dual encoder.
BACKPACK ?= models/xalign-backpack-sensia
STAMP := $(VENV)/.installed
# Every package at the version the tests passed with (deploy/constraints.txt, which the images install too).
CONSTRAINTS := deploy/constraints.txt
TORCH_PIN := $(shell grep -m1 '^torch==' $(CONSTRAINTS))
# Where torch comes from. Empty: the indexes pip is configured with (here the local CPU wheel). Elsewhere, e.g.
# `make test TORCH_INDEX=https://download.pytorch.org/whl/cpu`: the plain PyPI wheel is a multi-GB CUDA build.
TORCH_INDEX ?=

.PHONY: test lint typecheck contracts unit prometheus browser model serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade --constraint $(CONSTRAINTS) pip

# torch first, from TORCH_INDEX when given: letting pip choose would pull a multi-GB CUDA build. Then the
# package with the CPU builds of onnxruntime and faiss, training, export and the dev tools, all constrained.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH_PIN)'
	$(BIN)/pip install --quiet --constraint $(CONSTRAINTS) -e '.[cpu,train,export,distributed,client,tracing,dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy resolves modules by path: build/typecheck/xalign links back to the checkout (pyproject.toml, [tool.mypy]).
typecheck: $(STAMP)
	@mkdir -p build/typecheck && ln -sfn ../.. build/typecheck/xalign
	$(BIN)/mypy

# The import contracts between the subpackages (pyproject.toml, [tool.importlinter]).
contracts: $(STAMP)
	$(BIN)/lint-imports --no-cache

unit: $(STAMP) prometheus browser
	$(BIN)/python -m pytest

# tests/e2e/test_prometheus.py scrapes the service with Debian's prometheus: installed here when missing and run as
# root (CI); elsewhere the test is skipped (and fails with CI=true). A policy-rc.d that refuses service starts
# keeps the package from starting its system daemon; one already there is left alone.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || { \
		echo "make: installing Debian's prometheus for tests/e2e/test_prometheus.py"; \
		policy=/usr/sbin/policy-rc.d; added=; log=$$(mktemp); \
		if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy && chmod +x $$policy && added=1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; } > $$log 2>&1; status=$$?; \
		[ -z "$$added" ] || rm -f $$policy; [ $$status = 0 ] || cat $$log; rm -f $$log; exit $$status; }

# tests/browser/ drive the web page in Debian's chromium through chromedriver: both installed here when either is
# missing and run as root (CI); elsewhere those tests are skipped (and fail with CI=true). The log shows on failure.
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
	! command -v apt-get >/dev/null 2>&1 || { \
		echo "make: installing Debian's chromium and chromium-driver for tests/browser"; log=$$(mktemp); \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; } > $$log 2>&1; \
		status=$$?; [ $$status = 0 ] || cat $$log; rm -f $$log; exit $$status; }

test: lint typecheck contracts unit

# The delta is applied only where the gate can measure it (Tatoeba and BUCC present): never promoted unmeasured.
GATED_DELTA := $(and $(wildcard $(DELTA)/delta.json),$(wildcard $(TATOEBA)),$(wildcard $(BUCC)))

model: $(STAMP)
	$(if $(and $(wildcard $(DELTA)/delta.json),$(if $(GATED_DELTA),,x)),@echo "make model: no $(TATOEBA) or $(BUCC): publishing the base only and not the delta in $(DELTA)")
	$(BIN)/xalign-export default --store $(STORE) --cache $(CACHE) --variants $(VARIANTS) $(if $(wildcard $(TATOEBA)),--tatoeba-dir $(TATOEBA)) \
		$(if $(wildcard $(BUCC)),--bucc-dir $(BUCC)) $(if $(GATED_DELTA),--delta $(DELTA))
	$(if $(wildcard $(BACKPACK)/backpack_config.json),$(BIN)/xalign-export backpack --model-dir $(BACKPACK) \
		--store $(STORE) --languages en de fr cs $(if $(wildcard $(BACKPACK)/evaluation.json),--evaluation $(BACKPACK)/evaluation.json))

serve: model
	$(BIN)/xalign-serve --store $(STORE) --host $(HOST) --port $(PORT)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
