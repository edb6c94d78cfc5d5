# Two commands on a fresh machine: `make run` and `make test`. Each bootstraps .venv when missing
# or when a requirements file changed (the stamp is older than it).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501
export TWINBOARD_LOGDIR ?= $(CURDIR)/logs

.PHONY: run test bench screenshots setup clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	# Compile the fast event decoder once now, not on a user's first click (8-9 s from cold).
	$(PY) -m twinboard.warmup
	touch $(STAMP)

run: $(STAMP)
	mkdir -p "$(TWINBOARD_LOGDIR)"
	$(VENV)/bin/streamlit run app.py --server.headless true --server.port $(PORT) \
		--browser.gatherUsageStats false

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

screenshots: $(STAMP)
	$(PY) -m tests.screenshots docs

clean:
	rm -rf $(VENV)
