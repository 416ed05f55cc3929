# The two commands: `make demo` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DPGCN := $(VENV)/bin/dpgcn
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test setup system-deps browser-deps lint unit integration bench down clean help

help:
	@echo "make demo   - set up, start Neo4j/Redis/worker/API, load synthetic data, train, serve"
	@echo "make test   - set up, lint, and run the whole test suite against real services"
	@echo "make down   - stop everything the demo started"

## Java 17/21 with its compiler (builds the project's Neo4j procedures), Maven (fetches Neo4j
## from Maven Central once) and redis-server, from Debian packages when missing.
## NEO4J_URI / REDIS_URL pointing elsewhere make them unnecessary.
system-deps:
	@need=""; \
	if [ -z "$$NEO4J_URI" ]; then \
	  command -v mvn >/dev/null || need="$$need maven"; \
	  v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	  case "$$v" in 17|21) ;; *) \
	    ls /usr/lib/jvm/*/bin/java >/dev/null 2>&1 && \
	      for j in /usr/lib/jvm/*/bin/java; do $$j -version 2>&1 | grep -q 'version "\(17\|21\)' && v=ok; done; \
	    [ "$$v" = ok ] || need="$$need openjdk-17-jdk-headless";; esac; \
	  command -v javac >/dev/null || ls /usr/lib/jvm/*/bin/javac >/dev/null 2>&1 \
	    || case "$$need" in *jdk*) ;; *) need="$$need openjdk-17-jdk-headless";; esac; \
	fi; \
	if [ -z "$$REDIS_URL" ]; then command -v redis-server >/dev/null || need="$$need redis-server"; fi; \
	if [ -n "$$need" ]; then \
	  echo "installing:$$need"; \
	  command -v apt-get >/dev/null || { echo "error: please install$$need (no apt-get here)"; exit 1; }; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need >/dev/null \
	    || { echo "error: could not install$$need with apt-get"; exit 1; }; \
	fi

## Headless Chromium for the Neo4j Browser test (Debian's package; no browser downloads).
browser-deps:
	@command -v chromium >/dev/null || { \
	  echo "installing: chromium"; \
	  command -v apt-get >/dev/null || { echo "error: please install chromium (no apt-get here)"; exit 1; }; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null \
	    || { echo "error: could not install chromium with apt-get"; exit 1; }; }

$(VENV)/.installed: pyproject.toml
	@command -v python3 >/dev/null || { echo "error: python3 (>= 3.11) is required"; exit 1; }
	python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python >= 3.11 is required"; exit 1; }
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv
	$(VENV)/bin/uv pip install --python $(PY) -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed system-deps

demo: setup
	$(DPGCN) demo

down:
	$(DPGCN) services down

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy dpgcn graphstore training api workers

unit: setup
	$(VENV)/bin/pytest tests/unit -q

## The test services (tests/conftest.py: their own home and ports). The suites stop them after
## pytest, pass or fail, unless they were running before; pytest's exit status is kept.
TEST_ENV := DPGCN_HOME=$(CURDIR)/.state/test NEO4J_BOLT_PORT=17687 NEO4J_HTTP_PORT=17474 \
	REDIS_PORT=16379 DPGCN_API_PORT=18000
define with_test_services
	@up=$$($(TEST_ENV) $(DPGCN) services status --wait 0 >/dev/null 2>&1 && echo yes); \
	$(1); rc=$$?; \
	if [ -z "$$up" ]; then $(TEST_ENV) $(DPGCN) services down || echo "warning: test services not stopped"; fi; \
	exit $$rc
endef

integration: setup
	$(call with_test_services,$(VENV)/bin/pytest tests/integration -q)

test: setup browser-deps lint
	$(call with_test_services,$(VENV)/bin/pytest -q)

bench: setup
	$(VENV)/bin/pytest -q -m slow bench

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache
