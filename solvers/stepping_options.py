"""Options, counters, messages and progress display of the time loops of :mod:`solvers.stepping`
(which re-exports them; kept apart for the module size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.errors import bad_value, check_finite_number, check_int


def check_step_options(caller: str, *, scheme: Any, method: Any, rtol: Any, atol: Any, dt: Any,
                       max_steps: Any, stacklevel: int = 3
                       ) -> tuple[str, float, float, float | None, int]:
    """Validated ``(scheme, rtol, atol, dt, max_steps)`` of a front door built on :func:`march`.

    ``method`` is the deprecated name of ``scheme`` (a ``DeprecationWarning`` names ``caller``;
    ``stacklevel`` counts from the caller's frame, as in :func:`warnings.warn`).
    """
    import warnings

    name = "scheme"
    if method is not None:
        warnings.warn(f"{caller}(method=...) is deprecated; use scheme=...", DeprecationWarning,
                      stacklevel=stacklevel + 1)
        scheme, name = method, "method"
    if scheme not in ("bdf2", "be"):
        bad_value(name, scheme, "'bdf2' or 'be'")
    rtol = check_finite_number("rtol", rtol, positive=True)
    atol = check_finite_number("atol", atol, positive=True)
    if dt is not None:
        dt = check_finite_number("dt", dt, positive=True)
    return scheme, rtol, atol, dt, check_int("max_steps", max_steps, minimum=1)


BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| t={n:.2f}/{total:.2f} [{elapsed}<{remaining}]"
"""Progress bars show simulated time as ``t=0.31/1.00``."""


def progress_bar(progress: bool, total: float, desc: str = "sg") -> Any:
    """A tqdm bar over simulated time (``None`` when ``progress`` is false)."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="t", desc=desc, bar_format=BAR_FORMAT)


def advance(bar: Any, h: float) -> None:
    if bar is not None:
        bar.update(h)


@dataclass
class Tally:
    """Counters reported in ``Solution.info``."""

    steps: int = 0
    rejected: int = 0
    newton_iterations: int = 0
    positivity_fallbacks: int = 0
    positivity_clips: int = 0
    dt_min: float = np.inf
    dt_max: float = 0.0

    def accept(self, h: float, result: Any) -> None:
        """Count the accepted step ``result`` (a :class:`solvers.stepping.StepResult`) of size ``h``."""
        self.steps += 1
        self.positivity_fallbacks += int(result.fallback)
        self.positivity_clips += int(result.clipped)
        self.dt_min = min(self.dt_min, h)
        self.dt_max = max(self.dt_max, h)

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "rejected_steps": self.rejected,
                "newton_iterations": self.newton_iterations,
                "positivity_fallbacks": self.positivity_fallbacks,
                "positivity_clips": self.positivity_clips,
                "dt_min": float(self.dt_min) if self.steps else None,
                "dt_max": float(self.dt_max) if self.steps else None}


def stage_failure_message(t: float, h: float) -> str:
    """A fixed step whose moment solve failed (both time loops raise ``RuntimeError`` with it)."""
    return (f"the implicit moment solve did not converge at t={t:g} with dt={h:g}; use a "
            "smaller dt or adaptive steps (dt=None)")


def underflow_message(t: float, h: float) -> str:
    return f"step size underflow at t={t:g} (h={h:g})"


def budget_message(max_steps: int) -> str:
    return f"more than max_steps={max_steps} steps; raise max_steps or loosen rtol/atol"
