# One verb per job; the README, CI and humans all use these.
UV ?= uv
export UV_LINK_MODE ?= copy

.PHONY: setup run api worker test test-unit test-integration lint bench clean

setup: ## install locked Python dependencies (all roles + dev tools) into .venv
	$(UV) sync --frozen --all-extras

run: setup ## run everything locally: Redis (if none answers), the API, all worker pools and, without Meta settings, the sandbox
	$(UV) run python -m loopera.dev_stack

api: setup
	$(UV) run loopera api

worker: setup
	$(UV) run loopera worker --pool all

lint: setup ## ruff, ruff format, mypy strict, the import contract
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports

test: setup lint ## lint + the whole pytest suite (unit + integration on real services)
	$(UV) run pytest

test-unit: setup
	$(UV) run pytest tests/unit

test-integration: setup
	$(UV) run pytest tests/integration

bench: ## benchmarks (not part of CI pass/fail); figures go in docs/performance.md
	$(UV) sync --frozen --all-extras --group bench
	$(UV) run --no-sync python -m bench.run_all

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache
