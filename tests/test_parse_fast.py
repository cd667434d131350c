"""The compiler's parse (:func:`parse_module`: the AST built while parsing, spans from tokens)
equals Lark's tree lowered (:func:`parse_text` with ``propagate_positions``, then :func:`lower`):
the same nodes with the same spans, the same comments, the same syntax diagnostics — on every
.curr file of the repository and on the fuzz corpus."""

from __future__ import annotations

import pytest
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import mutated, token_soup

from procdsl.lang.lower import lower
from procdsl.lang.parse import SyntaxDiagnostic, parse_module, parse_text

FILES = sorted(p for p in REPO.rglob("*.curr") if not {".venv", ".git"} & set(p.relative_to(REPO).parts))


def _outcome(parse, post, text: str):
    try:
        result, comments = parse(text, "t.curr")
    except SyntaxDiagnostic as exc:
        return "error", exc.diagnostic
    positions = [(c.type, c.value, c.line, c.column, c.end_line, c.end_column) for c in comments]
    return "ok", post(result), positions


def _assert_same(text: str) -> None:
    built = _outcome(parse_module, lambda module: module, text)
    lowered = _outcome(parse_text, lambda tree: lower(tree, "t.curr"), text)
    assert built == lowered


def test_the_repository_has_curricula():
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_curr_file_parses_to_the_same_ast(path):
    _assert_same(path.read_text())


BLANKS = {
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "tabs": lambda t: t.replace("  ", "\t"),
    "mixed": lambda t: t.replace("\n", " \r\n\t "),
    "bom": lambda t: "\ufeff" + t,
    "trailing": lambda t: t + "\n\n  \t",
    "split": lambda t: t.replace(" = ", "=\n"),
}


@pytest.mark.parametrize("blanks", BLANKS)
def test_every_curr_file_with_other_blanks_parses_to_the_same_ast(blanks):
    for path in FILES:
        _assert_same(BLANKS[blanks](path.read_text()))


SAME = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@SAME
@given(mutated())
def test_mutated_curricula_parse_to_the_same_ast_or_diagnostic(text):
    _assert_same(text)


@SAME
@given(st.one_of(token_soup, st.text(max_size=200)))
def test_random_text_parses_to_the_same_ast_or_diagnostic(text):
    _assert_same(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# only a comment",
        ";;",
        "let a = ((1))  # c",
        "rule r = (a) >> (b(k=(2), 3),)",
        'curriculum c { seed = [1, (2,), {a: 1, "b c": 2}] ; runtime { x  y = 1 } sweep { a.b: [1, 2], c: 1..3 }\n'
        "  phase p { steps = (5 steps) eval every (5 steps) { f(), g(1) } eval {} } }\ncurriculum d {}",
    ],
)
def test_corner_cases_parse_to_the_same_ast(text):
    _assert_same(text)


def test_a_repeated_parse_is_served_again_with_its_own_comment_list():
    text = "let a = 1  # one\nlet b = 2  # two\n"
    first, comments = parse_module(text, "r.curr")
    comments.append("not theirs")
    again, comments_again = parse_module(text, "r.curr")
    assert again is first and [c.value for c in comments_again] == ["# one", "# two"]
    assert parse_module(text, "r.curr", comments=False)[1] == []
    elsewhere = parse_module(text, "other.curr")[0]  # spans name the file: another file, another parse
    assert elsewhere.definitions[0].span.file == "other.curr"


def test_parses_in_threads_keep_their_own_file_and_comments():
    from concurrent.futures import ThreadPoolExecutor

    def parse(i: int):
        text = "".join(f"let a{k} = {k}  # c{i}\n" for k in range(200 + i))
        module, comments = parse_module(text, f"t{i}.curr")
        return i, {d.span.file for d in module.definitions}, {c.value for c in comments}

    with ThreadPoolExecutor(4) as pool:
        for i, files, comments in pool.map(parse, range(16)):
            assert files == {f"t{i}.curr"} and comments == {f"# c{i}"}


def test_first_characters_of_terminals_are_read_conservatively():
    from procdsl.lang.lark_loops import _first_chars

    assert _first_chars(r"-?[0-9]+(\.[0-9]+)?[KMBT]?(?![A-Za-z])") == frozenset("-0123456789")
    assert _first_chars(r"[ \t\r\n]+") == frozenset(" \t\r\n")
    assert _first_chars(r"a|b?c") == frozenset("abc") and _first_chars(r"(ab)*c") == frozenset("ac")
    # what it cannot enumerate, it does not guess: the loop then leaves blanks to the state's regex
    assert (
        _first_chars(r"\s+") is None and _first_chars(r"[^#]+") is None and _first_chars("(?i:let)") is None
    )


def test_a_repeated_syntax_error_is_the_same_diagnostic():
    raised = []
    for _ in range(2):
        with pytest.raises(SyntaxDiagnostic) as error:
            parse_module("curriculum c { phase p { steps = } }", "bad.curr")
        raised.append(error.value.diagnostic)
    assert raised[0] == raised[1] and raised[0].code == "E001"
