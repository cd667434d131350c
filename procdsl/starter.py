"""``procdsl init [DIR]``: a starter project — a curriculum that trains offline, and a README stanza.

The curriculum is the quickstart's shape, small enough for a laptop CPU and needing no
download: a SORT warm-up whose difficulty ramps, then real Python code (the standard library's
source) with the paper's transfer, a held-out perplexity eval, and a baseline arm one ``--set``
away. Its name comes from the directory's.

>>> curriculum_name("/tmp/my-first run"), curriculum_name("/tmp/2025"), curriculum_name("/")
('my_first_run', 'c_2025', 'starter')
>>> from procdsl.compiler import compile_text
>>> result = compile_text(curriculum_text("demo"), "demo/curriculum.curr")
>>> result.diagnostics, [p.name for p in result.plan.phases]
([], ['warmup', 'code'])
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

CURRICULUM_FILE = "curriculum.curr"
README_FILE = "README.md"
#: the first line of the README stanza (how init knows a README already has it)
STANZA_TITLE = "## Training with procdsl"

_CURRICULUM = """\
# {name}: a procedural warm-up on SORT, then language modelling on real Python code.
# Trains on a CPU in a few minutes with no download. Explore it:
#   procdsl plan {file} --plot -          what each phase does, and the timeline
#   procdsl sample {file} --at 90%        the warm-up's examples near its end (the ramp grown)
#   procdsl explain mix                   any setting, key or call, explained
curriculum {name} {{
  seed      = 0
  model     = gpt2(layers=2, heads=4, dim=128)
  tokenizer = bytes
  context   = 256
  batch     = 16

  source sort    = sort(length=ramp(8, 64), vocab=100)  # longer lists as the warm-up goes on
  source code    = python_code()                        # the Python standard library, offline
  source heldout = python_code()                        # evaluated on its held-out split

  phase warmup {{
    steps     = 150
    context   = 128  # one padded example per row (at most 129 tokens), as in the paper
    mix       = {{ sort: 100% }}
    optimizer = adamw(lr=1e-3)
  }}

  phase code {{
    steps     = 300
    transfer  = {{ keep: [attn, mlp, norm], reinit: [embed, pos, head] }}
    mix       = {{ code: 100% }}
    optimizer = adamw(lr=1e-3)
    schedule  = cosine(warmup=10%, min=0.1)
    eval every 100 steps {{
      perplexity(heldout, batches=4)
    }}
  }}
}}
"""

_STANZA = """\
{title}

`{file}` is a procdsl curriculum: a 150-step SORT warm-up, then 300 steps
of Python code keeping the warm-up's attention and MLP weights. Everything runs offline on a CPU.

```bash
procdsl check {file}                       # the compiler's checks
procdsl plan {file} --plot timeline.png    # phases, mixtures and learning rate
procdsl run {file} --out runs/warm         # train (rerun the same command to resume)
procdsl run {file} --out runs/base --set phases.warmup.steps=1   # one warm-up step: a near-baseline arm
procdsl report runs/warm runs/base --out report   # curves, data efficiency, figures
```

Edit the file to change the warm-up task (`procdsl explain sort`), its length, the mixture
(`mix = {{ code: rest, sort: 1% }}`) or the transfer; `procdsl check` says what is wrong and how
to fix it.
"""


def curriculum_name(folder: str) -> str:
    """A curriculum name from a directory name: letters, digits and ``_``, not starting with a digit."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", os.path.basename(os.path.abspath(folder))).strip("_")
    if not base:
        return "starter"
    return f"c_{base}" if base[0].isdigit() else base


def curriculum_text(name: str, file: str = CURRICULUM_FILE) -> str:
    return _CURRICULUM.format(name=name, file=file)


def stanza(file: str = CURRICULUM_FILE) -> str:
    return _STANZA.format(title=STANZA_TITLE, file=file)


class StarterExists(FileExistsError):
    """The directory already holds the starter curriculum; the message names it."""


@dataclass
class Started:
    folder: str
    written: list[str] = field(default_factory=list)  # files created
    appended: list[str] = field(default_factory=list)  # files a stanza was added to


def init_project(folder: str) -> Started:
    """Write the starter curriculum into ``folder`` (created if needed) and the README stanza
    (a new README, or appended to one that lacks it). An existing curriculum is never replaced."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, CURRICULUM_FILE)
    if os.path.lexists(path):
        raise StarterExists(
            f"{path} already exists; init changes nothing (remove it, or init another directory)"
        )
    done = Started(folder)
    with open(path, "x", encoding="utf-8") as f:
        f.write(curriculum_text(curriculum_name(folder)))
    done.written.append(path)
    readme = os.path.join(folder, README_FILE)
    if not os.path.exists(readme):
        with open(readme, "x", encoding="utf-8") as f:
            f.write(f"# {curriculum_name(folder)}\n\n" + stanza())
        done.written.append(readme)
    else:
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        if STANZA_TITLE not in text:
            with open(readme, "a", encoding="utf-8") as f:
                f.write(("" if text.endswith("\n") or not text else "\n") + "\n" + stanza())
            done.appended.append(readme)
    return done
