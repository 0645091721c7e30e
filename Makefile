# OpenVLE Proxmox service: developer commands. Everything runs through uv and the
# committed uv.lock; no Python is downloaded (UV_PYTHON_DOWNLOADS=never).
export UV_PYTHON_DOWNLOADS ?= never
UV ?= uv
RUN := $(UV) run --frozen

.PHONY: install check lint format typecheck test bench demo clean

install: ## create .venv from uv.lock (installs uv with pip if it is missing)
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen

check: install ## ruff lint + format check, mypy --strict on src/
	$(RUN) ruff check src tests benchmarks alembic
	$(RUN) ruff format --check src tests benchmarks alembic
	$(RUN) mypy

format: install ## apply ruff fixes and formatting
	$(RUN) ruff check --fix src tests benchmarks alembic
	$(RUN) ruff format src tests benchmarks alembic

test: install ## the whole test suite (services it cannot find are skipped unless OPENVLE_TEST_REQUIRE_SERVICES=1)
	$(RUN) pytest $(PYTEST_ARGS)

bench: install ## every benchmark in benchmarks/; each ends with one JSON line of figures
	@set -e; for b in benchmarks/*.py; do \
	  case $$b in */_*) continue;; esac; \
	  echo "== $$b"; $(RUN) python $$b; done

demo: install ## the service on its embedded defaults with the simulator
	$(RUN) openvle demo

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
