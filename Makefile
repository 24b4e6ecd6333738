# The two commands a newcomer runs are `make run` and `make test`; both start with `make setup`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements/dev.txt | sha256sum | cut -c1-12)
MODEL  := build/default-model
PORT   ?= 8080

.PHONY: setup sdk run test lint model fastparse clean

setup: $(STAMP)

$(STAMP): requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# The SageMaker Python SDK and a notebook runner, for examples/ and tests/examples: a venv of its own,
# never the shared .venv nor the image.
SDK_VENV  := .venv-sdk
SDK_STAMP := $(SDK_VENV)/.installed-$(shell cat requirements/sdk.txt | sha256sum | cut -c1-12)

sdk: $(SDK_STAMP)

$(SDK_STAMP): requirements/sdk.txt
	@test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/sdk.txt
	@rm -f $(SDK_VENV)/.installed-*
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
