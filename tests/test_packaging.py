"""The wheel carries what it needs: the grammar is read from the installed package, and every
source package is listed in pyproject.toml (they are listed by hand because of the mapping
that ships grammar/ and runtime/ inside procdsl)."""

from __future__ import annotations

import ast
import fnmatch
import importlib.resources

import tomllib
from conftest import REPO

from procdsl.lang.parse import GRAMMAR_RESOURCE, grammar_text


def test_grammar_loads_from_the_installed_package():
    package, name = GRAMMAR_RESOURCE
    resource = importlib.resources.files(package).joinpath(name)
    assert resource.is_file() and "curriculum" in grammar_text()
    # the wheel carries it only if package-data names it
    shipped = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch(name, pattern) for pattern in shipped.get(package, [])), shipped


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for package, directory in mapping.items():
        root = REPO / directory
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            found.add(".".join((package,) + relative))
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"


def test_the_package_needs_nothing_outside_it():
    """The wheel holds procdsl/, grammar/ and runtime/ only: no module imports ``benchmarks`` or
    names it in a path (``procdsl bench`` once loaded its naive references from there)."""
    for directory in ("procdsl", "grammar", "runtime"):
        for path in (REPO / directory).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {
                id(node.body[0].value)
                for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and node.body
                and isinstance(node.body[0], ast.Expr)
                and isinstance(node.body[0].value, ast.Constant)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                elif (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docstrings
                ):
                    names = [node.value] if "benchmarks" in node.value else []
                else:
                    continue
                assert not any("benchmarks" in name for name in names), (
                    f"{path.relative_to(REPO)}:{node.lineno} reaches outside the package: {names}"
                )
