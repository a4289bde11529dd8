# Two commands on a fresh machine:  make run  (train the sample model if none, serve it on :8080)
#                                   make test (lint + the whole test suite; CI runs this)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCAL := local

.PHONY: run test lint bench audit clean

$(VENV)/.installed: requirements-build.txt requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-build.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -r requirements.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# local/opt-ml is an /opt/ml tree: the sample's channels and hyperparameters, the model, the output.
OPT_ML_ENV = SM_MODEL_DIR=$(LOCAL)/opt-ml/model SM_INPUT_DATA_DIR=$(LOCAL)/opt-ml/input/data \
	SM_INPUT_CONFIG_DIR=$(LOCAL)/opt-ml/input/config SM_OUTPUT_DIR=$(LOCAL)/opt-ml/output \
	SM_CHECKPOINT_DIR=$(LOCAL)/opt-ml/checkpoints

run: $(VENV)/.installed
	$(OPT_ML_ENV) $(PY) -m container.sample

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/serving.py

# Known vulnerabilities in the pinned closure (pip-audit asks PyPI's and OSV's databases, so this
# needs a network that reaches them; this project's build machines reach only package indexes).
audit: $(VENV)/.installed
	$(PY) -m pip install -q pip-audit
	$(PY) -m pip_audit --progress-spinner off --disable-pip --no-deps -r requirements.txt -r requirements-dev.txt

clean:
	rm -rf $(LOCAL)
