"""TOML configuration of the ``meanfield`` command (read with :mod:`tomllib`, validated here).

A configuration has up to five tables::

    [model]                      # a named model (see `meanfield models`) ...
    name = "chemical"
    [model.parameters]           # ... with keyword arguments of that model (optional)
    sigma = [0.8, 0.6]

    # ... or an explicit model (no [model.parameters]): expressions are strings in the
    # expression language of meanfield.parse (never run as code; ^ is power)
    # [model]
    # domain = [-5.0, 5.0]
    # g = [[1.0, 2.0], [1.5, 1.0]]
    # phi = [["x - 2", "x + 1.5"], ["x - 2", "x + 1.5"]]
    # psi = ["sigmoid(x, 0, 2)", "sigmoid(x, 0, 2)"]
    # [[model.populations]]
    # name = "E"
    # drift = "x - x**3/3"
    # sigma = 0.8

    [solve]                      # what to compute for one coupling strength
    gamma = 100.0
    method = "stationary"        # exact stationary states, or "sg" / "fipy": solvers.solve
    cells = 1000                 # or "auto": the grid resolving the states (solvers.resolution)
    stability = true             # stationary only: linear stability of each state (also starts)
    t_final = 5.0                # time-dependent methods only (also dt, rtol, atol, save_at)
    scheme = "bdf2"              # method = "sg" only: the time scheme, "bdf2" or "be"

    [sweep]                      # `meanfield sweep`: every combination of the listed values
    vary = { gamma = [1.0, 10.0, 100.0], "model.sigma" = [0.5, 0.8] }
    workers = 2                  # or scheduler = "tcp://host:8786"

    [derive]                     # `meanfield derive`
    order = 2

    [output]
    dir = "meanfield-out"
    name = "run"                 # file stem of the results
    figures = true

Every rejection names the key, shows the value and says what is allowed.
"""

from __future__ import annotations

import inspect
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meanfield.errors import bad_type, bad_value, check_finite_number
from meanfield.expression_language import MAX_NESTING, check_nesting
from meanfield.model import Model

SECTIONS = ("model", "solve", "sweep", "derive", "output")
METHODS = ("stationary", "sg", "fipy")
SOLVE_KEYS = ("gamma", "method", "cells", "t_final", "dt", "rtol", "atol", "save_at", "scheme",
              "starts", "stability")
TIME_KEYS = ("t_final", "dt", "rtol", "atol", "save_at", "scheme")
"""Options of a time-dependent solve, passed on to :func:`solvers.solve` (``scheme``: the time
scheme of ``method = "sg"``, the same ``scheme=`` as every solver of the package)."""
EXPLICIT_KEYS = ("populations", "g", "phi", "psi", "domain", "inputs", "initial")


def _number(key: str, value: Any, *, positive: bool = False, nonnegative: bool = False) -> float:
    if not isinstance(value, (int, float)):  # TOML gives int/float; anything else is a type error
        bad_type(key, value, "a number")
    return check_finite_number(key, value, positive=positive, nonnegative=nonnegative)


