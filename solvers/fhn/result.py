"""Result of the native 2-D FitzHugh–Nagumo solver: :class:`~solvers.FhnPdeResult` plus error estimates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from solvers.fhn.fipy2d import FhnPdeResult

_ESTIMATE = ("estimated space error of {}", "same as {}", "two-grid Richardson estimate of the "
             "discretisation error of {} (signed: true ≈ computed − estimate; NaN when not "
             "estimated), docs/mathematics.md §12")
_UNITS = {"mean_v": "voltage units of the FitzHugh-Nagumo model (nondimensional)",
          "var_v": "square of the voltage units of the FitzHugh-Nagumo model (nondimensional)",
          "mean_w": "recovery-variable units of the FitzHugh-Nagumo model (nondimensional)",
          "var_w": "square of the recovery-variable units of the FitzHugh-Nagumo model "
                   "(nondimensional)"}


@dataclass(frozen=True, eq=False, kw_only=True)
class FhnNativeResult(FhnPdeResult):
    """Densities and observables of :func:`solvers.solve_fhn_native` (fields of
    :class:`~solvers.FhnPdeResult`) and the spatial error estimates ``error_mean_v``,
    ``error_var_v``, ``error_mean_w``, ``error_var_w`` (nt, P): fine minus the Richardson
    extrapolation from grids coarsened by 2 along ``v`` and along ``w`` (NaN when
    ``error_estimate=False``). ``info`` holds the steps, the time-error control and the
    resolution verdict (``info["resolution"]``).
    """

    error_mean_v: np.ndarray
    error_var_v: np.ndarray
    error_mean_w: np.ndarray
    error_var_w: np.ndarray

    RESULT_TYPE: ClassVar[str] = "FhnNativeResult"
    SOLVER: ClassVar[str] = "solve_fhn_native"
    METHOD: ClassVar[str] = "native"
    EXTRA: ClassVar[dict[str, tuple[str, str, str]]] = {
        f"error_{name}": (_ESTIMATE[0].format(name), _UNITS[name], _ESTIMATE[2].format(name))
        for name in ("mean_v", "var_v", "mean_w", "var_w")}

    def relative_space_error(self) -> dict[str, float]:
        """Largest estimated error over the saved times, relative to ``max(|mean|, std)`` for
        means and to the variance for variances (NaN when not estimated)."""
        from solvers.fhn.resolution import relative

        names = ("mean_v", "var_v", "mean_w", "var_w")
        obs = {name: getattr(self, name) for name in names}
        per_time = relative({name: getattr(self, f"error_{name}") for name in names}, obs)
        return {name: float(np.max(values)) for name, values in per_time.items()}

__all__ = ["FhnNativeResult"]
