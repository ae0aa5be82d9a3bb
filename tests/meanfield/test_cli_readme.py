"""What the README says is true: its Python tour runs, its TOML parses, its commands exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from meanfield import cli, config

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_python_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tour,) = blocks("python")
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    assert (tmp_path / "errors.png").stat().st_size > 1000
    ds = namespace["ds"]
    fitted = ds["fitted_slope"].sel(quantity="mean").values
    assert abs(fitted + 2).max() < 0.2  # the tour's claim: mean ≈ v + μ/γ, error ~ γ^-2
    assert "balance_residual" in capsys.readouterr().out


def test_toml_examples_are_valid() -> None:
    solve_block, sweep_block = blocks("toml")
    cfg = config.from_dict(tomllib.loads(solve_block))
    assert cfg.solve["gamma"] == 100.0
    sweep = tomllib.loads(sweep_block)
    checked = config.check_sweep(sweep["sweep"], {"name": "chemical"})
    assert checked["workers"] == 2


def test_commands_exist() -> None:
    parser = cli.build_parser()
    listed = re.findall(r"^meanfield (\w+)", README, flags=re.M)
    assert set(listed) >= {"demo", "solve", "sweep", "derive", "models"}
    for command in set(listed):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([command, "--help"])
        assert stop.value.code == 0
    for example in re.findall(r"(examples/[\w-]+\.toml)", README):
        assert (Path(__file__).resolve().parents[2] / example).is_file()
    root = Path(__file__).resolve().parents[2]
    images = re.findall(r"!\[[^\]]*\]\((docs/[\w-]+\.png)\)", README)
    assert {"docs/demo-densities.png", "docs/demo-collapse.png", "docs/demo-transient.png"} <= \
        set(images)
    for image in images:
        assert (root / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


def test_readme_flags_exist() -> None:
    parser = cli.build_parser()
    help_text = {name: sub.format_help() for name, sub in
                 parser._subparsers._group_actions[0].choices.items()}
    for command, flags in re.findall(r"^meanfield (\w+) (.*?)(?:#|$)", README, flags=re.M):
        for flag in re.findall(r"--[\w-]+", flags):
            assert flag in help_text[command], (command, flag)
