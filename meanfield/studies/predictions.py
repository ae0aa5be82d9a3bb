r"""Predictions of the studies: balance voltages and moments from the expansion, predicted slopes.

:func:`stationary_predictions` evaluates ``asymptotics.stationary_expansion`` (docs/mathematics.md
§7); :func:`gamma_slopes` and :func:`truncation_slopes` are the slopes in γ the convergence
studies compare their fits with (the table in :mod:`meanfield.studies.convergence`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from meanfield.model import Model


def gamma_slopes(order: int = 1, *, concentrating: bool = True) -> dict[str, float]:
    """Predicted slopes in γ of the errors of :func:`gamma_convergence` (expansion ``order``).

    The distance to the balance manifold ``∫|h_p|ρ_p`` decays like the width ``γ^{-1/2}`` when
    the densities concentrate, and like ``1/γ`` in the non-concentrating balanced case, where
    ``γ h_p`` tends to a finite multiplier ``λ_p`` (docs/mathematics.md §4).
    """
    return {"mean": -(order + 1.0), "balance_point": -1.0, "var": -float(order),
            "m": -(order + 1.0), "balance_residual": -0.5 if concentrating else -1.0}


def stationary_predictions(model: Model, order: int = 1) -> dict[str, Any]:
    """Balance voltages ``v``, ``mu``, ``A``, ``D`` and the predictors of mean, var and m.

    From ``asymptotics.stationary_expansion(model, order=order)``. When the model does not
    concentrate the result is ``{"reason": ...}`` and the studies report only what needs no
    prediction.
    """
    from asymptotics import stationary_expansion

    try:
        expansion = stationary_expansion(model, order=order)
    except ValueError as err:
        return {"reason": str(err)}
    P = model.P
    return {"v": np.asarray(expansion.v, dtype=float).reshape(P),
            "mu": np.asarray(expansion.mu, dtype=float).reshape(P),
            "A": np.asarray(expansion.A, dtype=float).reshape(P),
            "D": np.asarray(model.diffusion, dtype=float),
            "predict_mean": expansion.predict_mean, "predict_var": expansion.predict_var,
            "predict_m": expansion.predict_m}


def truncation_slopes(order: int) -> tuple[float, float]:
    r"""Predicted slopes in γ of the mean and relative variance errors after truncating at ``ε^order``.

    Dropping ``V_{K+1}`` (even in ``y`` when ``K`` is even) shifts ``E[y]`` by ``O(ε^{K+3})`` and
    the mean in ``x`` by ``O(ε^{K+4})``; odd terms act on ``E[y]`` only at second order, and the
    other way round for ``E[y²]``. Hence ``mean: −⌈(K+4)/2⌉``, ``var: −⌊(K+4)/2⌋`` (when the
    dropped coefficients do not vanish; if the truncated drift is exact the errors sit at
    round-off).
    """
    return -float(np.ceil((order + 4) / 2)), -float(np.floor((order + 4) / 2))
