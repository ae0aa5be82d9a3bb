r"""Grid defaults and resolution verdict of the native 2-D FitzHugh–Nagumo solver (docs/mathematics.md §12).

Default grid: along ``v`` the density concentrates to the width ``√(D_p/(γA_p))``
(``A_p = Σ_q g_pq`` electrical, the balance slope :meth:`~meanfield.fhn.FhnModel.balance_slopes`
chemical) or keeps the initial spread ``v_std`` if that is smaller; along ``w`` (transport only)
the spread contracts like ``w_std·e^{−ε b t}``. Each is covered by :data:`CELLS_PER_WIDTH`
cells. The verdict is a posteriori: Richardson estimates from grids coarsened by 2 along ``v``
(order 2) and along ``w`` (order :data:`W_ORDER`), relative to the scale of each observable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from meanfield.errors import bad_value
from meanfield.fhn import ChemicalCoupling, FhnModel, GaussianStart

CELLS_PER_WIDTH = 6.0
"""Cells per concentration width of the default grid."""
SPACE_TOL = 0.01
"""Default tolerance of the relative space error of the mean and variance of ``v`` and ``w``."""
W_ORDER = 2.0
"""Order assumed along ``w`` by the estimate ``(q_h − q_{2h})/(2^p − 1)``: the scheme's formal order.

On the issue case (electrical, γ = 4, to t = 5, ``nv = 228``) the orders observed from three
grids between ``nw = 36`` and 576 are 1.8–3.5 (2.4–2.8 for ``var w``, the largest error), and
with ``p = 2`` the estimated relative errors are 1.2–3.0 times the true ones (1.5–2.2 for the
largest) at ``nw = 72, 144, 288``; ``p = 1.5`` overestimated them 2–4.9 times and warned on grids
that resolve the density (``tests/fhn/test_fhn_resolution.py``)."""
MAX_CELLS = 512
"""Largest default number of cells along one axis."""


def widths(model: FhnModel, gamma: float, initial: GaussianStart, t_final: float
           ) -> tuple[float, float]:
    """The smallest spread along ``v`` and along ``w`` expected up to ``t_final``."""
    par = initial.per_population(model.P)
    if np.any(par["v_std"] <= 0) or np.any(par["w_std"] <= 0):
        bad_value("initial", initial, "standard deviations > 0 for the PDE (a Dirac mass cannot "
                  "be put on a grid)")
    D = model.param("sigma") ** 2 / 2
    if isinstance(model.coupling, ChemicalCoupling):
        try:
            A = model.balance_slopes()
        except RuntimeError:
            A = np.array(model.coupling.g, dtype=float).sum(axis=1)
    else:
        A = np.array(model.coupling.g, dtype=float).sum(axis=1)
    rate = gamma * A + 1.0  # the intrinsic drift contracts beyond |v| = 1 at rate ≈ v² − 1
    width_v = float(np.min(np.minimum(par["v_std"], np.sqrt(D / rate))))
    decay = np.exp(-model.param("epsilon") * model.param("b") * t_final)
    width_w = float(np.min(par["w_std"] * decay))
    return width_v, width_w


def _even(n: float, cap: int = MAX_CELLS) -> int:
    return int(min(cap, max(16, 2 * math.ceil(n / 2))))


def default_grid(model: FhnModel, gamma: float, initial: GaussianStart, t_final: float,
                 v_range: tuple[float, float], w_range: tuple[float, float]) -> tuple[int, int]:
    """``(nv, nw)``, even, with :data:`CELLS_PER_WIDTH` cells per spread (at most :data:`MAX_CELLS`)."""
    width_v, width_w = widths(model, gamma, initial, t_final)
    nv = _even((v_range[1] - v_range[0]) / width_v * CELLS_PER_WIDTH)
    nw = _even((w_range[1] - w_range[0]) / width_w * CELLS_PER_WIDTH)
    return nv, nw


def richardson(fine: dict[str, np.ndarray], coarse_v: dict[str, np.ndarray],
               coarse_w: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], ...]:
    """Signed error estimates ``(total, along v, along w)`` of the fine observables."""
    along_v = {k: (fine[k] - coarse_v[k]) / 3.0 for k in fine}
    along_w = {k: (fine[k] - coarse_w[k]) / (2.0**W_ORDER - 1.0) for k in fine}
    total = {k: along_v[k] + along_w[k] for k in fine}
    return total, along_v, along_w


def relative(errors: dict[str, np.ndarray], obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Errors over the scale of each observable (variance; ``max(|mean|, std)``), per time."""
    out = {}
    for name, error in errors.items():
        if name.startswith("var"):
            scale = np.abs(obs[name])
        else:
            scale = np.maximum(np.abs(obs[name]), np.sqrt(np.abs(obs["var" + name[4:]])))
        out[name] = np.max(np.abs(error) / np.maximum(scale, 1e-300), axis=-1)
    return out


def verdict(obs: dict[str, np.ndarray], t: np.ndarray, along_v: dict[str, np.ndarray],
            along_w: dict[str, np.ndarray], nv: int, nw: int, tol: float) -> dict[str, Any]:
    """Whether the relative space error is ≤ ``tol``; else the cause and the cells that fix it."""
    rel_v, rel_w = relative(along_v, obs), relative(along_w, obs)
    worst = {k: rel_v[k] + rel_w[k] for k in rel_v}
    name = max(worst, key=lambda k: float(np.max(worst[k])))
    k = int(np.argmax(worst[name]))
    error = float(worst[name][k])
    ev = max(float(np.max(r)) for r in rel_v.values())
    ew = max(float(np.max(r)) for r in rel_w.values())
    need_v = nv if ev <= tol / 2 else _even(nv * math.sqrt(ev / (tol / 2)) * 1.05, 10**9)
    need_w = nw if ew <= tol / 2 else _even(nw * (ew / (tol / 2)) ** (1 / W_ORDER) * 1.05, 10**9)
    ok = error <= tol
    message = (f"resolved on nv×nw = {nv}×{nw} cells (estimated relative space error "
               f"{error:.2g} <= {tol:g})")
    if not ok:
        causes = []
        if need_v > nv:
            causes.append(f"along v {ev:.2g}")
        if need_w > nw:
            causes.append(f"along w {ew:.2g}")
        message = (f"the grid does not resolve the FitzHugh–Nagumo density: estimated relative "
                   f"error {error:.2g} of {name} at t={float(t[k]):.3g} (two-grid Richardson "
                   f"estimate; {', '.join(causes) or 'both axes'}) > space_tol={tol:g} on "
                   f"nv×nw = {nv}×{nw} cells; use about nv={max(need_v, nv)}, "
                   f"nw={max(need_w, nw)} or more")
    return {"ok": ok, "error": error, "observable": name, "time": float(t[k]),
            "error_along_v": ev, "error_along_w": ew, "nv": nv, "nw": nw,
            "nv_needed": max(need_v, nv), "nw_needed": max(need_w, nw), "tolerance": tol,
            "message": message}


__all__ = ["CELLS_PER_WIDTH", "MAX_CELLS", "SPACE_TOL", "W_ORDER", "default_grid", "relative",
           "richardson", "verdict", "widths"]
