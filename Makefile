# Two commands on a fresh machine:  make run  (train the sample model if none, serve it on :8080)
#                                   make test (lint + the whole test suite; CI runs this)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCAL := local
SAMPLE := data/sample/sentence_polarity.txt

.PHONY: run test lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "setuptools<70" wheel numpy==1.26.4
	$(PY) -m pip install -q --no-build-isolation chainer==7.8.1
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

$(LOCAL)/channels/train: $(SAMPLE) | $(VENV)/.installed
	$(PY) -m model.prepare $(SAMPLE) --out $(LOCAL)/channels

$(LOCAL)/model/manifest.json: | $(LOCAL)/channels/train
	$(PY) train --train $(LOCAL)/channels/train --validation $(LOCAL)/channels/validation \
		--test $(LOCAL)/channels/test --model-dir $(LOCAL)/model --output-dir $(LOCAL)/output

run: $(LOCAL)/model/manifest.json
	SM_MODEL_DIR=$(LOCAL)/model $(PY) serve

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/serving.py

clean:
	rm -rf $(LOCAL)
