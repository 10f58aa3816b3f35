# The project's commands. `make test` is the README's test command; CI runs `make lint` then it.
PYTHON ?= python3
SANDBOX ?= demo

.PHONY: install fetch config-model lint test check demo bench clean-sandboxes

install:
	$(PYTHON) -m pip install -e '.[dev]'

fetch:
	$(PYTHON) -m bot sandbox fetch --kafka-version 4.2.2
	$(PYTHON) -m bot sandbox fetch --kafka-version 4.3.1

# Kafka's broker config model (runbooks/config_model/kafka-<version>.json), read from the fetched jars.
config-model: fetch
	$(PYTHON) -m bot.configmodel --kafka-version 4.2.2 --kafka-version 4.3.1

lint:
	$(PYTHON) -m ruff check bot handlers runbooks tests
	$(PYTHON) -m mypy bot handlers runbooks
	lint-imports

test:
	$(PYTHON) -m pytest -q

check: lint test

demo:
	$(PYTHON) -m bot demo --name $(SANDBOX)

bench:
	$(PYTHON) -m tests.bench

clean-sandboxes:
	$(PYTHON) -m bot sandbox down --all
