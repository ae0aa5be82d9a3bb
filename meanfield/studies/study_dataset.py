r"""The dataset of a convergence study: errors, fitted and predicted slopes, labels, attributes.

:func:`study_dataset` assembles what every study of :mod:`meanfield.studies.convergence` and
:mod:`meanfield.studies.truncation` returns; :func:`fit_all` fits the slopes
(:func:`meanfield.studies.fitting.fit_slope`) over the points a mask keeps (the resolved ones).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from meanfield.model import Model
from meanfield.studies.fitting import fit_slope

GAMMA_LABELS = {"mean": "|mean − predicted mean|", "balance_point": "|mean − v| (to balance point)",
                "var": "|var / predicted var − 1|", "m": "|m − predicted m|",
                "balance_residual": "∫|h_p| ρ_p (to balance manifold)"}
REFERENCE_LABELS = {"L1": "‖ρ − ρ_ref‖₁", "mean": "|mean − mean_ref|", "var": "|var − var_ref|",
                    "m": "|m − m_ref|"}


def fit_all(abscissa: np.ndarray, errors: np.ndarray, fit_mask: np.ndarray) -> np.ndarray:
    """Slopes (quantity, population) of errors (quantity, n, population) over ``fit_mask``."""
    Q, _, P = errors.shape
    slopes = np.full((Q, P), np.nan)
    for q in range(Q):
        for p in range(P):
            e = errors[q, fit_mask, p]
            good = np.isfinite(e) & (e > 0)
            if np.count_nonzero(good) >= 2:
                slopes[q, p] = fit_slope(abscissa[fit_mask], e).slope
    return slopes


def study_dataset(study: str, abscissa: str, values: np.ndarray, model: Model,
             quantities: Sequence[str], errors: np.ndarray, predicted: Sequence[float],
             slopes: np.ndarray, observables: Mapping[str, tuple], parameters: Mapping[str, Any],
             extra_attrs: Mapping[str, Any] | None = None) -> Any:
    import xarray as xr

    from meanfield import __version__

    pops = list(model.names)
    fitted = {q: {p: (None if not np.isfinite(slopes[i, j]) else float(slopes[i, j]))
                  for j, p in enumerate(pops)} for i, q in enumerate(quantities)}
    data = {"errors": (("quantity", abscissa, "population"), errors),
            "fitted_slope": (("quantity", "population"), slopes),
            "predicted_slope": (("quantity",), np.asarray(predicted, dtype=float)),
            **observables}
    base = GAMMA_LABELS if study == "gamma_convergence" else REFERENCE_LABELS
    labels = {q: ("rescaled solver: " if q.startswith("rescaled_") else "")
              + base.get(q.removeprefix("rescaled_"), q) for q in quantities}
    attrs = {"study": study, "abscissa": abscissa, "model": model.to_json(),
             "quantity_labels": json.dumps(labels),
             "parameters": json.dumps(parameters), "meanfield_version": __version__,
             "fitted_slopes": json.dumps(fitted), **(extra_attrs or {})}
    return xr.Dataset(data, coords={"quantity": list(quantities), abscissa: values,
                                    "population": pops}, attrs=attrs)


def point_values(result: Any, key: str) -> np.ndarray:
    return np.array([ds[key].values for ds in result.datasets])
