"""Golden files: each ``tests/golden/*.curr`` compiles to its ``*.plan.json`` or ``*.err``.

Regenerate after an intended change, then review the diff:

    PROCDSL_REGEN=1 pytest tests/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from procdsl.compiler import compile_file
from procdsl.lang.diagnostics import render_text
from procdsl.plan import to_json

GOLDEN = Path(__file__).parent / "golden"
REGEN = bool(os.environ.get("PROCDSL_REGEN"))


def _render(path: Path) -> tuple[str, str]:
    os.chdir(path.parent)  # diagnostics name files as given: keep them relative
    result = compile_file(path.name)
    if result.ok and result.plans:
        return ".plan.json", "\n".join(to_json(p) for p in result.plans) + "\n"
    return ".err", "".join(render_text(d, result.texts.get(d.span.file)) + "\n" for d in result.diagnostics)


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.curr")), ids=lambda p: p.stem)
def test_golden(path, monkeypatch):
    monkeypatch.chdir(path.parent)
    suffix, actual = _render(path)
    expected = path.with_suffix(suffix)
    if REGEN:
        for stale in (path.with_suffix(".plan.json"), path.with_suffix(".err")):
            stale.unlink(missing_ok=True)
        expected.write_text(actual)
    assert expected.exists(), f"no golden {expected.name}: run PROCDSL_REGEN=1 pytest {__file__}"
    assert actual == expected.read_text()
