"""``procdsl report``: compare finished runs — tables over seeds, curves, mixtures, data efficiency.

Pure Python over what runs leave behind (``plan.json``, ``metrics.jsonl``, ``summary.json``);
matplotlib is imported only to draw PNGs.
"""

from procdsl.report.compare import Arm, data_efficiency, group_arms
from procdsl.report.runs import Run, discover, load_run

__all__ = ["Arm", "Run", "data_efficiency", "discover", "group_arms", "load_run"]
