"""`procdsl lsp` driven over stdio with JSON-RPC, as an editor drives it: exact ranges and items.

One server process serves the module; each test opens its own documents (diagnostics are
matched by URI). Positions on the wire are 0-based.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("pygls")

from procdsl.compiler import compile_text  # noqa: E402
from procdsl.lsp.client import Client  # noqa: E402
from procdsl.lsp.positions import file_uri  # noqa: E402
from procdsl.registry.items import param_hover  # noqa: E402
from procdsl.registry.lookup import find  # noqa: E402

LIB = """# shared definitions
source dyck = dyck(k=4)
rule sorted_set = set >> sort
"""

BROKEN = """import "lib.curr"
import "missing.curr"
curriculum c {
  model   = gpt2(layers=1, heads=1, dim=8)
  context = 16
  batch   = 2
  source s = task(sorted_set, length=4)
  phase p {
    steps = 3
    mix   = { dyk: 100% }
  }
}
"""

UNFIXED = BROKEN.replace('import "missing.curr"\n', "")
FIXED = UNFIXED.replace("{ dyk: 100% }", "{ dyck: 50%, s: 50% }")


def rng(line, start, end, end_line=None):
    return {
        "start": {"line": line, "character": start},
        "end": {"line": line if end_line is None else end_line, "character": end},
    }


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    (root / "lib.curr").write_text(LIB)
    (root / "broken_lib.curr").write_text("source bad = dyck(k=0)\n")
    return root


@pytest.fixture(scope="module")
def client(ws):
    with Client() as c:
        c.initialize(str(ws))
        yield c


def opened(client, ws, name, text):
    """Open ws/name with ``text``; its path and the diagnostics first published for it."""
    path = str(ws / name)
    client.open(path, text)
    return path, client.diagnostics(path)


@pytest.fixture
def main(client, ws, request):
    """FIXED, open under a name of its own (tests may run in any order, on any worker)."""
    return opened(client, ws, f"{request.node.name}.curr", FIXED)[0]


def test_initialize_announces_every_feature(ws):
    with Client() as c:
        caps = c.initialize(str(ws))["capabilities"]
    for key in ("hoverProvider", "definitionProvider", "documentFormattingProvider", "inlayHintProvider"):
        assert caps[key]
    assert "=" in caps["completionProvider"]["triggerCharacters"]
    assert caps["codeActionProvider"]["codeActionKinds"] == ["quickfix"]


def test_did_open_reports_a_missing_import_at_the_import(client, ws):
    path, diagnostics = opened(client, ws, "missing_import.curr", BROKEN)
    target = str(ws / "missing.curr")
    assert diagnostics == [
        {
            "range": rng(1, 0, 21),
            "severity": 1,
            "code": "E108",
            "source": "procdsl",
            "message": f'cannot import "missing.curr": file not found ({target})',
            "relatedInformation": [
                {
                    "location": {"uri": file_uri(path), "range": rng(1, 0, 21)},
                    "message": "import paths are relative to the importing file's directory",
                }
            ],
        }
    ]


def test_did_open_reports_each_error_with_its_fix_and_did_change_clears_them(client, ws):
    path, diagnostics = opened(client, ws, "change.curr", UNFIXED)
    assert [(d["code"], d["severity"], d["range"]) for d in diagnostics] == [
        ("W401", 2, rng(5, 9, 10)),  # source `s` is never used
        ("E101", 1, rng(8, 14, 17)),  # undefined source `dyk` in mix
    ]
    check = compile_text(UNFIXED, path).diagnostics  # the same checks as `procdsl check`
    assert [d["message"] for d in diagnostics] == [d.message for d in check]
    assert [d["relatedInformation"] for d in diagnostics] == [
        [{"location": {"uri": file_uri(path), "range": d["range"]}, "message": c.help}]
        for d, c in zip(diagnostics, check)
    ]
    assert diagnostics[1]["relatedInformation"][0]["message"] == "did you mean `dyck`?"
    client.change(path, FIXED)
    assert client.diagnostics(path) == []


def test_code_action_applies_the_did_you_mean(client, ws):
    path, _ = opened(client, ws, "action.curr", UNFIXED)
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": file_uri(path)}, "range": rng(8, 15, 15), "context": {"diagnostics": []}},
    )
    assert [(a["title"], a["kind"], a["edit"]) for a in actions] == [
        (
            "Replace `dyk` with `dyck`",
            "quickfix",
            {"changes": {file_uri(path): [{"range": rng(8, 14, 17), "newText": "dyck"}]}},
        )
    ]
    assert actions[0]["diagnostics"][0]["code"] == "E101"
    elsewhere = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": file_uri(path)}, "range": rng(2, 0, 0), "context": {"diagnostics": []}},
    )
    assert elsewhere == []


def test_hover_on_a_setting_shows_the_registry_entry(client, main):
    path = main
    result = client.at("textDocument/hover", path, 3, 3)
    assert result == {
        "contents": {"kind": "markdown", "value": find("context", "curriculum setting").hover()},
        "range": rng(3, 2, 9),
    }


def test_hover_on_a_parameter_of_a_rule_task(client, main):
    path = main
    task = find("task", "source kind")
    result = client.at("textDocument/hover", path, 5, 33)
    assert result == {
        "contents": {"kind": "markdown", "value": param_hover(task, task.param("length"))},
        "range": rng(5, 30, 36),
    }


def test_hover_on_an_imported_rule_and_on_a_phase(client, main):
    path = main
    rule = client.at("textDocument/hover", path, 5, 20)["contents"]["value"]
    assert rule == "```\nrule sorted_set = set >> sort\n```\n\ndefined in `lib.curr` line 3"
    phase = client.at("textDocument/hover", path, 6, 8)
    assert phase == {
        "contents": {"kind": "markdown", "value": "**phase p** — 3 steps · 96 tokens"},
        "range": rng(6, 8, 9),
    }


def test_inlay_hint_after_each_phase_name(client, main):
    path = main
    hints = client.request(
        "textDocument/inlayHint", {"textDocument": {"uri": file_uri(path)}, "range": rng(0, 0, 0, 20)}
    )
    assert hints == [
        {"position": {"line": 6, "character": 9}, "label": "3 steps · 96 tokens", "paddingLeft": True}
    ]


def test_definition_of_sources_rules_and_imports(client, main, ws):
    path = main
    lib = file_uri(str(ws / "lib.curr"))
    assert client.at("textDocument/definition", path, 8, 16) == {"uri": lib, "range": rng(1, 7, 11)}  # dyck
    assert client.at("textDocument/definition", path, 8, 25) == {
        "uri": file_uri(path),
        "range": rng(5, 9, 10),
    }  # s
    assert client.at("textDocument/definition", path, 5, 22) == {
        "uri": lib,
        "range": rng(2, 5, 15),
    }  # sorted_set
    assert client.at("textDocument/definition", path, 0, 10) == {"uri": lib, "range": rng(0, 0, 0)}  # import
    assert client.at("textDocument/definition", path, 3, 3) is None  # a key


def test_error_in_an_imported_library_is_shown_in_the_library(client, ws):
    path = str(ws / "uses_broken.curr")
    client.open(path, 'import "broken_lib.curr"\n')
    lib = file_uri(str(ws / "broken_lib.curr"))
    published = client.wait("textDocument/publishDiagnostics", lambda p: p["uri"] == lib)["diagnostics"]
    assert [(d["code"], d["range"], d["message"]) for d in published] == [
        ("E203", rng(0, 20, 21), "invalid `k` for `dyck`: must be at least 1, got 0")
    ]


DRAFT_USER = """import "draft_lib.curr"
curriculum c {
  model = gpt2(layers=1, heads=1, dim=8)  context = 16  batch = 2
  phase p { steps = 3  mix = { fresh: 100% } }
}
"""


def test_imports_read_the_open_unsaved_library_until_it_is_closed(client, ws):
    lib = ws / "draft_lib.curr"
    lib.write_text("source stale = dyck(k=2)\n")
    path, diagnostics = opened(client, ws, "uses_draft.curr", DRAFT_USER)
    assert [(d["code"], d["range"]) for d in diagnostics] == [("E101", rng(3, 31, 36))]  # `fresh`
    client.open(str(lib), "source fresh = dyck(k=2)\n")  # typed in the editor, not saved
    assert client.diagnostics(path) == []
    assert client.at("textDocument/definition", path, 3, 32) == {
        "uri": file_uri(str(lib)),
        "range": rng(0, 7, 12),
    }
    client.change(str(lib), "source fresh = dyck(k=0)\n")  # an error while typing shows at once
    assert [d["code"] for d in client.diagnostics(str(lib))] == ["E203"]
    assert client.diagnostics(path) == []  # re-analysed; the library's error stays in the library
    client.close_document(str(lib))  # unsaved edits dropped: the file on disk counts again
    assert [d["code"] for d in client.diagnostics(path)] == ["E101"]


COMPLETE = """import "lib.curr"
curriculum c {
  source s = dyck(k=2)
  phase p {
    steps = 3
    mix = { s: 100% }
  }
  model = gpt2(layers=1, heads=1, dim=8)  context = 16  batch = 2
}
"""


def labels(client, path, line, character):
    return [i["label"] for i in client.at("textDocument/completion", path, line, character)["items"]]


def test_completion_offers_what_is_valid_at_the_cursor(client, ws):
    path, diagnostics = opened(client, ws, "complete.curr", COMPLETE)
    assert diagnostics == []
    client.change(
        path, COMPLETE.replace("    mix = { s: 100% }", "    mix = { ").replace("dyck(k=2)", "dyck(k=2, )")
    )
    assert labels(client, path, 5, 12) == ["dyck", "s"]  # sources, imported ones too
    assert labels(client, path, 2, 23) == ["length", "p_open", "max_depth"]  # parameters not yet given
    phase_keys = [i.name for i in __import__("procdsl.registry.settings", fromlist=["PHASE"]).PHASE]
    assert labels(client, path, 4, 13) == [k for k in phase_keys if k != "steps"] + ["eval"]
    items = client.at("textDocument/completion", path, 2, 23)["items"]
    assert (
        items[0]["insertText"] == "length="
        and items[0]["detail"] == "int, range or ramp · default: none · range: ≥ 2, even"
    )


def test_formatting_replaces_the_document_with_fmt_output(client, ws):
    path, _ = opened(client, ws, "fmt.curr", "curriculum c {  seed=1 }\n")
    edits = client.request(
        "textDocument/formatting",
        {"textDocument": {"uri": file_uri(path)}, "options": {"tabSize": 2, "insertSpaces": True}},
    )
    assert edits == [{"range": rng(0, 0, 0, 1), "newText": "curriculum c {\n  seed = 1\n}\n"}]


def test_formatting_a_file_with_a_syntax_error_changes_nothing(client, ws):
    path, diagnostics = opened(client, ws, "fmt_bad.curr", "curriculum c {  seed=\n")
    assert [d["code"] for d in diagnostics] == ["E003"]
    assert (
        client.request(
            "textDocument/formatting",
            {"textDocument": {"uri": file_uri(path)}, "options": {"tabSize": 2, "insertSpaces": True}},
        )
        == []
    )


def test_lsp_without_the_extra_says_what_to_install(tmp_path):
    (tmp_path / "pygls.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pygls'\", name='pygls')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "procdsl.cli", "lsp"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "pip install 'procdsl[lsp]'" in proc.stderr and "Traceback" not in proc.stderr


def test_the_server_does_not_import_torch():
    code = "import sys, procdsl.lsp.server; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_a_phase_end_eval_block_is_located_without_a_period():
    """``eval { lm_eval(…) }`` has no ``every``: its call and parameters still hover."""
    from procdsl.lang.lower import lower
    from procdsl.lang.parse import parse_text
    from procdsl.lsp.locate import locate

    text = 'curriculum c {\n  phase p {\n    eval { lm_eval(tasks=["t"], limit=3) }\n  }\n}\n'
    module = lower(parse_text(text, "c.curr")[0], "c.curr")
    call, param = locate(module, 3, 13), locate(module, 3, 33)
    assert (call.kind, call.name, call.roles) == ("call", "lm_eval", ("evaluation",))
    assert (param.kind, param.name, param.call) == ("param", "limit", "lm_eval")
    assert find("lm_eval", "evaluation").param("limit").doc.startswith("at most")
