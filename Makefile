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

$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt -r requirements-ray.txt
	# The project itself, editable: the `twinboard` command, `import twinboard` from any folder.
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	# Compile the fast event decoder once now, not on a user's first click (8-9 s from cold).
	$(PY) -m twinboard.events.warmup
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/twinboard serve --port $(PORT) --logdir "$(TWINBOARD_LOGDIR)"

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

screenshots: $(STAMP)
	$(PY) -m tests.screenshots docs

clean:
	rm -rf $(VENV)
