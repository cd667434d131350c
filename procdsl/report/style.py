"""How procdsl's figures look: one style for the report's and the plan's figures.

Numbers on axes read as ``500``, ``20k``, ``1.5M``, ``2B`` (:func:`short_count`), text stays
text in SVG (searchable, editable: ``svg.fonttype = none``) and PDF (TrueType fonts), and every
figure is saved as PNG, SVG and PDF side by side (:func:`save_all`).

>>> [short_count(x) for x in (0, 500, 1500, 20_000, 100_000, 1_500_000, 2e9)]
['0', '500', '1.5k', '20k', '100k', '1.5M', '2B']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # matplotlib is optional (imported where a figure is drawn)
    from matplotlib.typing import RcKeyType

#: the formats every figure is written in
FORMATS = ("png", "svg", "pdf")

_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # labels stay <text> in the SVG
    "pdf.fonttype": 42,  # TrueType in the PDF, not Type 3
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
}


def short_count(value: float) -> str:
    """A count with a k/M/B/T suffix and at most two significant decimals."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else f"{int(value)}"


def step_formatter():
    """A matplotlib tick formatter writing counts with :func:`short_count`."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: short_count(value))


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """Matplotlib settings for figures that go into a paper, for the ``with`` block only."""
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        yield


def save_all(fig, stem: str) -> list[str]:
    """``stem.png`` (150 dpi), ``stem.svg`` and ``stem.pdf``; the paths written."""
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = f"{stem}.{fmt}"
        fig.savefig(path, dpi=150 if fmt == "png" else None, metadata=_metadata(fmt))
        paths.append(path)
    return paths


def _metadata(fmt: str) -> dict:
    """No creation date in SVG and PDF, so a regenerated figure of the same data is the same file."""
    return {"Date": None} if fmt in ("svg", "pdf") else {}
