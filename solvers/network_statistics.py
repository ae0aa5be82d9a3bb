"""Statistics of the network's agents at saved times (docs/mathematics.md §1, §11).

Every sum runs over the fixed chunks of :data:`solvers.network_kernels.CHUNK` agents in chunk
order (per-chunk moments combined by Chan et al.'s update), so the statistics, like the steps,
do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from solvers.network_kernels import CHUNK, NumpyPopulation


def chunked_moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and (population) variance, combining per-chunk moments (Chan et al.)."""
    count, mean, m2 = 0, 0.0, 0.0
    for start in range(0, values.size, CHUNK):
        block = values[start:start + CHUNK]
        k = block.size
        mu = float(block.mean())
        s2 = float(np.sum((block - mu) ** 2))
        delta = mu - mean
        total = count + k
        mean += delta * k / total
        m2 += s2 + delta * delta * count * k / total
        count = total
    return mean, m2 / count


def readout_sum(pop: NumpyPopulation, values: np.ndarray) -> float:
    return float(sum(np.sum(pop.readout(values[s:s + CHUNK]))
                     for s in range(0, values.size, CHUNK)))


def histogram(values: np.ndarray, edges: np.ndarray, uniform: bool) -> np.ndarray:
    """Counts of ``values`` in the cells ``edges`` (O(n) binning when the cells are uniform)."""
    if not uniform:
        return np.histogram(values, bins=edges)[0]
    cells = edges.size - 1
    position = (values - edges[0]) * (cells / (edges[-1] - edges[0]))
    index = np.floor(position).astype(np.int64)
    index[values == edges[-1]] = cells - 1  # the last cell is closed, as in np.histogram
    inside = (index >= 0) & (index < cells)
    return np.bincount(index[inside], minlength=cells)


def snapshot(pops: Sequence[NumpyPopulation], states: Sequence[np.ndarray], g: np.ndarray,
              external: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, ...]:
    P = len(pops)
    m = np.array([readout_sum(pops[p], states[p]) / states[p].size for p in range(P)])
    mj = np.concatenate([m, external])
    mean, var, residual = np.empty(P), np.empty(P), np.empty(P)
    hist = np.zeros((P, edges.size - 1))
    widths = np.diff(edges)
    uniform = bool(np.allclose(widths, widths[0], rtol=1e-12, atol=0))
    for p in range(P):
        mean[p], var[p] = chunked_moments(states[p])
        c = g[p] * mj
        total = 0.0
        for s in range(0, states[p].size, CHUNK):
            block = states[p][s:s + CHUNK]
            total += float(np.sum(np.abs(pops[p].coupling(block, c))))
            hist[p] += histogram(block, edges, uniform)
        residual[p] = total / states[p].size
        hist[p] /= states[p].size * widths
    return m, mean, var, residual, hist
