# The two commands of the README. Each sets up .venv with the pinned packages on first use (idempotent).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ntf-installed

.PHONY: setup course test test-notebooks lab clean-course checkpoints

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

# The notebooks alone (papermill with CI parameters, then nbval): CI runs this after `make test`, so every notebook
# runs twice in a row on one checkout and must give the same checked outputs both times.
test-notebooks: $(STAMP)
	$(PY) -m pytest tests/test_notebooks.py notebooks --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

# The shipped mini checkpoints (data_samples/checkpoints/mini): both stages on ntf-mini, then float16 copies.
MINI_SETS := --set train_dir=data_samples/ntf-mini/train --set val_dir=data_samples/ntf-mini/val --set out=runs/mini-ship
checkpoints: $(STAMP)
	$(VENV)/bin/ntf stage1 --preset mini --fresh $(MINI_SETS)
	$(VENV)/bin/ntf stage2 --preset mini --fresh $(MINI_SETS)
	$(VENV)/bin/ntf export --checkpoint runs/mini-ship/stage1.pt --out data_samples/checkpoints/mini/stage1.pt
	$(VENV)/bin/ntf export --checkpoint runs/mini-ship/stage2.pt --out data_samples/checkpoints/mini/stage2.pt

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-course:
	rm -rf build/course
