# Two commands do all set-up on a fresh machine:
#   make demo   creates .venv if missing, installs, runs the main job
#   make test   same environment, whole test suite
#   make tutorials  same environment, executes the tutorials and renders them to build/tutorials/
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench standard regime reproduce tutorials clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spheres reproduce --quick --out results/quick --figures results/quick/figures

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick || exit 1; done

# d = 500 with the paper's nets, sized for 2 hours on a quiet 2-core CPU: resumable, re-run to continue;
# the curated figures/ come from it
standard: $(STAMP)
	$(BIN)/spheres reproduce --standard --out results/standard --figures figures

# the online relu-w1000-d2 trained for 450,000 steps (one schedule of the standard preset's fastest recipe), a
# direct test of the end-of-schedule law's 1e-6 prediction; beyond the 2-hour preset: resumable, re-run to continue
regime: $(STAMP)
	$(BIN)/spheres reproduce --config experiments/configs/regime_relu.toml --out results/regime --figures figures/regime

# the paper's budgets (1M steps per net; sized for a GPU): resumable, re-run to continue
reproduce: $(STAMP)
	$(BIN)/spheres reproduce --out results/full

# executes every tutorial and solution (full size) and writes build/tutorials/*.html; refreshes tutorials/thumbnails/
tutorials: $(STAMP)
	$(BIN)/python tutorials/render.py --out build/tutorials

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
