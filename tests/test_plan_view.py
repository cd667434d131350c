"""``procdsl plan``: the second table (what each phase does) and ``--plot`` (the timeline)."""

from __future__ import annotations

from conftest import CURRICULA
from typer.testing import CliRunner

from procdsl.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "250"}


def test_plan_shows_layout_loss_transfer_eval_and_ramps_per_phase(tmp_path):
    path = tmp_path / "r.curr"
    path.write_text("""curriculum r {
  model = gpt2(layers=1, heads=1, dim=8)
  context = 64
  batch = 2
  source s = sort(length=ramp(4, 12), vocab=10)
  source v = sort(length=4, vocab=10)
  phase warm { steps = 10  mix = { s: 100% } }
  phase main {
    steps = 10
    mix = ramp({ s: 100% }, { v: 100% })
    layout = packed
    loss = full
    transfer = { keep: [attn, mlp, norm], freeze: [attn] }
    optimizer = continue
    eval every 5 steps { accuracy(v, batches=2) }
  }
}
""")
    result = runner.invoke(app, ["plan", str(path)], env=ENV)
    assert result.exit_code == 0, result.output
    warm, main = (
        next(
            line
            for line in result.output.splitlines()
            if line.startswith(f"│ {name} ")
            and "padded" in line
            or line.startswith(f"│ {name} ")
            and "packed" in line
        )
        for name in ("warm", "main")
    )
    for text in ("padded", "output_only", "first phase", "fresh", "s.length 4→12"):
        assert text in warm
    for text in (
        "packed",
        "full",
        "keep attn,mlp,norm; reinit embed,pos,head; freeze attn",
        "continue",
        "accuracy(v) every 5",
        "mix, s.length 4→12",
    ):
        assert text in main


def test_plot_writes_the_timeline_in_the_format_asked(tmp_path):
    for name in ("timeline.svg", "timeline.png", "timeline.pdf"):
        out = tmp_path / "figs" / name
        result = runner.invoke(app, ["plan", str(CURRICULA / "quickstart.curr"), "--plot", str(out)], env=ENV)
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 1000
    svg = (tmp_path / "figs" / "timeline.svg").read_text()
    for label in ("learning rate", "mixture (% of tokens)", "warmup", "code", "sort 100%", "step"):
        assert f">{label}<" in svg or label in svg, label
    assert "quickstart: 2 phases" in svg


def test_plot_dash_prints_the_timeline_and_a_bad_name_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["plan", str(CURRICULA / "quickstart.curr"), "--plot", "-"], env=ENV)
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if "  lr " in line and " steps " in line]
    assert [line.split()[0] for line in lines] == ["warmup", "code"]
    assert "steps 1–150" in lines[0] and "steps 151–450" in lines[1] and "1e-03" in lines[1]
    bad = runner.invoke(
        app, ["plan", str(CURRICULA / "quickstart.curr"), "--plot", str(tmp_path / "t.gif")], env=ENV
    )
    assert bad.exit_code == 2 and "name a .png, .svg or .pdf file" in bad.output
