# Two commands on a fresh machine: `make demo` and `make test`. `make help` lists the rest.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DATA ?= personalization_core/order_history/data/online_retail_sample.csv.gz
PYTEST_ARGS ?=
WHEEL_REF ?=

.DEFAULT_GOAL := help
CHROMIUM ?= /usr/bin/chromium
.PHONY: help venv demo demo-setup serve test lint format migrations-check bench clean wheel-check chromium screenshots

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=python3"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the project with its pinned dependencies

demo: venv  ## set up the demo shop on SQLite with real data, then serve it with a Celery worker and beat
	$(BIN)/python manage.py demo --data $(DEMO_DATA)

demo-setup: venv  ## only prepare the demo (migrate, import, pipelines, admin login), do not serve
	$(BIN)/python manage.py demo --data $(DEMO_DATA) --no-serve

test: venv chromium lint migrations-check  ## lint, check migrations and run the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

# The browser tests (tests/browser, marker `browser`) drive Debian's chromium; Playwright's own
# browser download needs the internet. Without root or sudo this only says what to do: the tests
# then skip (fail under CI=true); `make test PYTEST_ARGS='-m "not browser"'` leaves them out.
chromium:  ## install Debian's chromium for the browser tests if /usr/bin/chromium is missing (apt, as root or sudo)
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=sudo; \
	else echo "$(CHROMIUM) is missing and apt needs root: run 'sudo apt-get install chromium' (the browser tests skip without it, and fail under CI=true)"; exit 0; fi; \
	echo "installing chromium for the browser tests (apt-get install chromium)"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y -q --no-install-recommends chromium \
	  || { $$sudo apt-get update -q && $$sudo apt-get install -y -q --no-install-recommends chromium; }

screenshots: venv chromium  ## take the README's pictures (docs/*.png) from a demo shop in var/screenshots (minutes: it trains)
	$(BIN)/python scripts/screenshots.py --data $(DEMO_DATA)

lint:  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check:  ## fail if a model change has no migration
	$(BIN)/python manage.py makemigrations --check --dry-run

wheel-check:  ## build the wheel from a fresh clone (WHEEL_REF=--worktree: the working tree), install it without torch in a fresh venv, check the README's project: at most 10 settings lines and 1 url line, a product page with a block (needs the package registry)
	scripts/check_wheel.sh $(WHEEL_REF)

bench:  ## list the benchmark scripts (see benchmarks/README.md)
	@ls benchmarks/*.py | grep -v __init__

clean:  ## remove the virtualenv and the demo's database, cache and broker files
	rm -rf $(VENV) var
