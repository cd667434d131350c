"""README's Quickstart is what CI runs: the test command in README.md is the one in .ci/run."""

from conftest import REPO


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    (test_line,) = [line for line in readme.splitlines() if line.endswith("pytest -q -n 2")]
    assert "pytest -q -n 2" in ci
    install = test_line.split("&&")[2].strip()  # pip install "torch==…" -e ".[runtime,dev]"
    assert install.removeprefix("pip install ") in ci
    assert "torch==2.13.0" in install
