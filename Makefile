# The two commands of the README. Each sets up .venv with the pinned packages on first use (idempotent).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ntf-installed

.PHONY: setup course test lab clean-course

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Every notebook in order, headless, on CPU, with the embedded data; executed copies in build/course/.
course: $(STAMP)
	$(PY) -m ntf_core.course --out build/course

# Unit tests, every notebook through papermill with small parameters, and nbval against the stored outputs.
test: $(STAMP)
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-course:
	rm -rf build/course
