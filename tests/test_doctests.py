"""Every docstring example in procdsl runs, from the installed package.

The worked examples in docstrings are part of each module's contract (STYLE.md); this test
keeps them true.
"""

import doctest
import importlib
import pkgutil

import pytest

import procdsl

# runtime/ needs torch; its docstrings are exercised by the runtime tests.
SKIP = ("procdsl.runtime",)


def _modules():
    for info in pkgutil.walk_packages(procdsl.__path__, prefix="procdsl."):
        if not info.name.startswith(SKIP):
            yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
