# The two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench conformance captures fuzz clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: install
	$(VENV)/bin/wsshadow demo

test: install lint browser
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check replay recorders tests bench
	$(VENV)/bin/mypy replay recorders

# Headless Chromium (Debian's package) for the HTML report's browser test
# (tests/reports/test_report_browser.py); nothing to do once it is installed.
APT := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
browser:
	@test -x /usr/bin/chromium || ($(APT) update && $(APT) install -y chromium)

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
