"""``solvers`` turns no SymPy into numbers itself: the numeric view (``meanfield.numeric``) does."""

import ast
from pathlib import Path

import solvers


def _sympy_imports(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        if any(name == "sympy" or name.startswith("sympy.") for name in names):
            lines.append(node.lineno)
    return lines


def test_no_module_under_solvers_imports_sympy():
    root = Path(solvers.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 20
    offenders = {str(f.relative_to(root)): lines for f in files if (lines := _sympy_imports(f))}
    assert offenders == {}


def test_the_check_sees_an_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import sympy as sp\n    from sympy.abc import x\n")
    assert _sympy_imports(sample) == [2, 3]