def _integer(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        bad_type(key, value, "an integer")
    if value < minimum:
        bad_value(key, value, f"an integer >= {minimum}")
    return value


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        bad_type(key, value, "a non-empty string")
    return value


def _table(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        bad_type(key, value, f"a TOML table [{key}]")
    return dict(value)


def _only(key: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for name in table:
        if name not in allowed:
            bad_value(f"{key}.{name}", table[name], f"a key of [{key}] among {', '.join(allowed)}")


# ------------------------------------------------------------------------------ model
def named_parameters(name: str) -> tuple[str, ...]:
    """The keyword arguments accepted by the named model ``name``."""
    from meanfield.models import CATALOGUE

    return tuple(inspect.signature(CATALOGUE[name]).parameters)


def check_model_table(table: Any) -> dict[str, Any]:
    """Check the shape of a ``[model]`` table (named or explicit); the model is built later."""
    from meanfield.models import CATALOGUE

    table = _table("model", table)
    if "name" in table:
        _only("model", table, ("name", "parameters"))
        name = table["name"]
        if name not in CATALOGUE:
            bad_value("model.name", name, f"one of the named models {', '.join(CATALOGUE)}")
        params = _table("model.parameters", table.get("parameters", {}))
        allowed = named_parameters(name)
        for key, value in params.items():
            if key not in allowed:
                bad_value(f"model.parameters.{key}", value,
                          f"a parameter of the model {name!r}: {', '.join(allowed)}")
        return {"name": name, "parameters": params}
    if "parameters" in table:
        bad_value("model.parameters", table["parameters"], "[model.parameters] only with a named "
                  "model (name = ...); an explicit model writes its numbers in its expressions")
    _only("model", table, EXPLICIT_KEYS)
    missing = [k for k in ("populations", "g", "phi", "psi", "domain") if k not in table]
    if missing:
        bad_value("model", sorted(table), "either name = <a named model> or an explicit model "
                  f"with populations, g, phi, psi, domain (missing: {', '.join(missing)})")
    pops = table["populations"]
    if not isinstance(pops, list) or not pops:
        bad_type("model.populations", pops, "an array of tables [[model.populations]]")
    for i, pop in enumerate(pops):
        pop = _table(f"model.populations[{i}]", pop)
        _only(f"model.populations[{i}]", pop, ("name", "drift", "sigma"))
        for key in ("name", "drift", "sigma"):
            if key not in pop:
                bad_value(f"model.populations[{i}]", pop, f"a table with the key {key!r}")
        if not isinstance(pop["drift"], (str, int, float)) or isinstance(pop["drift"], bool):
            bad_type(f"model.populations[{i}].drift", pop["drift"], "an expression string")
    return table


def build_model(table: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> Model:
    """The :class:`Model` of a checked ``[model]`` table, named-model parameters overridden."""
    from meanfield.models import CATALOGUE

    overrides = dict(overrides or {})
    if "name" in table:
        params = {**table.get("parameters", {}), **overrides}
        allowed = named_parameters(table["name"])
        for key, value in overrides.items():
            if key not in allowed:
                bad_value(f"model.{key}", value,
                          f"a parameter of the model {table['name']!r}: {', '.join(allowed)}")
        params = {k: tuple(v) if k == "domain" else v for k, v in params.items()}
        try:
            return CATALOGUE[table["name"]](**params)
        except (TypeError, ValueError) as err:
            raise type(err)(f"[model] {table['name']}: {err}") from err
    if overrides:
        bad_value("sweep.vary", sorted(overrides), "model.<parameter> entries only with a named "
                  "model (name = ...); an explicit model has no parameters to vary")
    data = {k: v for k, v in table.items() if k in EXPLICIT_KEYS}
    try:
        return Model.from_dict(data)
    except (TypeError, ValueError) as err:
        raise type(err)(f"[model]: {err}") from err


# ------------------------------------------------------------------------------ solve
def check_solve(table: Any, key: str = "solve", *, need_gamma: bool = True) -> dict[str, Any]:
    """Check the ``[solve]`` options; returns them with defaults (method, cells) filled in."""
    table = _table(key, table)
    _only(key, table, SOLVE_KEYS)
    out: dict[str, Any] = {"method": "stationary", "cells": 1000, **table}
    if out["method"] not in METHODS:
        bad_value(f"{key}.method", out["method"], f"one of {', '.join(METHODS)}")
    if need_gamma and "gamma" not in out:
        bad_value(key, sorted(table), "a coupling strength gamma = <number >= 0>")
    if "gamma" in out:
        out["gamma"] = _number(f"{key}.gamma", out["gamma"], nonnegative=True)
    if out["cells"] != "auto":
        if isinstance(out["cells"], str):
            bad_value(f"{key}.cells", out["cells"], 'an integer >= 3 or "auto"')
        out["cells"] = _integer(f"{key}.cells", out["cells"], 3)
    from solvers.grid import GRID_BYTES_PER_CELL, MAX_CELLS

    if out["cells"] != "auto" and out["cells"] > MAX_CELLS:
        bad_value(f"{key}.cells", out["cells"], f"at most {MAX_CELLS} cells (memory: the grid "
                  f"alone would need {out['cells'] * GRID_BYTES_PER_CELL / 2**30:.3g} GiB)")
    if "starts" in out:
        out["starts"] = _integer(f"{key}.starts", out["starts"], 1)
    if "stability" in out and not isinstance(out["stability"], bool):
        bad_type(f"{key}.stability", out["stability"], "true or false")
    for name in ("t_final", "dt", "rtol", "atol"):
        if name in out:
            out[name] = _number(f"{key}.{name}", out[name], positive=True)
    if "save_at" in out:
        times = out["save_at"]
        if not isinstance(times, list) or not times:
            bad_type(f"{key}.save_at", times, "a non-empty array of times")
        out["save_at"] = [_number(f"{key}.save_at", v, nonnegative=True) for v in times]
    if "scheme" in out:
        from solvers.stepping import ORDERS

        if _string(f"{key}.scheme", out["scheme"]) not in ORDERS:
            bad_value(f"{key}.scheme", out["scheme"], f"one of {', '.join(ORDERS)} (the time "
                      "scheme of method = \"sg\")")
        if out["method"] == "fipy":
            bad_value(f"{key}.scheme", out["scheme"], "only with method = \"sg\" (FiPy steps "
                      "with its own implicit scheme)")
    if out["method"] == "stationary":
        extra = [k for k in TIME_KEYS if k in table]
        if extra:
            bad_value(f"{key}.{extra[0]}", table[extra[0]], "time options only with a "
                      "time-dependent method (method = \"sg\" or \"fipy\")")
    else:
        if "t_final" not in out:
            bad_value(f"{key}.method", out["method"], "a final time t_final = <number > 0> "
                      "as well (time-dependent solve)")
        if "dt" in out and out["dt"] > out["t_final"]:
            bad_value(f"{key}.dt", out["dt"], f"a step <= t_final = {out['t_final']:g}")
        for name in ("starts", "stability"):
            if name in out:
                bad_value(f"{key}.{name}", out[name], "only with method = \"stationary\"")
    return out


# ------------------------------------------------------------------------------ sweep, derive, output
def check_sweep(table: Any, model_table: Mapping[str, Any]) -> dict[str, Any]:
    table = _table("sweep", table)
    _only("sweep", table, ("vary", "workers", "scheduler"))
    vary = _table("sweep.vary", table.get("vary", {}))
    if not vary:
        bad_value("sweep.vary", vary, "a table of parameters to vary, e.g. "
                  "vary = { gamma = [1.0, 10.0, 100.0] }")
    for name, values in vary.items():
        key = f"sweep.vary.{name}"
        if not isinstance(values, list) or not values:
            bad_type(key, values, "a non-empty array of values")
        if name.startswith("model."):
            if "name" not in model_table:
                bad_value(key, values, "model.<parameter> entries only with a named model")
            param = name.removeprefix("model.")
            allowed = named_parameters(model_table["name"])
            if param not in allowed:
                bad_value(key, values, f"model.<p> with p a parameter of {model_table['name']!r}: "
                          f"{', '.join(allowed)}")
        elif name not in SOLVE_KEYS or name in ("method", "scheme"):
            bad_value(key, values, "a solve option (gamma, cells, t_final, dt, rtol, atol) or "
                      "model.<parameter> of the named model")
    if "workers" in table and "scheduler" in table:
        bad_value("sweep.workers", table["workers"], "either workers or scheduler, not both")
    if "workers" in table:
        _integer("sweep.workers", table["workers"], 1)
    if "scheduler" in table:
        _string("sweep.scheduler", table["scheduler"])
    return {"vary": vary, **{k: table[k] for k in ("workers", "scheduler") if k in table}}


def check_derive(table: Any) -> dict[str, Any]:
    table = _table("derive", table)
    _only("derive", table, ("order",))
    return {"order": _integer("derive.order", table.get("order", 2), 0)}


@dataclass(frozen=True)
class Output:
    """Where results go: ``dir/name.nc`` and ``dir/name-*.png``."""

    dir: Path = Path("meanfield-out")
    name: str = "run"
    figures: bool = True


def check_output(table: Any) -> Output:
    table = _table("output", table)
    _only("output", table, ("dir", "name", "figures"))
    name = _string("output.name", table.get("name", "run"))
    if os.sep in name or name in {".", ".."}:
        bad_value("output.name", name, "a file stem without path separators")
    figures = table.get("figures", True)
    if not isinstance(figures, bool):
        bad_type("output.figures", figures, "true or false")
    return Output(dir=Path(_string("output.dir", table.get("dir", "meanfield-out"))), name=name,
                  figures=figures)


# ------------------------------------------------------------------------------ the configuration
@dataclass(frozen=True)
class Config:
    """A validated configuration. ``model_table`` is kept so sweeps can rebuild the model."""

    model: Model
    model_table: dict[str, Any]
    solve: dict[str, Any] | None
    sweep: dict[str, Any] | None
    derive: dict[str, Any]
    output: Output
    source: str = field(default="<dict>")


def from_dict(data: Mapping[str, Any], source: str = "<dict>") -> Config:
    """Validate a parsed configuration (the tables of the TOML file)."""
    data = _table("configuration", data)
    for name, section in data.items():
        check_nesting(str(name), section)
    for name in data:
        if name not in SECTIONS:
            bad_value(name, data[name], f"a table among [{'], ['.join(SECTIONS)}]")
    if "model" not in data:
        bad_value("model", None, "a [model] table (name = \"chemical\", or an explicit model)")
    model_table = check_model_table(data["model"])
    sweep = check_sweep(data["sweep"], model_table) if "sweep" in data else None
    solve = None
    if "solve" in data:
        solve = check_solve(data["solve"], need_gamma=sweep is None or "gamma" not in sweep["vary"])
    elif sweep is not None and "gamma" not in sweep["vary"]:
        bad_value("sweep.vary", sweep["vary"], "gamma among the varied values, or a [solve] table "
                  "with gamma")
    return Config(model=build_model(model_table), model_table=model_table, solve=solve,
                  sweep=sweep, derive=check_derive(data.get("derive", {})),
                  output=check_output(data.get("output", {})), source=source)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML configuration file."""
    file = Path(path)
    if not file.is_file():
        bad_value("config", str(path), "the path of an existing TOML file")
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        bad_value("config", str(path), f"valid TOML ({str(err)[:200]})")
    except RecursionError:
        bad_value("config", str(path), f"TOML with arrays/tables nested at most {MAX_NESTING} "
                  "levels deep (this file is nested too deeply to read)")
    return from_dict(data, source=str(path))
