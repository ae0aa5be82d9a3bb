"""TOML configuration: the examples load, models are built right, bad input names key and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import meanfield as mf
from meanfield import config, models

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["solve", "solve-transient", "sweep", "derive"])
def test_examples_are_valid(name: str) -> None:
    cfg = config.load(EXAMPLES / f"{name}.toml")
    assert isinstance(cfg.model, mf.Model)
    assert cfg.source.endswith(f"{name}.toml")


def test_named_model_with_parameters() -> None:
    cfg = config.from_dict({"model": {"name": "chemical", "parameters": {"sigma": [0.5, 0.7]}},
                            "solve": {"gamma": 10.0}})
    assert cfg.model == models.chemical(sigma=(0.5, 0.7))
    assert cfg.solve == {"method": "stationary", "cells": 1000, "gamma": 10.0}
    assert cfg.output == config.Output()
    assert cfg.derive == {"order": 2}
    rebuilt = config.build_model(cfg.model_table, {"sigma": [0.9, 0.9]})
    assert rebuilt.populations[0].sigma == 0.9


def test_explicit_model_matches_python() -> None:
    cfg = config.load(EXAMPLES / "solve-transient.toml")
    x = mf.x
    expected = mf.Model(
        populations=[mf.Population("E", x - x**3 / 3, 0.8), mf.Population("I", x - x**3 / 3, 0.6)],
        g=[[1, 2], [1.5, 1]], phi=[[x - 2, x + 1.5], [x - 2, x + 1.5]],
        psi=[mf.sigmoid(x, 0, 2), mf.sigmoid(x, 0, 2)], domain=(-5, 5))
    assert cfg.model == expected
    assert cfg.solve["method"] == "sg"
    assert cfg.solve["t_final"] == 2.0
    assert cfg.output.name == "transient"


def test_sweep_table() -> None:
    cfg = config.load(EXAMPLES / "sweep.toml")
    assert cfg.sweep["vary"]["gamma"] == [1.0, 10.0, 100.0, 1000.0]
    assert cfg.sweep["workers"] == 2
    assert "gamma" not in cfg.solve


NAMED = {"name": "chemical"}


@pytest.mark.parametrize(("data", "error", "match"), [
    ({"model": NAMED, "extra": {}}, ValueError, r"extra=\{\} is not allowed: a table among"),
    ({}, ValueError, r"model=None is not allowed: a \[model\] table"),
    ({"model": {"name": "nope"}}, ValueError, r"model.name='nope' .*chemical, chemical_single"),
    ({"model": {"name": "chemical", "parameters": {"speed": 1}}}, ValueError,
     r"model.parameters.speed=1 .*parameter of the model 'chemical'"),
    ({"model": {"name": "chemical", "parameters": {"sigma": -1.0}}}, ValueError,
     r"\[model\] chemical: sigma of population 'E'=-1.0"),
    ({"model": {"domain": [0, 1]}}, ValueError, r"missing: populations, g, phi, psi"),
    ({"model": {"populations": [{"name": "E", "drift": "__import__('os')", "sigma": 1}],
                "g": [[1]], "phi": [["x"]], "psi": ["x"], "domain": [-1, 1]}}, ValueError,
     r"\[model\]: drift of population 'E'=.*only the names"),
    ({"model": {"populations": [{"name": "E", "drift": "-x", "sigma": 1}], "g": [[1]],
                "phi": [["x"]], "psi": ["x"], "domain": [-1, 1], "parameters": {"sigma": 2}}},
     ValueError, r"model.parameters=\{'sigma': 2\} .*only with a named model"),
    ({"model": NAMED, "solve": {"gamma": 1, "cells": 10**9}}, ValueError,
     r"solve.cells=1000000000 .*at most 10000000 cells"),
    ({"model": NAMED, "output": {"name": json.loads("[" * 33 + '"x"' + "]" * 33)}},
     ValueError, r"output.name\[0\].*nested at most 32 levels"),
    ({"model": NAMED, "solve": {}}, ValueError, r"solve=\[\] is not allowed: a coupling strength"),
    ({"model": NAMED, "solve": {"gamma": -1}}, ValueError, r"solve.gamma=-1 .*>= 0"),
    ({"model": NAMED, "solve": {"gamma": "big"}}, TypeError, r"solve.gamma has type str"),
    ({"model": NAMED, "solve": {"gamma": 1, "method": "rk4"}}, ValueError,
     r"solve.method='rk4' .*stationary, sg, fipy"),
    ({"model": NAMED, "solve": {"gamma": 1, "cells": 2.5}}, TypeError, r"solve.cells has type"),
    ({"model": NAMED, "solve": {"gamma": 1, "t_final": 1.0}}, ValueError,
     r"solve.t_final=1.0 .*time options only with a time-dependent method"),
    ({"model": NAMED, "solve": {"gamma": 1, "method": "sg"}}, ValueError,
     r"solve.method='sg' .*t_final"),
    ({"model": NAMED, "solve": {"gamma": 1, "method": "sg", "t_final": 1, "dt": 2}}, ValueError,
     r"solve.dt=2.0 .*<= t_final = 1"),
    ({"model": NAMED, "solve": {"gamma": 1, "stability": "no"}}, TypeError,
     r"solve.stability has type str .*true or false"),
    ({"model": NAMED, "solve": {"gamma": 1, "method": "sg", "t_final": 1, "stability": False}},
     ValueError, r"solve.stability=False .*only with method = \"stationary\""),
    ({"model": NAMED, "solve": {"gamma": 1, "method": "sg", "t_final": 1, "scheme": "rk4"}},
     ValueError, r"solve.scheme='rk4' .*one of be, bdf2"),
    ({"model": NAMED, "solve": {"gamma": 1, "method": "sg", "t_final": 1, "scheme": 2}},
     TypeError, r"solve.scheme has type int"),
    ({"model": NAMED, "solve": {"gamma": 1, "method": "fipy", "t_final": 1, "scheme": "be"}},
     ValueError, r"solve.scheme='be' .*only with method = \"sg\""),
    ({"model": NAMED, "solve": {"gamma": 1, "scheme": "be"}}, ValueError,
     r"solve.scheme='be' .*time options only with a time-dependent method"),
    ({"model": NAMED, "sweep": {"vary": {"scheme": ["be"]}}}, ValueError,
     r"sweep.vary.scheme=\['be'\] .*a solve option"),
    ({"model": NAMED, "solve": {"gamma": 1, "tolerance": 1}}, ValueError,
     r"solve.tolerance=1 .*a key of \[solve\]"),
    ({"model": NAMED, "sweep": {"vary": {}}}, ValueError, r"sweep.vary=\{\} .*parameters to vary"),
    ({"model": NAMED, "sweep": {"vary": {"gamma": 3}}}, TypeError, r"sweep.vary.gamma has type"),
    ({"model": NAMED, "sweep": {"vary": {"speed": [1]}}}, ValueError,
     r"sweep.vary.speed=\[1\] .*a solve option"),
    ({"model": NAMED, "sweep": {"vary": {"model.speed": [1]}}}, ValueError,
     r"sweep.vary.model.speed=\[1\] .*parameter of 'chemical'"),
    ({"model": NAMED, "sweep": {"vary": {"cells": [100]}}}, ValueError,
     r"sweep.vary=.* gamma among the varied values"),
    ({"model": NAMED, "sweep": {"vary": {"gamma": [1]}, "workers": 2, "scheduler": "tcp://a:1"}},
     ValueError, r"sweep.workers=2 .*either workers or scheduler"),
    ({"model": NAMED, "sweep": {"vary": {"gamma": [1]}, "workers": 0}}, ValueError,
     r"sweep.workers=0 .*>= 1"),
    ({"model": NAMED, "derive": {"order": "two"}}, TypeError, r"derive.order has type str"),
    ({"model": NAMED, "output": {"figures": "yes"}}, TypeError, r"output.figures has type str"),
    ({"model": NAMED, "output": {"name": "a/b"}}, ValueError, r"output.name='a/b' .*without path"),
])
def test_bad_configurations(data: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        config.from_dict(data)


def test_explicit_model_cannot_vary_parameters() -> None:
    table = config.load(EXAMPLES / "solve-transient.toml").model_table
    with pytest.raises(ValueError, match=r"sweep.vary=\['sigma'\] .*only with a named model"):
        config.build_model(table, {"sigma": 1.0})


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"config=.*an existing TOML file"):
        config.load(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\nname = 1\n")
    with pytest.raises(ValueError, match=r"config=.*valid TOML"):
        config.load(broken)


@pytest.mark.filterwarnings("ignore::meanfield.errors.ResolutionWarning")  # a coarse grid on purpose
def test_solve_scheme_reaches_the_solver() -> None:
    from meanfield.studies import tasks

    cfg = config.from_dict({"model": NAMED, "solve": {"gamma": 1.0, "method": "sg", "cells": 40,
                                                      "t_final": 0.05, "scheme": "be"}})
    assert cfg.solve["scheme"] == "be"
    ds = tasks.run_task(cfg.model_table, cfg.solve)
    assert json.loads(ds.attrs["info"])["scheme"] == "be"
    assert json.loads(ds.attrs["info"])["order"] == 1
