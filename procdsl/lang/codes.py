"""Every diagnostic code, in one table (as ruff's ``codes.rs``): its code, name, summary and doc.

Call sites name a code (``codes.UNDEFINED_SOURCE``), never its literal. Each name is the plain
string of its code, so a :class:`~procdsl.lang.diagnostics.Diagnostic` built from it is the very
value it always was, and prints the same:

>>> from procdsl.lang.diagnostics import Diagnostic, Span
>>> UNDEFINED_SOURCE
'E101'
>>> Diagnostic(UNDEFINED_SOURCE, "undefined source `aa` in mix", Span("x.curr", 3, 9, 3, 11)) == \\
...     Diagnostic("E101", "undefined source `aa` in mix", Span("x.curr", 3, 9, 3, 11))
True
>>> CODES["E101"].name, CODES["E101"].summary
('UNDEFINED_SOURCE', 'a name where a source is expected that no `source` defines')
>>> CODES["W401"].severity, CODES["E301"].severity
('warning', 'error')

The table is the contract that ``tests/test_codes.py`` holds ``tests/test_checks.py`` (a case per
code), the generated ``docs/reference.md`` (a row per code) and the README to. ``raised_in``
says where each code is reported: a module of ``procdsl/compiler/checks/`` for a check over the
elaborated curriculum, else the stage that needs the partly built value to decide (the parser,
the loader, the reader of a setting).

Ranges: E0xx syntax and input, E1xx unknown names, E2xx types and ranges, E3xx structure, W4xx
warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from procdsl.limits import MAX_IMPORT_DEPTH, MAX_NESTING, MAX_SOURCE_BYTES, MAX_SWEEP_VARIANTS


@dataclass(frozen=True)
class Code:
    """One diagnostic code: ``name`` is the module constant that call sites use."""

    code: str  # "E101"; printed in every diagnostic, never changed once published
    name: str  # "UNDEFINED_SOURCE"
    summary: str  # one line: what is wrong
    doc: str  # what triggers it and the fix
    raised_in: str  # where it is reported (a check module, or the elaboration step that needs it)

    @property
    def severity(self) -> Literal["error", "warning"]:
        return "warning" if self.code.startswith("W") else "error"


#: code string -> its entry, in code order
CODES: dict[str, Code] = {}


def _code(code: str, name: str, summary: str, doc: str, raised_in: str) -> str:
    if code in CODES or any(c.name == name for c in CODES.values()):
        raise ValueError(f"{code} {name} is registered twice")
    CODES[code] = Code(code, name, summary, doc, raised_in)
    return code


# ---------------------------------------------------------------- E0xx: syntax and input
UNEXPECTED_TOKEN = _code(
    "E001",
    "UNEXPECTED_TOKEN",
    "a token that cannot stand where it is written",
    "The parser found a word or symbol that the grammar does not allow there (a phase outside "
    "`curriculum`, `key: value` where `key = value` belongs); the message lists what may follow. "
    "Fix the text at the caret.",
    "lang/parse.py (the parser)",
)
UNEXPECTED_CHARACTER = _code(
    "E002",
    "UNEXPECTED_CHARACTER",
    "a character that starts no token, or an unterminated string",
    "A character the language has no use for (a single quote, a stray `%`), or a string without "
    'its closing `"` on the same line. Remove the character or close the string.',
    "lang/parse.py (the lexer)",
)
UNEXPECTED_END = _code(
    "E003",
    "UNEXPECTED_END",
    "the file ends in the middle of a construct",
    "The file ends where more is expected, usually a missing `}`. Close the open block.",
    "lang/parse.py (the parser)",
)
UNREADABLE_FILE = _code(
    "E004",
    "UNREADABLE_FILE",
    "the file to compile cannot be read",
    "The path does not exist, is not a regular file (a fifo, a device), is not UTF-8 text or is "
    f"larger than {MAX_SOURCE_BYTES // 2**20} MiB. Check the path.",
    "compiler/load.py (before parsing)",
)
BAD_OVERRIDE = _code(
    "E005",
    "BAD_OVERRIDE",
    "a `--set` item that is not `path=value`",
    "An override needs a dotted plan path, `=` and a value, e.g. `--set phases.warmup.steps=500`.",
    "compiler/overrides.py (reading the command line)",
)
UNKNOWN_ESCAPE = _code(
    "E006",
    "UNKNOWN_ESCAPE",
    "an unknown escape in a string",
    'Strings know `\\"` `\\\\` `\\n` `\\t` `\\r` `\\u{HEX}` only, so `"C:\\data"` is refused rather '
    "than silently changed. Double the backslash.",
    "lang/parse.py (the lexer)",
)
NESTING_TOO_DEEP = _code(
    "E007",
    "NESTING_TOO_DEEP",
    "brackets nested deeper than the limit",
    f"Brackets nest more than {MAX_NESTING} deep (every later stage recurses). Name the inner value with "
    "`let` and refer to it.",
    "lang/parse.py (before parsing)",
)
NUMBER_OUT_OF_RANGE = _code(
    "E008",
    "NUMBER_OUT_OF_RANGE",
    "a number beyond 1e300",
    "A literal no setting could hold (infinite as a float, or more than 301 digits). Write the "
    "number you mean; every setting has a far smaller maximum.",
    "lang/parse.py (the lexer)",
)

# ---------------------------------------------------------------- E1xx: unknown names
UNDEFINED_SOURCE = _code(
    "E101",
    "UNDEFINED_SOURCE",
    "a name where a source is expected that no `source` defines",
    "A mix entry, an eval or `bpe(train_on=…)` names a source that is not defined here or in an "
    "import. The help names the closest spelling.",
    "compiler/values.py (reading the name)",
)
UNDEFINED_RULE = _code(
    "E102",
    "UNDEFINED_RULE",
    "a rule name that is neither built in nor defined by `rule`",
    "`task(RULE)` or a `>>` chain names an unknown rule. The help names the closest spelling.",
    "compiler/sources.py (resolving rule chains)",
)
UNDEFINED_PHASE = _code(
    "E103",
    "UNDEFINED_PHASE",
    "an override or sweep key naming a phase that does not exist",
    "`--set phases.NAME.…` or a sweep key `phases.NAME.…` names no phase of the curriculum. The "
    "help names the closest phase or lists them.",
    "compiler/overrides.py (applying a path)",
)
UNKNOWN_KEY = _code(
    "E104",
    "UNKNOWN_KEY",
    "a setting, key or word outside those allowed there",
    "A curriculum, runtime or phase setting, a `transfer` key or a model component that does not "
    "exist. The help names the closest spelling or lists the allowed ones.",
    "compiler/values.py, compiler/settings.py (indexing settings)",
)
UNKNOWN_PARAMETER = _code(
    "E105",
    "UNKNOWN_PARAMETER",
    "a call given a parameter it does not have",
    "`dyck(kk=3)`: the call has no parameter of that name. The help names the closest one.",
    "compiler/values.py (binding a call)",
)
UNKNOWN_KIND = _code(
    "E106",
    "UNKNOWN_KIND",
    "an unknown source kind, model, optimizer, schedule or evaluation",
    "The name of a call is not one the language defines (`dyk(k=3)`). The help names the closest "
    "spelling; `procdsl explain` lists them.",
    "compiler/sources.py, settings.py, phases.py (reading the call)",
)
UNREADABLE_IMPORT = _code(
    "E108",
    "UNREADABLE_IMPORT",
    "an import that cannot be read as a `.curr` file",
    "The imported path does not end in `.curr`, does not exist, or is not a regular UTF-8 file. "
    "Import paths are relative to the importing file.",
    "compiler/load.py (following imports)",
)
SELF_REFERENCE = _code(
    "E109",
    "SELF_REFERENCE",
    "a `let` or `rule` defined in terms of itself",
    "A definition refers to itself, directly or through others, so it has no value. Break the cycle.",
    "compiler/values.py, compiler/sources.py (resolving the name)",
)
OVERRIDE_NAMES_NOTHING = _code(
    "E110",
    "OVERRIDE_NAMES_NOTHING",
    "an override path that names nothing in the plan",
    "`--set` or a sweep key whose path is not a setting, source parameter or phase key. The "
    "message says which part is wrong.",
    "compiler/overrides.py (applying a path)",
)

# ---------------------------------------------------------------- E2xx: types and ranges
WRONG_TYPE = _code(
    "E201",
    "WRONG_TYPE",
    "a value of the wrong type",
    '`lr="x"`, a fraction where a whole number is needed, steps where tokens are counted, a '
    "setting without a value. The message names the type expected.",
    "compiler/values.py (reading a value)",
)
BELOW_MINIMUM = _code(
    "E202",
    "BELOW_MINIMUM",
    "a number below its minimum (not positive)",
    "Steps, batch, context, shares and similar counts must be at least their minimum, usually 1. "
    "Give a larger value.",
    "compiler/values.py (reading a number)",
)
OUT_OF_RANGE = _code(
    "E203",
    "OUT_OF_RANGE",
    "a parameter outside its allowed range",
    "A generator or model parameter its validator refuses (`vocab < 3`, `k < 1`, `p_open > 1`), a "
    "value above its stated maximum (`procdsl/limits.py`), a schedule longer than its phase. The "
    "message states the bound.",
    "compiler/values.py (binding a call), compiler/phases.py (schedules)",
)
CANNOT_RAMP = _code(
    "E204",
    "CANNOT_RAMP",
    "a range or ramp on a parameter that cannot vary",
    "`1..8` or `ramp(a, b)` given to a parameter that is fixed for the whole phase (`vocab`). Give "
    "one value.",
    "compiler/values.py (binding a call)",
)
MISSING_REQUIRED = _code(
    "E205",
    "MISSING_REQUIRED",
    "a required setting or argument is missing",
    "A curriculum without `model`, `context`, `batch` or phases, a phase without `mix`, a call "
    "without its required argument. The help shows what to add.",
    "compiler/compile.py, phases.py, values.py (reading the block or call)",
)
INVALID_WORD = _code(
    "E206",
    "INVALID_WORD",
    "a word that is not one of those allowed for the setting",
    "`loss = fulll`, an unknown perturbation, a repeated parallel layout. The help names the closest "
    "word or lists them.",
    "compiler/values.py (reading a word)",
)
NOT_COMPOSABLE = _code(
    "E207",
    "NOT_COMPOSABLE",
    "a rule that cannot be composed with `>>`",
    "Only unary list rules chain; a binary rule or a generator cannot. The message says what the rule is.",
    "compiler/sources.py (resolving rule chains)",
)
WRONG_ARITY = _code(
    "E208",
    "WRONG_ARITY",
    "a call with the wrong number of arguments, or one given twice",
    "`dyck(3)` where a keyword is needed, `ramp` with other than two ends, a keyword repeated. "
    "Write the arguments the call takes.",
    "compiler/values.py, settings.py, phases.py (binding a call)",
)
BPE_NEEDS_TEXT = _code(
    "E209",
    "BPE_NEEDS_TEXT",
    "`bpe(train_on=…)` names a procedural source",
    "A BPE tokenizer trains on text, so `train_on` must name a data source (`hf`, `jsonl`, …). "
    "Name a text source.",
    "compiler/checks/tokenizer.py",
)
NOT_A_DIRECTORY = _code(
    "E210",
    "NOT_A_DIRECTORY",
    "`lm_eval(include_path=…)` is not a directory",
    "The path, relative to the `.curr` file, must name a directory of lm-eval task files.",
    "compiler/phases.py (reading `lm_eval`)",
)

# ---------------------------------------------------------------- E3xx: structure
MIX_SHARES = _code(
    "E301",
    "MIX_SHARES",
    "a mix that names no source or whose shares do not sum to 100%",
    "Both ends of a ramp must sum to 100%; at most one source takes `rest`, and it must be left "
    "something. The message shows the sum and the help the difference.",
    "compiler/checks/mix.py; `rest` in compiler/phases.py (it is resolved while the mix is read)",
)
TWO_REST_PHASES = _code(
    "E302",
    "TWO_REST_PHASES",
    "two phases take `length = rest`",
    "Only one phase can take what the budget leaves. Give the other an explicit length.",
    "compiler/checks/budget.py",
)
NEEDS_BUDGET = _code(
    "E303",
    "NEEDS_BUDGET",
    "`share` or `length = rest` without a curriculum `budget`",
    "A share of nothing has no length. Add e.g. `budget = 655M tokens` to the curriculum.",
    "compiler/checks/budget.py",
)
OVER_BUDGET = _code(
    "E304",
    "OVER_BUDGET",
    "phases take more tokens than the budget, or `rest` is left no step",
    "The fixed phases exceed `budget`, or leave the `rest` phase less than one step. Raise the "
    "budget or shorten a phase.",
    "compiler/lengths.py (it is the outcome of the arithmetic that assigns `rest` its steps)",
)
NO_PREVIOUS_PHASE = _code(
    "E305",
    "NO_PREVIOUS_PHASE",
    "`transfer` or `optimizer = continue` on the first phase",
    "There is no previous model or optimizer to take from. Remove it from the first phase.",
    "compiler/checks/transfer.py",
)
DUPLICATE_NAME = _code(
    "E306",
    "DUPLICATE_NAME",
    "a name defined twice, or a second curriculum in one file",
    "Sources, rules, lets and phases are unique in their namespace; a file holds one curriculum. "
    "Rename or remove one; the note points at the first.",
    "compiler/checks/names.py (phases); compiler/scope.py (definitions, while the scope is built); "
    "compiler/compile.py (a second curriculum, before there is one to elaborate)",
)
IMPORT_CYCLE = _code(
    "E307",
    "IMPORT_CYCLE",
    "files that import each other",
    "The message names the cycle. Move the shared definitions into a library both import.",
    "compiler/load.py (following imports)",
)
CONTEXT_TOO_SHORT = _code(
    "E308",
    "CONTEXT_TOO_SHORT",
    "a phase's row cannot hold a whole example of a source it trains on",
    "A procedural example is never cut, so `context + 1` must hold its longest one. Raise the "
    "phase's context or shorten the source's examples.",
    "compiler/checks/context.py",
)
LENGTH_NOT_ONCE = _code(
    "E309",
    "LENGTH_NOT_ONCE",
    "a phase with no length, or with two",
    "A phase has exactly one of `steps`, `tokens`, `share`, `length`. Keep one.",
    "compiler/phases.py (the length decides whether the phase elaborated cleanly)",
)
RUNTIME_REFUTED = _code(
    "E310",
    "RUNTIME_REFUTED",
    "a `runtime` setting the plan alone refutes",
    "A `microbatch` that does not divide a phase's batch, `tp` on a model without tensor "
    "parallelism, a `tp` that does not divide the attention heads.",
    "compiler/checks/runtime.py",
)
BAD_TRANSFER = _code(
    "E311",
    "BAD_TRANSFER",
    "a `transfer` map that contradicts itself",
    "A component both kept and re-initialised, or perturbed but not kept. Say once what happens "
    "to each component.",
    "compiler/phases.py (reading the transfer map)",
)
GIVEN_TWICE = _code(
    "E312",
    "GIVEN_TWICE",
    "a setting, block or mix entry given twice",
    "A key set twice in one block, a second `runtime` or `sweep` block, a source twice in a mix, a "
    "second `lm_eval`. Keep one.",
    "compiler/settings.py, phases.py, compile.py (indexing the block)",
)
SWEEP_TOO_LARGE = _code(
    "E313",
    "SWEEP_TOO_LARGE",
    "a sweep expanding to more variants than the limit",
    f"Counted before any variant is built (the limit is {MAX_SWEEP_VARIANTS:,}). Sweep fewer values, or split the "
    "sweep.",
    "compiler/sweep.py (before expanding)",
)
IMPORTS_TOO_DEEP = _code(
    "E314",
    "IMPORTS_TOO_DEEP",
    "imports chained deeper than the limit",
    f"More than {MAX_IMPORT_DEPTH} files imported through one another. Import the libraries you need directly.",
    "compiler/load.py (following imports)",
)
EVAL_WRONG_BLOCK = _code(
    "E315",
    "EVAL_WRONG_BLOCK",
    "an evaluation in the wrong kind of eval block",
    "`lm_eval` runs once at the phase's end (`eval { … }`); `perplexity` and the others need "
    "`eval every N steps { … }`.",
    "compiler/phases.py (reading the eval block)",
)
INTERNAL_ERROR = _code(
    "E399",
    "INTERNAL_ERROR",
    "a compiler bug, reported as a diagnostic of its file",
    "Never the file's fault. `check DIR` goes on with the next file; PROCDSL_DEBUG=1 shows the "
    "traceback. Please report it with the file.",
    "compiler/compile.py (around the whole compile)",
)

# ---------------------------------------------------------------- W4xx: warnings
UNUSED_SOURCE = _code(
    "W401",
    "UNUSED_SOURCE",
    "a source that no phase, eval or tokenizer uses",
    "Only the compiled file's own sources count; an imported library may define more. Use it or remove it.",
    "compiler/checks/usage.py",
)
EVAL_PERIOD_TOO_LONG = _code(
    "W402",
    "EVAL_PERIOD_TOO_LONG",
    "an eval period longer than its phase",
    "The evaluation would never run within the phase. Shorten the period.",
    "compiler/checks/usage.py",
)
EVAL_ON_TRAINING_SOURCE = _code(
    "W403",
    "EVAL_ON_TRAINING_SOURCE",
    "evaluating on a source the model trains on",
    "The numbers measure memorisation as much as generalisation. Evaluate on a held-out source.",
    "compiler/checks/usage.py",
)
SHARE_NOT_REALISED = _code(
    "W404",
    "SHARE_NOT_REALISED",
    "a mix share the phase cannot deliver within 10%",
    "The source's examples are too coarse for the phase's length (estimated from example sizes, "
    "nothing generated). Lengthen the phase or raise the share.",
    "compiler/checks/granularity.py",
)
