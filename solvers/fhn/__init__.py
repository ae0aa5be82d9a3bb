"""Native 2-D solver of the FitzHugh–Nagumo mean-field PDE (docs/mathematics.md §12)."""

from solvers.fhn.native import solve_fhn_native
from solvers.fhn.result import FhnNativeResult

__all__ = ["FhnNativeResult", "solve_fhn_native"]
