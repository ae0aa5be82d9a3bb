"""Uniform error messages: every rejection names the argument, shows the value, says what is allowed."""

from __future__ import annotations

from typing import Any, NoReturn


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def bad_value(name: str, value: Any, allowed: str) -> NoReturn:
    """Raise ``ValueError`` for argument ``name``."""
    raise ValueError(f"{name}={_show(value)} is not allowed: {allowed}")


def bad_type(name: str, value: Any, allowed: str) -> NoReturn:
    """Raise ``TypeError`` for argument ``name``."""
    raise TypeError(f"{name} has type {type(value).__name__} ({_show(value)}): expected {allowed}")


def check_finite_number(name: str, value: Any, *, positive: bool = False,
                        nonnegative: bool = False) -> float:
    """Return ``value`` as a float after checking it is a finite real number (optionally > 0 / >= 0)."""
    import math

    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not hasattr(
        value, "__float__"
    )):
        bad_type(name, value, "a real number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        bad_type(name, value, "a real number")
    if not math.isfinite(number):
        bad_value(name, value, "a finite real number")
    if positive and number <= 0:
        bad_value(name, value, "a number > 0")
    if nonnegative and number < 0:
        bad_value(name, value, "a number >= 0")
    return number


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int after checking its type and lower bound."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bad_type(name, value, "an integer")
    number = int(value)
    if minimum is not None and number < minimum:
        bad_value(name, value, f"an integer >= {minimum}")
    return number


class ResolutionWarning(UserWarning):
    """A result whose discretisation does not resolve the solution to its stated accuracy.

    The message names the cause (cells per concentration width, cell Péclet number, mass at the
    domain ends, …) and the setting that would fix it (usually a number of cells).
    """
