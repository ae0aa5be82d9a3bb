"""Shared fixtures: a seeded random generator, so that every random test is reproducible."""

import numpy as np
import pytest

SEED = 20_260_401
"""The seed of the :func:`rng` fixture (fixed: a failing test fails again the same way)."""


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh ``numpy`` generator seeded with :data:`SEED` (one per test)."""
    return np.random.default_rng(SEED)


@pytest.fixture
def strict_floats():
    """Inside the test, floating-point overflow, division by zero and invalid operations raise
    ``FloatingPointError`` instead of leaving an ``inf``/``nan`` behind (underflow to zero stays
    allowed: it is how densities leave their tails). Code that means to overflow says so with its
    own ``np.errstate``."""
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        yield
