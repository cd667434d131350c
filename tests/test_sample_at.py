"""``procdsl sample --at P% / --step N``: the examples a phase draws that far through, ramps and all."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from procdsl import sample as sampling
from procdsl.cli import app
from procdsl.compiler import compile_text

TEXT = """curriculum r {
  model = gpt2(layers=1, heads=1, dim=8)
  context = 160
  batch = 2
  source s = sort(length=ramp(4, 64), vocab=10)
  source flat = reverse(length=6, vocab=10)
  phase p { steps = 100  mix = { s: 100% } }
  phase q { steps = 10  mix = { flat: 100% } }
}
"""
runner = CliRunner()


@pytest.fixture
def curr(tmp_path):
    path = tmp_path / "r.curr"
    path.write_text(TEXT)
    return path


def lengths(output: str, source: str = "s") -> list[int]:
    return [
        len(json.loads(line)["tokens"]) for line in output.splitlines() if f'"source": "{source}"' in line
    ]


def test_at_shows_where_the_ramp_stands(curr):
    shown = {
        at: lengths(
            runner.invoke(app, ["sample", str(curr), "--source", "s", "-n", "3", "--json", "--at", at]).output
        )
        for at in ("0%", "50%", "90%")
    }
    assert max(shown["0%"]) < 20 and 60 < min(shown["50%"]) < 80 and min(shown["90%"]) > 110
    assert (
        lengths(
            runner.invoke(
                app, ["sample", str(curr), "--source", "s", "--json", "-n", "3", "--step", "91"]
            ).output
        )
        == shown["90%"]
    )
    flat = runner.invoke(app, ["sample", str(curr), "--source", "flat", "--json", "-n", "2", "--at", "90%"])
    assert lengths(flat.output, "flat") == [13, 13]  # no ramp: the same size throughout


def test_the_example_shown_is_the_one_the_stream_trains_on_at_that_step(curr):
    plan = compile_text(TEXT, str(curr)).plan
    for step in (1, 51, 91):
        stream, rows = sampling.open_rows(plan, "p", 1, skip=step - 1)
        row = next(rows)
        (unit,) = sampling.row_units(row)
        tokens = [t - stream.vocab.offset("s") for t in row["tokens"][unit[1] : unit[2]]]
        (example,) = sampling.iter_source(plan, "s", 1, at=(step - 1) / 100)
        assert example.tokens.tolist() == tokens


@pytest.mark.parametrize(
    "args, message",
    [
        (["--at", "150%"], "--at 150%: must lie between 0% and 100%"),
        (["--at", "soon"], "--at soon: write how far through the phase"),
        (["--at", "50%", "--step", "3"], "give --at or --step, not both"),
        (["--source", "s", "--step", "101"], "--step 101: phase 'p', which trains on 's', has 100 steps"),
        (["--packed", "--phase", "q", "--step", "11"], "--step 11: phase 'q' has 10 steps"),
    ],
)
def test_bad_positions_are_usage_errors(curr, args, message):
    result = runner.invoke(app, ["sample", str(curr), *args])
    assert result.exit_code == 2 and message in result.output
