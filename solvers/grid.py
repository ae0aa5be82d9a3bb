"""Cell-centred one-dimensional grids (finite volumes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_int

MAX_CELLS = 10_000_000
"""Most cells of a uniform grid (about 0.3 GB for the grid alone, several GB for a solve)."""
GRID_BYTES_PER_CELL = 32
"""Memory of a grid per cell: edges, centres, widths, gaps as 8-byte floats."""


def check_cells(cells: Any, *, minimum: int = 3) -> int:
    """``cells`` as an int in ``[minimum, MAX_CELLS]``; too many are refused with their memory."""
    cells = check_int("cells", cells, minimum=minimum)
    if cells > MAX_CELLS:
        need = cells * GRID_BYTES_PER_CELL / 2**30
        bad_value("cells", cells, f"at most {MAX_CELLS} cells (this grid alone would need "
                  f"{need:.3g} GiB, {GRID_BYTES_PER_CELL} bytes per cell, before any solver "
                  "array; a solve needs several times more)")
    return cells


@dataclass(frozen=True, eq=False)
class Grid:
    """Cells ``[edges[i], edges[i+1]]`` with centres ``x`` and widths ``h``; zero-flux ends."""

    edges: np.ndarray
    x: np.ndarray = field(init=False)
    h: np.ndarray = field(init=False)
    dx: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        edges = np.array(self.edges, dtype=float)
        if edges.ndim != 1 or edges.size < 4:
            bad_value("edges", self.edges, "a 1-D array of at least 4 edges (3 cells)")
        if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            bad_value("edges", self.edges, "finite, strictly increasing edges")
        edges.setflags(write=False)
        centres = (edges[1:] + edges[:-1]) / 2
        widths = np.diff(edges)
        gaps = np.diff(centres)
        for arr in (centres, widths, gaps):
            arr.setflags(write=False)
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "x", centres)
        object.__setattr__(self, "h", widths)
        object.__setattr__(self, "dx", gaps)

    @classmethod
    def uniform(cls, a: float, b: float, cells: int) -> Grid:
        cells = check_cells(cells)
        return cls(np.linspace(a, b, cells + 1))

    @property
    def cells(self) -> int:
        return self.x.size

    @property
    def domain(self) -> tuple[float, float]:
        return float(self.edges[0]), float(self.edges[-1])

    @property
    def max_width(self) -> float:
        return float(self.h.max())

    def integrate(self, values: np.ndarray) -> np.ndarray:
        """Midpoint rule ``Σ_i values[..., i] h_i`` (exact for the cell averages)."""
        return np.asarray(values) @ self.h

    def __repr__(self) -> str:
        a, b = self.domain
        return f"Grid(cells={self.cells}, domain=({a:g}, {b:g}), max_width={self.max_width:.3g})"


def make_grid(domain: tuple[float, float], cells: Any = None, grid: Any = None,
              default_cells: int = 1000) -> Grid:
    """The grid from the ``cells=`` / ``grid=`` keywords of the solvers (exactly one, or neither)."""
    if grid is not None and cells is not None:
        bad_value("cells", cells, "either cells= or grid=, not both")
    if grid is not None:
        if not isinstance(grid, Grid):
            bad_type("grid", grid, "a solvers.Grid")
        a, b = grid.domain
        if a < domain[0] - 1e-12 or b > domain[1] + 1e-12:
            bad_value("grid", grid, f"a grid inside the model's domain {domain}")
        return grid
    cells = default_cells if cells is None else check_cells(cells)
    return Grid.uniform(domain[0], domain[1], cells)
