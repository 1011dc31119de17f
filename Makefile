# The two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-lowest lint bench conformance captures fuzz clean browser broker

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(VENV)/bin/wsshadow demo

# Regenerate captures/demo-legacy.jsonl from a fresh recording of the demo's legacy server.
captures: install
	$(VENV)/bin/wsshadow demo --out build/captures-demo --seed 7 > /dev/null
	$(VENV)/bin/wsshadow captures export build/captures-demo/capture.db captures/demo-legacy.jsonl --recorded

test: install lint browser broker
	$(PY) -m pytest -q

# The suite again on the lowest versions pyproject.toml allows, so that its floors stay true.
LOWEST := .venv-lowest
test-lowest:
	@mkdir -p build
	$(PYTHON) .ci/lowest_constraints.py > build/lowest-constraints.txt
	@test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python -m pip install --quiet -c build/lowest-constraints.txt -e '.[dev]'
	$(LOWEST)/bin/python -m pip list 2>/dev/null | grep -iE '^(aiohttp|websockets|deepdiff|sqlite-utils|typer|rich|orjson|uvloop) '
	$(LOWEST)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/ruff check replay recorders tests bench fuzz wsshadow
	$(VENV)/bin/mypy -p wsshadow
	$(VENV)/bin/mypy --explicit-package-bases bench/*.py bench/conformance/*.py fuzz/*.py
	$(VENV)/bin/lint-imports --no-cache

# Headless Chromium (Debian's package) for the HTML report's browser test
# (tests/report/test_report_browser.py); nothing to do once it is installed.
APT := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
browser:
	@test -x /usr/bin/chromium || ($(APT) update && $(APT) install -y chromium)

# The mosquitto MQTT broker (Debian's package) for the MQTT dialect's end-to-end test
# (tests/shadow/test_dialects_e2e.py); nothing to do once it is installed.
broker:
	@test -x /usr/sbin/mosquitto || ($(APT) update && $(APT) install -y mosquitto)

bench: install
	$(PY) bench/run_all.py

# Autobahn|Testsuite directly and through `wsshadow record` (needs a python2.7; see the script).
conformance: install
	$(PY) bench/conformance/run.py

FUZZ_SECONDS ?= 60
fuzz: install
	$(PY) -m pip install --quiet atheris
	@for h in fuzz/fuzz_*.py; do \
		work=$$(mktemp -d); \
		echo "== $$h ($(FUZZ_SECONDS)s)"; \
		$(PY) $$h -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$work fuzz/seeds \
			> $$work.log 2>&1 || { tail -n 30 $$work.log; rm -rf $$work; exit 1; }; \
		grep -E "stat::(number_of_executed_units|average_exec_per_sec)" $$work.log; \
		rm -rf $$work $$work.log; \
	done

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache
