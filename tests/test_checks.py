"""Every check of DESIGN.md §1 "Checks": its code, and where it points (line:column).

One row per rule: a snippet that breaks exactly that rule, the code it must raise, and the
1-based line and column of the span; codes that need more than one file's text (a path, an
override, a chain of imports, a compiler bug) have a row in ``SETUP_CASES``. Together they hold a
case for every code of ``procdsl/lang/codes.py`` (tests/test_codes.py keeps them in step). A
second table holds snippets that are fine, so a check that fires too eagerly fails too.
"""

from __future__ import annotations

import pytest
from conftest import PHASE, compile_snippet, snippet

from procdsl.lang.codes import CODES

TWO_PHASES = (
    PHASE
    + "\n  phase q {\n    steps = 10\n    transfer = { reinit: [embed, head] }\n    mix = { a: 100% }\n  }"
)

CASES = [
    # E0xx: syntax
    ("E001", "curriculum t {\n  seed: 1\n}\n", 2, 7),
    ("E001", "phase p { steps = 1 }\n", 1, 1),
    ("E002", 'curriculum t {\n  x = "abc\n}\n', 2, 7),
    ("E003", "curriculum t {\n  seed = 1\n", 2, 11),
    ("E006", 'let p = "C:\\data"\n', 1, 12),
    ("E007", "let x = " + "[" * 101 + "]" * 101 + "\n", 1, 109),
    ("E008", snippet(phases=PHASE.replace("\n  }", "\n    optimizer = adamw(lr=1e400)\n  }")), 12, 26),
    # E1xx: unknown names, with suggestions
    ("E101", snippet(phases="  phase p {\n    steps = 10\n    mix = { aa: 100% }\n  }"), 11, 13),
    ("E102", snippet(sources="  source c = task(srot, length=4)"), 8, 19),
    ("E103", snippet(settings="  sweep { phases.nope.steps: [1, 2] }", phases=PHASE), 5, 11),
    ("E104", snippet(settings="  contxt = 5"), 5, 3),
    ("E104", snippet(phases="  phase p {\n    stepz = 10\n    mix = { a: 50%, b: 50% }\n  }"), 10, 5),
    ("E105", snippet(sources="  source c = dyck(kk=3)"), 8, 19),
    ("E106", snippet(sources="  source c = dyk(k=3)"), 8, 14),
    ("E108", 'import "missing.curr"\n', 1, 1),
    ("E109", "let x = y\nlet y = x\nsource s = sort(length=x)\n", 1, 9),
    # E2xx: types and ranges
    (
        "E201",
        snippet(
            phases='  phase p {\n    steps = 10\n    mix = { a: 50%, b: 50% }\n    optimizer = adamw(lr="x")\n  }'
        ),
        12,
        26,
    ),
    ("E202", snippet(phases="  phase p {\n    steps = -3\n    mix = { a: 50%, b: 50% }\n  }"), 10, 13),
    ("E203", snippet(sources="  source c = sort(vocab=2)"), 8, 25),
    ("E203", snippet(sources="  source c = dyck(k=0)"), 8, 21),
    ("E203", snippet(sources="  source c = sort(length=0)"), 8, 26),
    ("E203", snippet(sources="  source c = dyck(p_open=ramp(0.2, 1.5))"), 8, 26),
    ("E204", snippet(sources="  source c = sort(vocab=ramp(10, 20))"), 8, 25),
    ("E205", "curriculum t {\n  context = 8\n  batch = 1\n}\n", 1, 12),
    (
        "E206",
        snippet(phases="  phase p {\n    steps = 10\n    mix = { a: 50%, b: 50% }\n    loss = fulll\n  }"),
        12,
        12,
    ),
    ("E207", "rule r = union >> sort\n", 1, 10),
    ("E208", snippet(sources="  source c = dyck(3)"), 8, 19),
    ("E209", snippet(settings="  tokenizer = bpe(vocab=300, train_on=a)"), 5, 15),
    (
        "E210",
        snippet(
            phases=PHASE.replace("\n  }", '\n    eval { lm_eval(tasks=["t"], include_path="missing") }\n  }')
        ),
        12,
        46,
    ),
    # E3xx: structure
    ("E301", snippet(phases="  phase p {\n    steps = 10\n    mix = { a: 60%, b: 30% }\n  }"), 11, 11),
    (
        "E302",
        snippet(
            settings="  budget = 100K tokens",
            phases="  phase p {\n    length = rest\n    mix = { a: 50%, b: 50% }\n  }\n  phase q {\n    length = rest\n    mix = { a: 100% }\n  }",
        ),
        14,
        5,
    ),
    ("E303", snippet(phases="  phase p {\n    share = 10%\n    mix = { a: 50%, b: 50% }\n  }"), 10, 5),
    ("E304", snippet(settings="  budget = 1K tokens"), 5, 3),
    (
        "E305",
        snippet(
            phases="  phase p {\n    steps = 10\n    transfer = { reinit: [head] }\n    mix = { a: 50%, b: 50% }\n  }"
        ),
        11,
        5,
    ),
    (
        "E305",
        snippet(
            phases="  phase p {\n    steps = 10\n    optimizer = continue\n    mix = { a: 50%, b: 50% }\n  }"
        ),
        11,
        5,
    ),
    ("E306", snippet(sources="  source a = sort(length=4)"), 8, 10),
    ("E306", snippet(phases=PHASE + "\n" + PHASE), 13, 9),
    ("E307", 'import "t.curr"\n', 1, 1),
    (
        "E308",
        snippet(
            sources="  source c = sort(length=40)",
            phases="  phase p {\n    steps = 10\n    mix = { a: 50%, c: 50% }\n  }",
        ),
        11,
        21,
    ),
    (
        "E309",
        snippet(phases="  phase p {\n    steps = 10\n    tokens = 5K\n    mix = { a: 50%, b: 50% }\n  }"),
        11,
        5,
    ),
    ("E310", snippet(settings="  runtime { microbatch = 3 }"), 5, 13),
    ("E310", snippet(settings="  runtime { parallel = [fsdp, tp(2)] }"), 5, 13),
    (
        "E311",
        snippet(
            phases=PHASE
            + "\n  phase q {\n    steps = 10\n    transfer = { keep: [attn], reinit: [attn] }\n    mix = { a: 100% }\n  }"
        ),
        15,
        16,
    ),
    ("E312", snippet(settings="  batch = 8"), 5, 3),
    (
        "E313",
        snippet(
            settings="  sweep { seed: ["
            + ", ".join(map(str, range(40)))
            + "], context: ["
            + ", ".join(map(str, range(64, 104)))
            + "] }"
        ),
        5,
        3,
    ),
    (
        "E315",
        snippet(phases=PHASE.replace("\n  }", '\n    eval every 5 steps { lm_eval(tasks=["t"]) }\n  }')),
        12,
        26,
    ),
    ("E315", snippet(phases=PHASE.replace("\n  }", "\n    eval { perplexity(a) }\n  }")), 12, 12),
    # warnings
    ("W401", snippet(sources="  source unused = sort()"), 8, 10),
    (
        "W402",
        snippet(
            phases="  phase p {\n    steps = 10\n    mix = { a: 50%, b: 50% }\n    eval every 50 steps { perplexity(c) }\n  }",
            sources="  source c = sort()",
        ),
        12,
        27,
    ),
    (
        "W403",
        snippet(
            phases="  phase p {\n    steps = 10\n    mix = { a: 50%, b: 50% }\n    eval every 5 steps { accuracy(a) }\n  }"
        ),
        12,
        26,
    ),
    ("W404", snippet(phases="  phase p {\n    steps = 3\n    mix = { a: rest, b: 3% }\n  }"), 11, 22),
]


@pytest.mark.parametrize(
    "code,text,line,column", CASES, ids=lambda v: v if isinstance(v, str) and len(v) == 4 else ""
)
def test_each_check_reports_its_code_at_its_span(code, text, line, column, tmp_path):
    path = tmp_path / "t.curr"
    path.write_text(text)
    from procdsl.compiler import compile_file

    result = compile_file(str(path))
    found = [(d.code, d.span.line, d.span.column) for d in result.diagnostics]
    assert (code, line, column) in found, found
    if code.startswith("E"):
        assert not result.plans


def _compile_with(text: str, *overrides: str):
    def build(tmp_path, monkeypatch):
        from procdsl.compiler import compile_file

        path = tmp_path / "t.curr"
        path.write_text(text)
        return compile_file(str(path), overrides)

    return build


def _unreadable_file(tmp_path, monkeypatch):
    from procdsl.compiler import compile_file

    return compile_file(str(tmp_path))  # a directory is not a file


def _import_chain(tmp_path, monkeypatch):
    from procdsl.compiler import compile_file
    from procdsl.limits import MAX_IMPORT_DEPTH

    for i in range(MAX_IMPORT_DEPTH + 1):
        (tmp_path / f"f{i}.curr").write_text(f'import "f{i + 1}.curr"\n')
    (tmp_path / f"f{MAX_IMPORT_DEPTH + 1}.curr").write_text("let y = 1\n")
    return compile_file(str(tmp_path / "f0.curr"))


def _compiler_bug(tmp_path, monkeypatch):
    import procdsl.compiler.compile as compile_module

    def crash(*args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(compile_module, "_compile", crash)
    return _compile_with(snippet())(tmp_path, monkeypatch)


#: codes that need more than the text of one file: (code, build(tmp_path, monkeypatch), line, column)
SETUP_CASES = [
    ("E004", _unreadable_file, 1, 1),
    ("E005", _compile_with(snippet(), "seed"), 1, 1),  # line 1 of the pseudo-file `--set`
    ("E110", _compile_with(snippet(), "nothing=1"), 1, 1),
    ("E314", _import_chain, 1, 1),
    ("E399", _compiler_bug, 1, 1),
]


@pytest.mark.parametrize("code,build,line,column", SETUP_CASES, ids=[c for c, *_ in SETUP_CASES])
def test_each_code_that_needs_a_setup_reports_it_at_its_span(
    code, build, line, column, tmp_path, monkeypatch
):
    result = build(tmp_path, monkeypatch)
    found = [(d.code, d.span.line, d.span.column) for d in result.diagnostics]
    assert (code, line, column) in found, found
    assert not result.plans


def test_every_code_has_a_case():
    """Both ways: each code of the registry has a row above, and each row's code is registered."""
    assert {c for c, *_ in CASES + SETUP_CASES} == set(CODES)


VALID = [
    snippet(),
    snippet(phases=PHASE.replace("steps = 10", "tokens = 100K")),
    snippet(
        settings="  budget = 1M tokens",
        phases=PHASE.replace("steps = 10", "share = 10%")
        + "\n  phase q {\n    length = rest\n    transfer = { keep: [attn, mlp, norm] }\n    mix = { a: 100% }\n  }",
    ),
    snippet(phases=PHASE.replace("mix = { a: 50%, b: 50% }", "mix = ramp({ a: 100% }, { b: 100% })")),
    snippet(
        sources="  rule sorted_set = set >> sort\n  source c = task(sorted_set, length=1..8)",
        phases=PHASE.replace("mix = { a: 50%, b: 50% }", "mix = { a: 20%, b: 30%, c: 50% }"),
    ),
    snippet(
        phases=PHASE + "\n  phase q {\n    steps = 5\n    optimizer = continue\n    mix = { b: 100% }\n  }"
    ),
    snippet(phases=PHASE.replace("mix = { a: 50%, b: 50% }", "mix = { a: rest, b: 10% }")),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_curricula_compile_without_diagnostics(text):
    result = compile_snippet(text)
    assert result.diagnostics == [] and result.plan is not None


def test_all_errors_of_a_file_are_reported_at_once():
    text = snippet(
        sources="  source c = dyk(k=3)\n  source d = sort(vocab=1)",
        phases="  phase p {\n    steps = -1\n    mix = { a: 60%, b: 30% }\n  }",
    )
    codes = sorted(d.code for d in compile_snippet(text).diagnostics if d.severity == "error")
    assert codes == ["E106", "E202", "E203", "E301"]


def test_suggestions_name_the_closest_spelling():
    result = compile_snippet(snippet(sources="  source c = dyk(k=3)"))
    assert any(d.help == "did you mean `dyck`?" for d in result.diagnostics)
    result = compile_snippet(
        snippet(phases="  phase p {\n    steps = 10\n    mix = { a: 50%, bb: 50% }\n  }")
    )
    assert any(d.help == "did you mean `b`?" for d in result.diagnostics)


def test_mix_sum_message_shows_the_sum_and_the_fix():
    result = compile_snippet(snippet(phases="  phase p {\n    steps = 10\n    mix = { a: 60%, b: 30% }\n  }"))
    (d,) = [d for d in result.diagnostics if d.code == "E301"]
    assert d.message == "mix shares sum to 90%, not 100%"
    assert d.help == "add 10% to a source, or change the shares"


def test_composing_a_binary_rule_says_which_and_why():
    (d,) = compile_snippet("rule r = set >> delete\n").diagnostics
    assert d.code == "E207" and "`delete`" in d.message and "binary" in d.message


def test_import_cycle_names_the_cycle(tmp_path):
    (tmp_path / "a.curr").write_text('import "b.curr"\n')
    (tmp_path / "b.curr").write_text('import "a.curr"\n')
    from procdsl.compiler import compile_file

    (d,) = compile_file(str(tmp_path / "a.curr")).diagnostics
    assert d.code == "E307" and "a.curr → b.curr → a.curr" in d.message


def test_library_files_are_checked_on_their_own(tmp_path):
    lib = tmp_path / "lib.curr"
    lib.write_text("rule sorted_set = set >> sort\nsource s = task(sorted_set, vocab=2)\n")
    from procdsl.compiler import compile_file

    result = compile_file(str(lib))
    assert result.is_library and [d.code for d in result.diagnostics] == ["E203"]


def test_imports_bring_definitions_into_scope(tmp_path):
    (tmp_path / "lib.curr").write_text(
        "rule sorted_set = set >> sort\nsource s = task(sorted_set, length=8)\nlet lr = 1e-3\n"
    )
    (tmp_path / "main.curr").write_text(
        'import "lib.curr"\n'
        + snippet(
            phases="  phase p {\n    steps = 10\n    mix = { s: 100% }\n    optimizer = adamw(lr=lr)\n  }"
        )
    )
    from procdsl.compiler import compile_file

    result = compile_file(str(tmp_path / "main.curr"))
    assert [d.code for d in result.diagnostics if d.severity == "error"] == []
    assert result.plan.sources["s"].rule == ("set", "sort")
    assert result.plan.phases[0].optimizer.lr == 1e-3


PERTURB_PHASE = PHASE + (
    "\n  phase q {\n    steps = 5\n    transfer = { keep: [attn, mlp], perturb: PERTURB }\n"
    "    mix = { a: 100% }\n    eval every 5 steps { attention_entropy(b, batches=2) }\n  }"
)


def test_transfer_perturbations_and_attention_entropy_compile():
    plan = compile_snippet(
        snippet(phases=PERTURB_PHASE.replace("PERTURB", "{ attn: shuffle, mlp: scale(0.5) }"))
    ).plan
    transfer = plan.phases[1].transfer
    assert {c: (p.kind, p.amount) for c, p in transfer.perturb.items()} == {
        "attn": ("shuffle", None),
        "mlp": ("scale", 0.5),
    }
    assert plan.phases[1].eval[0].kind == "attention_entropy"


@pytest.mark.parametrize(
    "perturb,code",
    [
        ("{ attn: shufle }", "E206"),
        ("{ embed: noise(0.1) }", "E311"),
        ("{ attn: noise }", "E203"),
        ("{ atn: shuffle }", "E104"),
        ("{ attn: scale(-1) }", "E203"),
    ],
)
def test_bad_perturbations(perturb, code):
    result = compile_snippet(snippet(phases=PERTURB_PHASE.replace("PERTURB", perturb)))
    assert code in [d.code for d in result.diagnostics if d.severity == "error"]


def test_unused_warning_spares_imported_library_sources(tmp_path):
    (tmp_path / "lib.curr").write_text("source s = sort(length=8)\nsource spare = reverse(length=8)\n")
    (tmp_path / "main.curr").write_text(
        'import "lib.curr"\n'
        + snippet(
            sources="  source mine = sort(length=4)",
            phases="  phase p {\n    steps = 10\n    mix = { s: 50%, a: 25%, b: 25% }\n  }",
        )
    )
    from procdsl.compiler import compile_file

    warned = [d.message for d in compile_file(str(tmp_path / "main.curr")).diagnostics if d.code == "W401"]
    assert warned == ["source `mine` is never used"]


@pytest.mark.parametrize(
    "parallel,message",
    [
        ("tp", "`tp` is not a parallel layout"),
        ("[fsdp, fsdp]", "`fsdp` is given twice"),
        ("tp(2, 3)", "`tp` takes one number"),
        ("tp(0)", "`tp` must be at least 1"),
        ("[fsdp(shard=2), tp(3)]", "does not divide the model's 4 attention heads"),
    ],
)
def test_parallel_layouts_that_are_refused(parallel, message):
    text = snippet(settings=f"  runtime {{ parallel = {parallel} }}").replace(
        "gpt2(layers=2, heads=2", "llama(layers=2, heads=4"
    )
    result = compile_snippet(text)
    assert not result.plans and any(message in d.message for d in result.diagnostics), result.diagnostics


def test_rest_takes_what_the_other_shares_leave():
    plan = compile_snippet(snippet(phases=PHASE.replace("{ a: 50%, b: 50% }", "{ a: rest, b: 0.3% }"))).plan
    assert plan.phases[0].mix == {"a": 0.997, "b": 0.003}
    ramp = compile_snippet(
        snippet(phases=PHASE.replace("{ a: 50%, b: 50% }", "ramp({ a: rest, b: 20% }, { a: 10%, b: rest })"))
    ).plan
    assert ramp.phases[0].mix_ramp.start == {"a": 0.8, "b": 0.2} and ramp.phases[0].mix_ramp.end == {
        "a": 0.1,
        "b": 0.9,
    }


@pytest.mark.parametrize(
    "mix, message",
    [
        ("{ a: rest, b: rest }", "two sources take `rest` in one mix (`a` and `b`)"),
        ("{ a: rest, b: 100% }", "`a: rest` gets nothing: the other shares already sum to 100%"),
    ],
)
def test_rest_in_a_mix_is_refused_when_it_means_nothing(mix, message):
    result = compile_snippet(snippet(phases=PHASE.replace("{ a: 50%, b: 50% }", mix)))
    assert [(d.code, d.message) for d in result.diagnostics] == [("E301", message)] and not result.plans


def test_w404_estimate_agrees_with_the_stream():
    """The warning's estimate (no data generated) against the shares the stream really delivers."""
    from procdsl.stream import PhaseStream

    for mix, steps, warned in (("{ a: rest, b: 3% }", 3, True), ("{ a: 90%, b: 10% }", 50, False)):
        result = compile_snippet(snippet(phases=f"  phase p {{\n    steps = {steps}\n    mix = {mix}\n  }}"))
        assert ("W404" in [d.code for d in result.diagnostics]) is warned
        stream = PhaseStream(result.plan, "p")
        for _ in stream:
            pass
        tokens = dict(zip(stream.sources, stream.totals["tokens"]))
        realised = tokens["b"] / sum(tokens.values())
        asked = result.plan.phases[0].mix["b"]
        assert (abs(realised - asked) > 0.1 * asked) is warned, realised


LM_EVAL = PHASE.replace("\n  }", "\n    eval { CALL }\n  }")


@pytest.mark.parametrize(
    "call, code, at, message",
    [
        ("lm_eval(tasks=[])", "E205", "[]", "`lm_eval` needs at least one task"),
        ("lm_eval()", "E205", "lm_eval", "`lm_eval` needs `tasks`"),
        (
            'lm_eval(tasks=["t", arc])',
            "E201",
            "arc",
            "`lm_eval` tasks are strings (lm-eval task names), found a name",
        ),
        ('lm_eval(tasks="t")', "E201", '"t"', "`tasks` expects a list of lm-eval task names, found a string"),
        ('lm_eval(tasks=["t"], limit=0)', "E202", "0", "`limit` must be at least 1, got 0"),
        ('lm_eval(tasks=["t"], batch_size=0)', "E202", "0", "`batch_size` must be at least 1, got 0"),
        ('lm_eval(tasks=["t"], lmit=5)', "E105", "lmit", "`lm_eval` has no parameter `lmit`"),
        (
            'lm_eval(tasks=["t"]) lm_eval(tasks=["u"])',
            "E312",
            'lm_eval(tasks=["u"])',
            "a second `lm_eval` in phase `p`",
        ),
        (
            'lm_eval(tasks=["t"], include_path="t.curr")',
            "E210",
            '"t.curr"',
            "`include_path` is not a directory",
        ),
    ],
)
def test_lm_eval_arguments_are_checked_where_they_are_written(call, code, at, message, tmp_path):
    """Each bad argument of ``eval { lm_eval(…) }`` is reported at that argument (line 12; the
    call starts at column 12, ``at`` is the text the error points at)."""
    from procdsl.compiler import compile_file

    path = tmp_path / "t.curr"
    path.write_text(snippet(phases=LM_EVAL.replace("CALL", call)))
    result = compile_file(str(path))
    found = [(d.code, d.span.line, d.span.column) for d in result.diagnostics]
    assert found == [(code, 12, 12 + call.index(at))] and message in result.diagnostics[0].message, found
    assert not result.plans


def test_lm_eval_include_path_is_resolved_against_the_curr_file(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "t.curr"
    path.write_text(
        snippet(phases=LM_EVAL.replace("CALL", 'lm_eval(tasks=["t"], include_path="../tasks", limit=3)'))
    )
    from procdsl.compiler import compile_file

    lm_eval = compile_file(str(path)).plan.phases[0].lm_eval
    assert lm_eval.include_path == str(tmp_path / "tasks") and lm_eval.tasks == ("t",) and lm_eval.limit == 3
