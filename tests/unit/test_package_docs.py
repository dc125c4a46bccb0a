"""Each package's docstring says what it may import; the code imports nothing else of stackwatch.

The "May import:" line of a package `__init__` is the layering rule a reader trusts: this reads every module
of the package (its sub-packages with a rule of their own are checked against that one) and compares.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "stackwatch"
#: fleece/ states a finer rule in prose (its analysis path imports nothing outside fleece/, models and reports
#: may import the store), checked by tests/fleece/test_imports.py
NOT_YET = {"fleece"}
PACKAGES = sorted(p.parent for p in SRC.rglob("__init__.py") if p.parent != SRC)


def _rule(package: Path) -> str | None:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8"))) or ""
    match = re.search(r"May import:(.*?)(?:\n\n|$)", doc, re.S)
    return " ".join(match.group(1).split()) if match else None


def _dotted(package: Path) -> str:
    return ".".join(("stackwatch", *package.relative_to(SRC).parts))


def _imports(package: Path) -> dict[str, set[str]]:
    """stackwatch modules imported by the package's own modules (not its sub-packages that have a rule)."""
    ruled = [p for p in PACKAGES if p != package and p.is_relative_to(package) and _rule(p)]
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        if any(path.is_relative_to(sub) for sub in ruled):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("stackwatch.") and not name.startswith(_dotted(package)):
                    found.setdefault(name, set()).add(path.name)
    return found


@pytest.mark.parametrize("package", [p for p in PACKAGES if _rule(p)], ids=_dotted)
def test_a_package_imports_only_what_its_docstring_allows(package):
    if package.relative_to(SRC).parts[0] in NOT_YET:
        pytest.skip("fleece/'s rule is checked by tests/fleece/test_imports.py")
    rule = _rule(package)
    if rule.startswith("any layer"):
        return
    allowed = [] if "nothing else of stackwatch" in rule else re.findall(r"stackwatch(?:\.[a-z_]+)+", rule)
    assert "nothing else of stackwatch" in rule or allowed, f"no module named in {rule!r}"
    outside = {name: sorted(files) for name, files in _imports(package).items()
               if not any(name == a or name.startswith(a + ".") for a in allowed)}
    assert outside == {}, f"{_dotted(package)} says 'May import: {rule}'"


def test_every_package_says_what_it_holds():
    silent = [_dotted(p) for p in PACKAGES if not ast.get_docstring(ast.parse((p / "__init__.py").read_text()))
              and any(f.name != "__init__.py" for f in p.glob("*.py")) and "migrations" not in p.parts]
    assert silent == []


def test_an_empty_package_says_so():
    empty = [p for p in PACKAGES if [f.name for f in p.iterdir() if f.name != "__pycache__"] == ["__init__.py"]]
    for package in empty:
        assert "Nothing is here yet" in ast.get_docstring(ast.parse((package / "__init__.py").read_text())), package
