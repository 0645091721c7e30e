# OpenVLE Proxmox service: developer commands. Everything runs through uv and the
# committed uv.lock; no Python is downloaded (UV_PYTHON_DOWNLOADS=never). Without uv on
# PATH, scripts/bootstrap-uv installs one into .tools/ (never into the system Python).
export UV_PYTHON_DOWNLOADS ?= never
export NO_MKDOCS_2_WARNING ?= 1
ifeq ($(origin UV),undefined)
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/venv/bin/uv)
endif
RUN := $(UV) run --frozen
LINTED := src tests benchmarks alembic docs/gen

.PHONY: install check lint format typecheck test bench demo tour docs docs-serve clean

install: ## create .venv from uv.lock (and uv itself into .tools/ if it is missing)
	@command -v $(UV) >/dev/null 2>&1 || sh scripts/bootstrap-uv >/dev/null
	$(UV) sync --frozen --group docs

check: install ## ruff lint + format check, mypy --strict on src/ and the docs generator
	$(RUN) ruff check $(LINTED)
	$(RUN) ruff format --check $(LINTED)
	$(RUN) mypy
	$(RUN) mypy --strict docs/gen

format: install ## apply ruff fixes and formatting
	$(RUN) ruff check --fix $(LINTED)
	$(RUN) ruff format $(LINTED)

test: install ## the whole suite, ~8 min on 2 cores: progress per file, the 15 slowest at the end (services it cannot find are skipped unless OPENVLE_TEST_REQUIRE_SERVICES=1)
	$(RUN) pytest --durations=15 $(PYTEST_ARGS)

bench: install ## every benchmark in benchmarks/; each ends with one JSON line of figures
	@set -e; for b in benchmarks/*.py; do \
	  case $$b in */_*) continue;; esac; \
	  echo "== $$b"; $(RUN) python $$b; done

demo: install ## the service on its embedded defaults with the simulator (DEMO_ARGS="--port 0" ...)
	$(RUN) openvle demo $(DEMO_ARGS)

tour: install ## the guided tour on the demo: one lab created, deployed, stopped, archived (~30 s), then it stops
	$(RUN) openvle demo --tour --port 0 $(TOUR_ARGS)

docs: install ## the documentation site in site/, offline, warnings are errors
	$(RUN) mkdocs build --strict

docs-serve: install ## the documentation site at http://127.0.0.1:8001, rebuilt on every change
	$(RUN) mkdocs serve --dev-addr 127.0.0.1:8001

clean:
	rm -rf .venv .tools .mypy_cache .ruff_cache .pytest_cache site
