"""Options and progress display of the front doors built on :func:`solvers.stepping.march`
(moved out of :mod:`solvers.stepping`, which re-exports them)."""

from __future__ import annotations

from typing import Any

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
