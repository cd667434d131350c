"""Shared test helpers: compile snippets, find the repository's own files."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from procdsl.compiler import compile_text

REPO = Path(__file__).resolve().parent.parent
CURRICULA = REPO / "curricula"

#: A small valid curriculum; tests substitute {settings}, {sources} and {phases}.
TEMPLATE = """curriculum t {{
  model = gpt2(layers=2, heads=2, dim=16)
  context = 64
  batch = 4
{settings}
  source a = sort(length=8, vocab=10)
  source b = reverse(length=8, vocab=10)
{sources}
{phases}
}}
"""
PHASE = "  phase p {\n    steps = 10\n    mix = { a: 50%, b: 50% }\n  }"


def snippet(settings: str = "", sources: str = "", phases: str = PHASE) -> str:
    return TEMPLATE.format(settings=settings, sources=sources, phases=phases)


def compile_snippet(text: str, file: str = "t.curr", overrides=()):
    return compile_text(text, file, overrides)


@pytest.fixture
def compile_():
    return compile_snippet


# Token stores that runs prepare go to a directory of this test session (one per xdist worker),
# never to the user's ~/.cache/procdsl.
if not os.environ.get("PROCDSL_CACHE"):
    os.environ["PROCDSL_CACHE"] = tempfile.mkdtemp(prefix="procdsl-cache-")


@pytest.fixture(autouse=True)
def _release_runtime_process_state():
    """Each test starts with no trainer holding the process (gc state, launcher variables): a
    test that failed or stopped mid-run must not leave its hold to the next test of the worker."""
    yield
    import sys

    platform = sys.modules.get("procdsl.runtime.platform")
    if platform is not None:
        while platform.PROCESS.holders:
            platform.PROCESS.release()
