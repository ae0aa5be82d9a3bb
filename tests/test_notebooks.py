"""Every notebook in notebooks/ is stored without outputs, follows the fixed sections, and runs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SECTIONS = ["## Parameters", "## Model", "## Solve", "## Analyse", "## Plot"]
CELL_TIMEOUT = 600  # seconds per cell

# Run after the first code cell (which selects `%matplotlib inline`): every figure the notebook
# displays first goes through the layout check of tests/meanfield/layout_checks.py (no overlapping
# text, every axis labelled); problems are collected and asserted by the last cell.
LAYOUT_HOOK = f"""
import sys as _sys
_sys.path.insert(0, {str(ROOT / "tests" / "meanfield")!r})
from layout_checks import assert_clean_layout as _check_layout
from matplotlib.figure import Figure as _Figure
_layout_problems = []
_png_formatter = get_ipython().display_formatter.formatters["image/png"]
_draw_png = _png_formatter.lookup_by_type(_Figure)
def _checked_png(figure):
    try:
        _check_layout(figure)
    except AssertionError as err:
        _layout_problems.append(str(err))
    return _draw_png(figure)
_png_formatter.for_type(_Figure, _checked_png)
"""
LAYOUT_VERDICT = "assert not _layout_problems, _layout_problems"


def test_the_notebooks_are_there() -> None:
    names = [path.stem for path in NOTEBOOKS]
    for expected in ("01-quickstart", "02-convergence-in-gamma", "03-network-vs-meanfield",
                     "04-symbolic-desingularization", "05-balance-in-ei-networks"):
        assert expected in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_without_outputs_in_section_order(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], "stored with outputs"
            assert cell.execution_count is None, "stored with outputs"
    headings = [line.split("(")[0].strip() for cell in nb.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("## ")]
    order = [h for h in headings if any(h.startswith(s) for s in SECTIONS)]
    assert [next(s for s in SECTIONS if h.startswith(s)) for h in order] == SECTIONS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel imports this source tree (whatever the installation) and writes into tmp_path
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.read(path, as_version=4)
    first = next(k for k, cell in enumerate(nb.cells) if cell.cell_type == "code")
    assert "%matplotlib inline" in nb.cells[first].source
    nb.cells.insert(first + 1, nbformat.v4.new_code_cell(LAYOUT_HOOK))
    nb.cells.append(nbformat.v4.new_code_cell(LAYOUT_VERDICT))
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [(out["ename"], out["evalue"]) for cell in nb.cells if cell.cell_type == "code"
              for out in cell.outputs if out.get("output_type") == "error"]
    assert errors == []
    figures = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
               if "image/png" in out.get("data", {})]
    assert figures, "every notebook ends with at least one figure"
