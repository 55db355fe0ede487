# The two commands of the README. Each sets up .venv with the locked packages on first use (idempotent).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ntf-installed

.PHONY: setup course test lint format test-notebooks site test-site lock store lab clean-course checkpoints

setup: $(STAMP)

# requirements.lock pins every package to the versions the course was tested with (environment.yml uses it too)
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# Every notebook in order, headless, on CPU, with the embedded data; executed copies in build/course/.
# Each cell has a 10-minute limit, a watchdog kills a kernel that outlives it, a notebook that hung runs once more.
course: $(STAMP)
	$(PY) -m ntf_core.course --out build/course

# Re-execute the stored notebooks in place (their outputs are what nbval, GitHub and the site show).
store: $(STAMP)
	$(PY) -m ntf_core.course --out notebooks

# The course site (build/site/, works offline and from a USB stick) and plain nbconvert exports (build/export/),
# from the stored notebooks, without executing them. Needs Debian's libjs-mathjax and fonts-mathjax.
site: $(STAMP)
	$(PY) -m ntf_core.site --out build/site --export build/export

# The browser test against what `make site` built: headless chromium, every non-loopback request blocked.
test-site: $(STAMP)
	NTF_SITE_DIR=build $(PY) -m pytest tests/test_site.py

# Refresh requirements.lock: resolve pyproject.toml afresh in a throwaway venv and freeze it.
lock:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "make lock: the lock is for Python 3.11")'
	rm -rf build/lock-venv
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --upgrade pip
	build/lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	(sed -n '1,2p' requirements.lock; build/lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ') > build/requirements.lock
	mv build/requirements.lock requirements.lock
	rm -rf build/lock-venv

# Lint and format check (ruff, 100 columns; settings in pyproject.toml), then the unit tests (the browser test too),
# every notebook through the course runner with small parameters, and nbval against the stored outputs; nbval gets
# the same 20-minute cell limit.
test: lint
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env --nbval-cell-timeout 1200 --nbval-sanitize-with tests/nbval_sanitize.cfg

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Rewrite the code to the project's format and fix what ruff can fix by itself.
format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The notebooks alone (the course runner with CI parameters, then nbval): CI runs this after `make test`, so every notebook
# runs twice in a row on one checkout and must give the same checked outputs both times.
test-notebooks: $(STAMP)
	$(PY) -m pytest tests/test_notebooks.py notebooks --nbval --nbval-current-env --nbval-cell-timeout 1200 --nbval-sanitize-with tests/nbval_sanitize.cfg

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
