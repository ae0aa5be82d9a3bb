"""Sphinx configuration of the meanfield documentation (``make docs``)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this source tree, whatever is installed

project = "meanfield"
author = "meanfield developers"
copyright = "meanfield developers"

extensions = [
    "myst_nb",  # MyST markdown pages and the notebooks in notebooks/
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
]

root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# MyST: $...$ and $$...$$ math, (label)= targets, heading anchors for links like
# mathematics.md#4-balance-manifold-and-balance-points
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Notebooks are stored without outputs and executed at build time (``make docs``); the test of
# the build passes ``-D nb_execution_mode=off`` (tests/test_notebooks.py executes them already).
nb_execution_mode = "force"
nb_execution_timeout = 900
nb_execution_in_temp = True  # files the notebooks write go to a temporary folder
nb_execution_raise_on_error = True
nb_merge_streams = True

# API reference: one page per module, generated from the docstrings (numpy style).
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = True  # "Attributes" sections as fields: no duplicate dataclass attributes
napoleon_use_rtype = False

# Doctests: the ``{doctest}`` blocks of these pages (``make docs`` runs the doctest builder after
# the HTML one). ``>>>`` examples in docstrings need their module's globals, so they are run by
# tests/test_docs.py with ``doctest.testmod`` instead of here.
doctest_test_doctest_blocks = ""
doctest_global_setup = "import numpy as np"
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.DONT_ACCEPT_TRUE_FOR_1



def public_names(package: str) -> list[str]:
    """The names in ``package.__all__``, each under the module that defines it (its doc page)."""
    module = importlib.import_module(package)
    names = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            names.append(obj.__name__)
        elif (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ != package:
            names.append(f"{obj.__module__}.{obj.__qualname__}")
    # relative to the package (autosummary resolves them from the package's page)
    return [name.removeprefix(package + ".") for name in names]


PACKAGES = ("meanfield", "meanfield.studies", "solvers", "asymptotics")
autosummary_context = {"public_names": {package: public_names(package) for package in PACKAGES}}

html_theme = "furo"
html_title = "meanfield"
