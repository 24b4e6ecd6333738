# The two commands a newcomer runs are `make run` and `make test`; both start with `make setup`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements/dev.txt | sha256sum | cut -c1-12)
MODEL  := build/default-model
PORT   ?= 8080

.PHONY: setup run test lint model fastparse clean

setup: $(STAMP)

$(STAMP): requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# The built-in default model: trained on deterministic synthetic RTB data, compiled, packaged.
$(MODEL)/manifest.json: | setup
	$(PY) -m model train --output build/default-model.tar.gz
	rm -rf $(MODEL) && mkdir -p $(MODEL) && tar -xzf build/default-model.tar.gz -C $(MODEL)

model: $(MODEL)/manifest.json

# The bulk request parser (serve/fastparse.c); without it each worker compiles it at start-up.
serve/_fastparse.so: serve/fastparse.c serve/fastparse.py | setup
	$(PY) -m serve.fastparse $@

fastparse: serve/_fastparse.so

run: setup model fastparse
	$(PY) -m container --model-dir $(MODEL) --port $(PORT)

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

clean:
	rm -rf build serve/_fastparse.so .pytest_cache .mypy_cache .ruff_cache .hypothesis
