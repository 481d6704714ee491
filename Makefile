# The two commands a newcomer needs (see README):
#   make run   - start CityOS on the embedded SQLite database with the demo city
#   make test  - install everything and run the whole test suite (SQLite and PostgreSQL)
# and, for contributors:
#   make check - lint (ruff) + types (mypy) + the whole test suite
.PHONY: run test check lint types bench

run:
	@scripts/setup.sh
	.venv/bin/cityos serve --demo $(ARGS)

test:
	@scripts/test.sh $(ARGS)

lint:
	@scripts/setup.sh
	.venv/bin/ruff check cityos tests bench scripts

types:
	@scripts/setup.sh
	.venv/bin/mypy

check: lint types test

bench:
	@scripts/setup.sh
	@scripts/services.sh
	.venv/bin/python -m bench $(ARGS)
