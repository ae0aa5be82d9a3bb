"""Cost of each symbolic derivation of :mod:`asymptotics` for P = 1, 2, 3 (target: < 10 s each).

For every model and derivation the caches are cleared, the derivation is timed cold, then warm
(cached), and the cold time is printed against two references measured in the same run: the
model layer's own lambdify step (``meanfield.numeric``) and the 10 s budget of issue 5.
Run: ``python benchmarks/bench_asymptotics.py``.
"""

from __future__ import annotations

import importlib
import time

import sympy as sp

import asymptotics as asy
import meanfield as mf

BUDGET = 10.0


CACHED = (("balance", "_balance"), ("equations", "_mean_field"), ("hopf_cole", "_hopf_cole"),
          ("rescaled", "_rescaled"), ("expansion", "derive"), ("laplace", "local_expansion"))


def clear() -> None:
    # the modules by their full names: asy.hopf_cole and asy.verify are the functions
    for module, name in CACHED:
        getattr(importlib.import_module(f"asymptotics.{module}"), name).cache_clear()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def models() -> dict[str, mf.Model]:
    x = mf.x
    saturating = mf.Model([mf.Population("E", x - x**3 / 3, 0.8), mf.Population("I", -x, 0.6)],
                          [[1.0, 2.0], [1.5, 1.0]],
                          [[sp.tanh(x - 2), sp.tanh(x + sp.Rational(3, 2))]] * 2,
                          [mf.sigmoid(x, 0, 2), mf.sigmoid(x, 0.5, 3)], (-5.0, 5.0))
    return {
        "chemical_single (P=1)": mf.models.chemical_single(),
        "chemical (P=2)": mf.models.chemical(),
        "tanh coupling (P=2)": saturating,
        "chemical (P=3)": mf.models.chemical(names=("E", "I", "J"), reversal=(2.0, -1.5, 0.5),
                                             sigma=(0.8, 0.6, 0.7),
                                             g=((1.0, 2.0, 0.5), (1.5, 1.0, 0.5), (0.5, 1.0, 1.0))),
    }


def main() -> None:
    derivations = {
        "mean_field_equation": asy.mean_field_equation,
        "hopf_cole": asy.hopf_cole,
        "balance_points": asy.balance_points,
        "rescaled_equation(order=2)": lambda m: asy.rescaled_equation(m, order=2),
        "stationary_expansion(order=1)": lambda m: asy.stationary_expansion(m, order=1),
        "stationary_expansion(order=2)": lambda m: asy.stationary_expansion(m, order=2),
        "verify(expansion order=2)": lambda m: asy.verify(asy.stationary_expansion(m, order=2)),
        "verify(rescaled order=2)": lambda m: asy.verify(asy.rescaled_equation(m, order=2)),
    }
    print(f"{'model':24s} {'derivation':32s} {'cold s':>8s} {'warm s':>8s} "
          f"{'/numeric':>9s} {'/budget':>8s}")
    for name, model in models().items():
        baseline = timed(lambda model=model: mf.numeric(model))
        for label, fn in derivations.items():
            clear()
            cold = timed(lambda fn=fn, model=model: fn(model))
            warm = timed(lambda fn=fn, model=model: fn(model))
            print(f"{name:24s} {label:32s} {cold:8.2f} {warm:8.3f} {cold / baseline:9.1f} "
                  f"{cold / BUDGET:8.2f}")


if __name__ == "__main__":
    main()
