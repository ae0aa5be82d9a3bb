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
            assert cell.outputs == [] and cell.execution_count is None, "stored with outputs"
    headings = [line.split("(")[0].strip() for cell in nb.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("## ")]
    order = [h for h in headings if any(h.startswith(s) for s in SECTIONS)]
    assert [next(s for s in SECTIONS if h.startswith(s)) for h in order] == SECTIONS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel imports this source tree (whatever the installation) and writes into tmp_path
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.get("output_type") == "error"]
    assert errors == []
    figures = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
               if "image/png" in out.get("data", {})]
    assert figures, "every notebook ends with at least one figure"
