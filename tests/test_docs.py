"""The documentation: warning-free Sphinx build, doctests, and citations that resolve inside the repo."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MATH_PAGE = DOCS / "mathematics.md"
SOURCE_DIRS = ("meanfield", "solvers", "asymptotics", "tests", "benchmarks", "examples", "notebooks")
OLD_NAME = "MATH" + ".md"  # split so that this file does not match its own search
# "docs/mathematics.md §4", "§4-7" (with an en dash), "§1, §4, §7", "§6.1"
CITATION = re.compile(r"docs/mathematics\.md\s+(§\d+(?:\.\d+)?(?:\s*[\u2013-]\s*\d+)?"
                      r"(?:\s*,\s*§\d+(?:\.\d+)?(?:\s*[\u2013-]\s*\d+)?)*)")
NUMBER = re.compile(r"(\d+(?:\.\d+)?)(?:\s*[\u2013-]\s*(\d+))?")


def section_numbers() -> set[str]:
    """Numbers of the sections of the mathematics page: '## 4. ...' and '### 6.1 ...'."""
    text = MATH_PAGE.read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.MULTILINE))


def cited_sections(text: str) -> list[str]:
    numbers = []
    for match in CITATION.finditer(text):
        for first, last in NUMBER.findall(match.group(1)):
            if last:
                numbers += [str(n) for n in range(int(first), int(last) + 1)]
            else:
                numbers.append(first)
    return numbers


def text_files(exclude: tuple[str, ...] = ()) -> list[Path]:
    """Source and documentation files of the repository (no virtualenv, caches or builds)."""
    skip = {".git", ".venv", "__pycache__", "build", "dist", "meanfield-out", ".pytest_cache",
            ".ruff_cache", ".ipynb_checkpoints", *exclude}
    suffixes = {".py", ".md", ".ipynb", ".toml", ".txt", ".cfg", ".rst", ".yml", ".yaml"}
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in skip and not d.endswith(".egg-info")]
        files += [Path(dirpath) / f for f in filenames
                  if Path(f).suffix in suffixes or f == "Makefile"]
    return files


def test_mathematics_page_has_numbered_sections_with_targets() -> None:
    text = MATH_PAGE.read_text(encoding="utf-8")
    headings = re.findall(r"^## (\d+)\. ", text, flags=re.MULTILINE)
    assert headings == [str(n) for n in range(1, 13)]
    for n in range(1, 13):
        assert f"(math-{n})=\n## {n}. " in text, f"explicit target (math-{n})= before section {n}"


def test_citation_pattern_reads_every_form() -> None:
    text = ("see docs/mathematics.md §4, docs/mathematics.md §4\u20137 and\n"
            "docs/mathematics.md §1, §4, §7; docs/mathematics.md §6.1")
    assert cited_sections(text) == ["4", "4", "5", "6", "7", "1", "4", "7", "6.1"]


def test_every_cited_section_exists() -> None:
    sections = section_numbers()
    missing = []
    for path in text_files(exclude=("docs",)):
        for number in cited_sections(path.read_text(encoding="utf-8", errors="replace")):
            if number not in sections:
                missing.append(f"{path.relative_to(ROOT)}: §{number}")
    assert missing == [], f"cited sections missing from docs/mathematics.md: {missing}"


def test_no_citation_of_files_outside_the_repository() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{i}" for path in text_files(exclude=("docs",))
                 for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace")
                                          .splitlines(), start=1)
                 if OLD_NAME in line]
    assert offenders == [], f"{OLD_NAME} cited outside docs/ (cite docs/mathematics.md §N): {offenders}"


def modules_with_examples() -> list[str]:
    """Modules of the three packages whose source has a ``>>>`` docstring example."""
    names = []
    for package in ("meanfield", "solvers", "asymptotics"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                names.append(module.removesuffix(".__init__"))
    return names


def test_docstring_examples_run() -> None:
    # every ``>>>`` example in a docstring runs with its module's globals, like the pages' doctests
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failures = {}
    for name in modules_with_examples():
        result = doctest.testmod(importlib.import_module(name), optionflags=flags, verbose=False)
        if result.failed:
            failures[name] = result.failed
    assert failures == {}, f"docstring examples failing (run python -m doctest -v on them): {failures}"


def test_docstring_examples_are_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the search above sees an example when there is one, and testmod catches a wrong output
    package = tmp_path / "solvers"
    package.mkdir()
    (package / "tiny.py").write_text('def f(x):\n    """>>> f(2)\n    5\n    """\n    return 2 * x\n')
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert modules_with_examples() == ["solvers.tiny"]
    spec = importlib.util.spec_from_file_location("tiny_example", package / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert doctest.testmod(module, verbose=False).failed == 1


def sphinx(builder: str, source: Path, out: Path, doctrees: Path) -> subprocess.CompletedProcess:
    # notebooks are not executed here (tests/test_notebooks.py executes them); `make docs` does
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
         "-D", "nb_execution_mode=off", "-d", str(doctrees), str(source), str(out / builder)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_docs_build_without_warnings_and_doctests_pass(tmp_path: Path) -> None:
    pytest.importorskip("myst_nb", reason="the docs extra: pip install -e '.[docs]'")
    source = tmp_path / "docs"  # a copy, so the generated API pages stay out of the tree
    shutil.copytree(DOCS, source, symlinks=False,
                    ignore=shutil.ignore_patterns("_build", "api", "jupyter_execute"))
    doctrees = tmp_path / "doctrees"
    html = sphinx("html", source, tmp_path, doctrees)
    assert html.returncode == 0, html.stderr[-5000:]
    assert (tmp_path / "html" / "mathematics.html").is_file()
    assert (tmp_path / "html" / "api" / "solvers.solve.html").is_file()
    assert (tmp_path / "html" / "notebooks" / "01-quickstart.html").is_file()
    doctest = sphinx("doctest", source, tmp_path, doctrees)
    assert doctest.returncode == 0, doctest.stdout[-5000:] + doctest.stderr[-5000:]
    report = (tmp_path / "doctest" / "output.txt").read_text(encoding="utf-8")
    summary = re.search(r"(\d+) tests\s+0 failures in tests", report)
    assert summary, report[-2000:]
    assert int(summary.group(1)) >= 20, report[-2000:]  # the guide has 32
