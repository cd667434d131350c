"""Every docstring example in procdsl runs, from the installed package — runtime included.

The worked examples in docstrings are part of each module's contract (STYLE.md); this test
keeps them true. ``procdsl.runtime`` needs torch and TorchTitan: without them its modules are
skipped (by name, so the skip says which), the rest still run.
"""

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import procdsl

RUNTIME = "procdsl.runtime"


def _modules() -> list[str]:
    # procdsl.runtime lives in runtime/ at the repository's top (package-dir in pyproject.toml):
    # in an editable install it is not under procdsl.__path__, so it is walked from its own spec
    # (found without importing it, which needs torch).
    runtime = importlib.util.find_spec(RUNTIME).submodule_search_locations
    found = {RUNTIME}
    for path, prefix in ((procdsl.__path__, "procdsl."), (runtime, f"{RUNTIME}.")):
        found.update(info.name for info in pkgutil.walk_packages(path, prefix=prefix))
    return sorted(found)


def _runtime_missing() -> list[str]:
    return [name for name in ("torch", "torchtitan") if importlib.util.find_spec(name) is None]


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    if name.startswith(RUNTIME) and (missing := _runtime_missing()):
        pytest.skip(f"{name} needs {', '.join(missing)}")
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
