# Two commands on a fresh machine:  make run  (train the sample model if none, serve it on :8080)
#                                   make test (lint + the whole test suite; CI runs this)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCAL := local

.PHONY: run test lint bench clean

$(VENV)/.installed: requirements-build.txt requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-build.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -r requirements.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	SM_MODEL_DIR=$(LOCAL)/model $(PY) -m container.sample

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/serving.py

clean:
	rm -rf $(LOCAL)
