# The two commands a newcomer needs (see README.md).
.PHONY: run test setup

setup:
	bash scripts/bootstrap.sh

run: setup
	.venv/bin/search-party serve

test: setup
	bash scripts/browser.sh
	.venv/bin/python -m pytest
