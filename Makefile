# flask-authgate: every check runs from here, locally and in CI (.ci/run calls `make test docs`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-lowest lint types pytest docs dist bench bench-quick throughput clean

# The published extras, then the development tools: PEP 735 dependency groups (pip >= 25.1).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25.1"
	$(BIN)/python -m pip install -q -e ".[crypto,redis,async]" --group dev
	touch $(STAMP)

## demo: install, seed the example database and run example_app on http://127.0.0.1:5000
demo: $(STAMP)
	$(BIN)/flask --app example_app seed
	@echo ""
	@echo "  Open http://127.0.0.1:5000/ and sign in with one of the logins above."
	@echo "  The API is under /api and /auth (see docs/example.md). Ctrl+C stops the server."
	@echo ""
	$(BIN)/flask --app example_app run --host 127.0.0.1 --port 5000

## test: lint, types and the whole suite with branch coverage
test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term

## test-lowest: the suite against the lowest versions pyproject.toml allows (the browser and
## gunicorn tests are left to `make test`), so the lower bounds stay true
LOWEST := flask==3.0.0 werkzeug==3.0.0 pyjwt==2.14.0 itsdangerous==2.1.2 blinker==1.6.2
test-lowest:
	$(PYTHON) -m venv .venv-lowest
	.venv-lowest/bin/python -m pip install -q --upgrade "pip>=25.1"
	.venv-lowest/bin/python -m pip install -q $(LOWEST) --group test
	.venv-lowest/bin/python -m pip install -q --no-deps -e .
	.venv-lowest/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/test_browser.py --ignore=tests/test_real_http.py \
		--ignore=tests/test_docs_site.py --ignore=tests/test_packaging.py \
		--ignore=tests/test_openapi.py --ignore=tests/test_docs_examples.py

## docs: build the documentation; any warning fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

## dist: build the sdist and the wheel into dist/ and check both (metadata, README, wheel contents)
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl

## bench: flask-authgate against its peers (see docs/performance.md)
bench: $(STAMP)
	$(BIN)/python -m pip install -q --group bench
	$(BIN)/python bench/run.py
	$(BIN)/python bench/memory.py

bench-quick: $(STAMP)
	$(BIN)/python -m pip install -q --group bench
	$(BIN)/python bench/run.py --quick

throughput: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .venv-lowest site dist .pytest_cache .mypy_cache .ruff_cache .coverage test-artifacts
