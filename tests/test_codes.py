"""The diagnostic-code registry (``procdsl/lang/codes.py``) is the one list of codes: the compiler
names codes only through it, tests/test_checks.py has a case for each, docs/reference.md lists
each, and no file mentions a code it does not hold (as ruff's ``codes.rs`` with its tests)."""

from __future__ import annotations

import ast
import io
import pkgutil
import re
import tokenize

import test_checks
from conftest import REPO

import procdsl.compiler.checks as checks
from procdsl.lang import codes
from procdsl.lang.codes import CODES

CODE = re.compile(r"\b[EW][0-9]{3}\b")
NOQA = re.compile(r"noqa: [A-Z0-9, ]+")  # ruff's rule codes (E402, E731) are not ours
SOURCES = sorted(p for folder in ("procdsl", "runtime") for p in (REPO / folder).rglob("*.py"))


def _mentioned(text: str) -> set[str]:
    return set(CODE.findall(NOQA.sub("", text)))


def test_the_registry_is_well_formed():
    names = [c.name for c in CODES.values()]
    assert len(set(names)) == len(names)
    assert list(CODES) == sorted(CODES, key=lambda c: (c[0] == "W", c))
    for key, c in CODES.items():
        assert key == c.code and re.fullmatch(r"[EW][0-9]{3}", c.code), c
        assert getattr(codes, c.name) == c.code, f"codes.{c.name} is not {c.code}"
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", c.name), c.name
        assert c.summary and "\n" not in c.summary and c.doc and c.raised_in, c
        assert c.severity == ("warning" if c.code.startswith("W") else "error")


def test_call_sites_name_codes_never_their_literals():
    """Outside the registry, no string literal is a code; every ``codes.NAME`` is registered;
    every registered code is raised somewhere."""
    literals: list[str] = []
    unknown: list[str] = []
    used: set[str] = set()
    names = {c.name for c in CODES.values()}
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        if path == REPO / "procdsl" / "lang" / "codes.py":
            continue
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING and re.fullmatch(r"[rRbBuU]?(['\"])[EW][0-9]{3}\1", tok.string):
                literals.append(f"{path.relative_to(REPO)}:{tok.start[0]}: {tok.string}")
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "codes"
            ):
                if node.attr in names:
                    used.add(node.attr)
                elif not hasattr(codes, node.attr):
                    unknown.append(f"{path.relative_to(REPO)}:{node.lineno}: codes.{node.attr}")
    assert not literals, "name the code from procdsl.lang.codes:\n" + "\n".join(literals)
    assert not unknown, unknown
    assert names == used, f"registered but never raised: {sorted(names - used)}"


def test_every_code_has_a_case_in_test_checks():
    cases = {c for c, *_ in test_checks.CASES + test_checks.SETUP_CASES}
    assert sorted(set(CODES) - cases) == [] and sorted(cases - set(CODES)) == []
    assert all(isinstance(text, str) and text for _, text, *_ in test_checks.CASES)  # no blank rows


def test_the_reference_lists_every_code():
    """docs/reference.md (generated; tests/test_registry.py holds it to the generator) has one
    row per code under "Diagnostic codes", and nothing more."""
    reference = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    section = reference.split("\n## Diagnostic codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([EW][0-9]{3}) \| `([A-Z0-9_]+)` \|", section, flags=re.M)
    assert rows == [(c.code, c.name) for c in CODES.values()]


def test_docs_mention_only_registered_codes():
    """The README (and every other doc, docstring, comment and golden file) names no code the
    registry lacks; the README points to the full list."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/reference.md#diagnostic-codes" in readme
    files = [
        REPO / "README.md",
        *(REPO / "docs").rglob("*.md"),
        *(REPO / "tests" / "golden").glob("*.err"),
        *SOURCES,
    ]
    stale = {
        f"{path.relative_to(REPO)}: {code}"
        for path in files
        for code in _mentioned(path.read_text(encoding="utf-8")) - set(CODES)
    }
    assert not stale, sorted(stale)


def test_every_check_module_is_registered_in_checks():
    """One module per check under procdsl/compiler/checks/, each registered in the one tuple."""
    modules = {m.name for m in pkgutil.iter_modules(checks.__path__)}
    registered = {f.__module__.rsplit(".", 1)[1] for f in checks.CHECKS}
    assert modules == registered
    for module in modules:
        assert any(f"compiler/checks/{module}.py" in c.raised_in for c in CODES.values()), module
