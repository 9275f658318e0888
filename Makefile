# The two commands a newcomer needs (see README.md).
.PHONY: run test lint setup

setup:
	bash scripts/bootstrap.sh

run: setup
	.venv/bin/search-party serve

test: setup
	bash scripts/system_packages.sh
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
