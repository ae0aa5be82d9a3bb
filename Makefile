# Two commands for a fresh machine with Python >= 3.11: `make demo` and `make test`.
# Each creates .venv and installs the package (editable, with extras) when .venv is missing or
# pyproject.toml changed. `make notebooks` adds the notebook front end (JupyterLab, nbconvert)
# and opens JupyterLab on notebooks/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

NOTEBOOK_STAMP := $(VENV)/.notebook-stamp

.PHONY: demo test lint bench docs clean notebooks

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

$(NOTEBOOK_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[all,notebook]"
	touch $(NOTEBOOK_STAMP)

notebooks: $(NOTEBOOK_STAMP)
	$(VENV)/bin/jupyter lab notebooks/

demo: $(STAMP)
	$(VENV)/bin/meanfield demo

test: $(STAMP)
	$(VENV)/bin/ruff check meanfield solvers asymptotics tests benchmarks
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# HTML into docs/_build/html (notebooks executed, warnings are errors), then the doctests of the
# pages and docstrings (the doctest builder reuses the parsed pages in docs/_build/doctrees)
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html
	$(PY) -m sphinx -W --keep-going -b doctest -d docs/_build/doctrees docs docs/_build/doctest

clean:
	rm -rf $(VENV) meanfield-out .pytest_cache
