# The project's commands. `make demo` and `make test` each do their own set-up on a fresh machine:
# the system packages (redis-server, openssl for the Redis TLS tests' certificates, a JDK, Maven:
# installed with apt-get where we may, named otherwise), a virtual environment in .venv with the
# project and its dev tools, and the Kafka jars.
# CI (.ci/run) runs `make lint test`.
SYSTEM_PYTHON ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
SANDBOX ?= demo
KAFKA_VERSIONS ?= 4.2.2 4.3.1
# The newest 3.8 and 3.9 Strimzi 0.45 runs (ZooKeeper-era clusters the bot still operates): no sandbox
# runs them, but the config model tests hold the committed 3.x models to Kafka's own classes.
MODEL_ONLY_VERSIONS ?= 3.8.1 3.9.0
# Unit tests: everything that needs no real broker. Each gets a short timeout (tests/conftest.py).
FAST := -m "not sandbox"

.PHONY: setup system-packages venv fetch config-model lint test test-fast check demo bench mutate mutate-score clean-sandboxes

setup: system-packages venv fetch

system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	$(SYSTEM_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "setup: installing the system packages the bot and its sandbox need:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
			echo "setup: installing with sudo:$$missing"; \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "setup: please install:$$missing (then run make again)" >&2; exit 1; \
		fi; \
	fi

# The stamp is remade when pyproject.toml changes, so a new dependency reaches the venv.
$(VENV)/.installed: pyproject.toml
	@test -x $(PYTHON) || { echo "setup: creating the virtual environment $(VENV)"; $(SYSTEM_PYTHON) -m venv $(VENV); }
	@echo "setup: installing kafka-chatops and its dev tools into $(VENV) (pip install -e '.[dev]')"
	@$(PYTHON) -m pip install -q --upgrade pip
	@$(PYTHON) -m pip install -q -e '.[dev]'
	@touch $@

venv: system-packages $(VENV)/.installed

fetch: venv
	@for v in $(KAFKA_VERSIONS) $(MODEL_ONLY_VERSIONS); do \
		echo "setup: Kafka $$v jars (from Maven Central, cached under ~/.cache/kafka-chatops)"; \
		$(PYTHON) -m bot sandbox fetch --kafka-version $$v >/dev/null || exit 1; \
	done
	@for v in $(KAFKA_VERSIONS); do \
		echo "setup: MirrorMaker 2 jars for Kafka $$v sandboxes (from Maven Central)"; \
		$(PYTHON) -m bot sandbox fetch --mirror-maker --kafka-version $$v >/dev/null || exit 1; \
	done

# Kafka's broker config model (runbooks/rules/config_model/kafka-<version>.json), read from the fetched jars.
CONFIG_MODEL_VERSIONS ?= $(MODEL_ONLY_VERSIONS) $(KAFKA_VERSIONS)
config-model: fetch
	$(PYTHON) -m bot.configmodel $(foreach v,$(CONFIG_MODEL_VERSIONS),--kafka-version $(v))

lint: venv
	$(PYTHON) -m ruff check bot handlers runbooks tests
	$(PYTHON) -m mypy bot handlers runbooks tests/fakes
	$(VENV)/bin/lint-imports

# Two pytest sessions side by side (.ci/test-in-two): the broker tests, and all the others.
test: setup
	.ci/test-in-two $(PYTHON)

# helm for the chart tests (tests/deploy), built from the Go module proxy at the release in
# .ci/helm/VERSION and cached in ~/.cache/kafka-chatops/helm, never in the repository (about 4 min
# the first time on 2 cores; needs Go).
.PHONY: helm deploy-manifests
helm:
	@.ci/build-helm >/dev/null

test: helm

# deploy/kubernetes/: the chart rendered with its default values, for those who apply plain manifests;
# tests/deploy/test_manifests.py fails when it and the chart differ.
deploy-manifests: helm
	@mkdir -p deploy/kubernetes
	{ cat deploy/kubernetes/HEADER; $$(.ci/build-helm) template kafka-chatops deploy/helm/kafka-chatops \
		--namespace kafka-chatops; } > deploy/kubernetes/kafka-chatops.yaml

# The edit-test loop: no real brokers, about a minute.
test-fast: venv
	$(PYTHON) -m pytest -q $(FAST)

check: lint test

# A kubectl for the sandbox, built from the Go module proxy (k8s.io/kubectl at the release in
# .ci/kubectl/VERSION; needs Go >= 1.26) and cached in ~/.cache/kafka-chatops/kubectl, never in the
# repository. `make test` builds it: the kubectl conformance test (tests/sandbox) runs it.
.PHONY: kubectl
kubectl:
	.ci/build-kubectl

test: kubectl

demo: setup
	$(PYTHON) -m bot demo --name $(SANDBOX)

bench: setup
	$(PYTHON) -m tests.bench

# Mutation testing of the safety rules (not CI: about 5 min on 2 busy cores). The modules and the
# tests are in [tool.mutmut] of pyproject.toml; of runbooks/engine/decide.py only the approval and abort parts are
# mutated (asking, approving, refusing, expiring, asking again). The score is kept in BENCHMARKS.md
# (`make mutate-score` prints it); `mutants/` is the tool's work dir, wiped first so that a run
# always judges the current code.
MUTATE_CHILDREN ?= $(shell nproc)
MUTATE_TARGETS := 'runbooks.engine.approvals.*' 'runbooks.rules.health.*' 'runbooks.catalogue.restart.*' 'runbooks.rules.rolls.*' \
	'runbooks.catalogue.upgrade.*' 'runbooks.engine.decide.x__enter_step__*' 'runbooks.engine.decide.x__on_approve__*' \
	'runbooks.engine.decide.x__on_tick__*' 'runbooks.engine.decide.x__on_retry__*' 'runbooks.engine.decide.x__on_abort__*' \
	'runbooks.engine.outcome.*' 'runbooks.engine.aborting.*' \
	'runbooks.rules.reassignment.*' 'runbooks.rules.reassignment_plan.*' 'runbooks.rules.reassignment_fill.*' \
	'runbooks.rules.reassignment_batches.*' 'runbooks.catalogue.replace_broker.*' 'runbooks.catalogue.scale.*' \
	'runbooks.catalogue.replica_steps.*' 'runbooks.rules.node_pools.*' 'runbooks.rules.unowned_throttles.*' \
	'runbooks.rules.rebalance.*'

mutate: venv
	rm -rf mutants
	$(VENV)/bin/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTATE_TARGETS)
	$(PYTHON) -m tests.mutation_score

mutate-score: venv
	$(PYTHON) -m tests.mutation_score

clean-sandboxes: venv
	$(PYTHON) -m bot sandbox down --all
