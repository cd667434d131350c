"""Data readers: each source kind on small local data, splits, determinism, every bad-data error."""

from __future__ import annotations

import itertools
import json
import math
import re
from fractions import Fraction
from pathlib import Path

import pytest

from procdsl.data import DataError, ReadStats, iter_documents, validate
from procdsl.data.document import decode_utf8
from procdsl.data.python_code import SKIP_DIRS, stdlib_corpus
from procdsl.plan.sources import (
    DM_MATH_MODULES,
    DmMathSource,
    DyckSource,
    HfSource,
    JsonlSource,
    ParquetSource,
    PythonCodeSource,
    TextSource,
)


def write_jsonl(path: Path, texts, field="text") -> Path:
    path.write_text("".join(json.dumps({field: t, "id": i}) + "\n" for i, t in enumerate(texts)))
    return path


def texts(source, split="all", **kwargs):
    return [doc.text for doc in iter_documents(source, split, **kwargs)]


# ------------------------------------------------------------------------------ jsonl


def test_jsonl_reads_records_in_order_skipping_blank_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"body": "one"}\n\n{"body": "two"}\n   \n{"body": "three"}\n')
    docs = list(iter_documents(JsonlSource(path=str(path), field="body"), "all"))
    assert [d.text for d in docs] == ["one", "two", "three"]
    assert [d.origin for d in docs] == [f"{path}:1", f"{path}:3", f"{path}:5"]


def test_jsonl_glob_reads_files_in_sorted_order(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", ["b0", "b1"])
    write_jsonl(tmp_path / "a.jsonl", ["a0"])
    assert texts(JsonlSource(path=str(tmp_path / "*.jsonl"))) == ["a0", "b0", "b1"]


@pytest.mark.parametrize(
    "content, line, message",
    [
        ('{"text": "ok"}\n{"text": oops}\n', 2, "not JSON"),
        ('{"text": "ok"}\n{"body": "x"}\n', 2, "no field 'text' (its fields: body)"),
        ('{"text": 3}\n', 1, "field 'text' is int, not a string"),
        ('{"text": "ok"}\n\n["text"]\n', 3, "expected a JSON object, got list"),
    ],
)
def test_jsonl_bad_record_names_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    source = JsonlSource(path=str(path))
    with pytest.raises(DataError) as caught:
        list(iter_documents(source, "all"))
    assert caught.value.path == str(path) and caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ") and message in str(caught.value)
    if line == 1:  # validate reads each file's first record
        with pytest.raises(DataError, match=re.escape(f"{path}:1: ")):
            validate(source)
    else:
        validate(source)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.jsonl", None, "missing.jsonl: file not found"),
        ("nothing*.jsonl", None, "nothing*.jsonl: the pattern matches no file"),
        ("empty.jsonl", "", "empty.jsonl: "),
        ("blank.jsonl", "\n\n", "blank.jsonl: "),
    ],
)
def test_jsonl_missing_or_empty_files(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    source = JsonlSource(path=str(tmp_path / name))
    for action in (lambda: validate(source), lambda: list(iter_documents(source, "all"))):
        with pytest.raises(DataError, match=re.escape(message)) as caught:
            action()
        if content is not None:
            assert re.search("file is empty|file has no JSON record", str(caught.value))


def test_undecodable_bytes_become_replacement_characters_and_are_counted(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "caf\xe9"}\n{"text": "fine"}\n')
    stats = ReadStats()
    docs = list(iter_documents(JsonlSource(path=str(path)), "all", stats=stats))
    assert docs[0].text == "caf\ufffd" and docs[0].replaced == 1 and docs[1].replaced == 0
    assert (stats.documents, stats.replaced, stats.files) == (2, 1, 1)


def test_decode_utf8_matches_python_replace_and_counts():
    for data in [b"ok", b"\xff", b"a\xc3(b", b"\xe2\x82", "é".encode() + b"\x80\x80"]:
        text, count = decode_utf8(data)
        assert text == data.decode("utf-8", "replace")
        assert count == text.count("\ufffd")


# ------------------------------------------------------------------------------ text


def test_text_glob_each_file_one_document(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("bee")
    (tmp_path / "a.txt").write_text("ay\nsecond line")
    (tmp_path / "sub" / "c.txt").write_text("sea")
    (tmp_path / "skip.md").write_text("not matched")
    assert texts(TextSource(path=str(tmp_path / "**" / "*.txt"))) == ["ay\nsecond line", "bee", "sea"]
    assert texts(TextSource(path=str(tmp_path / "a.txt"))) == ["ay\nsecond line"]
    info = validate(TextSource(path=str(tmp_path / "*.txt")))
    assert info.files == (str(tmp_path / "a.txt"), str(tmp_path / "b.txt")) and info.bytes == 17


def test_text_errors_name_the_file(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "empty.txt").write_bytes(b"")
    source = TextSource(path=str(tmp_path / "*.txt"))
    for action in (lambda: validate(source), lambda: list(iter_documents(source, "all"))):
        with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'empty.txt'}: file is empty")):
            action()
    with pytest.raises(DataError, match="is a directory: name a file, or a glob"):
        validate(TextSource(path=str(tmp_path)))
    with pytest.raises(DataError, match="file not found"):
        list(iter_documents(TextSource(path=str(tmp_path / "none.txt")), "all"))


def test_text_bad_bytes_are_replaced(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfehello\x80")
    stats = ReadStats()
    (doc,) = iter_documents(TextSource(path=str(tmp_path / "bin.txt")), "all", stats=stats)
    assert doc.text == "\ufffd\ufffdhello\ufffd" and doc.replaced == 3 == stats.replaced


# ------------------------------------------------------------------------------ parquet


def write_parquet(path: Path, columns: dict) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path, row_group_size=2)
    return path


def test_parquet_reads_column_across_files_and_row_groups(tmp_path):
    write_parquet(tmp_path / "b.parquet", {"content": ["b0", "b1", "b2"], "n": [1, 2, 3]})
    write_parquet(tmp_path / "a.parquet", {"content": ["a0"], "n": [0]})
    source = ParquetSource(path=str(tmp_path / "*.parquet"), field="content")
    docs = list(iter_documents(source, "all"))
    assert [d.text for d in docs] == ["a0", "b0", "b1", "b2"]
    assert docs[2].origin == f"{tmp_path / 'b.parquet'}#1"
    assert "2 file(s)" in validate(source).description


def test_parquet_errors_name_the_file(tmp_path):
    good = write_parquet(tmp_path / "good.parquet", {"text": ["x"]})
    cases = [
        (ParquetSource(path=str(good), field="body"), "has no column 'body' (its columns: text)"),
        (
            ParquetSource(path=str(write_parquet(tmp_path / "ints.parquet", {"text": [1, 2]}))),
            "column 'text' holds int64, not strings",
        ),
        (
            ParquetSource(path=str(write_parquet(tmp_path / "null.parquet", {"text": ["a", None]}))),
            "row 1: column 'text' is null",
        ),
    ]
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    cases.append((ParquetSource(path=str(garbage)), "not a readable parquet file"))
    for source, message in cases:
        with pytest.raises(DataError, match=re.escape(message)) as caught:
            list(iter_documents(source, "all"))
        assert caught.value.path == source.path
    with pytest.raises(DataError, match="not a readable parquet file"):
        validate(ParquetSource(path=str(garbage)))


# ------------------------------------------------------------------------------ hf


def test_hf_streams_a_local_json_dataset(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", ["first", "second", "third"])
    source = HfSource(dataset="json", data_files=(str(path),))
    docs = list(iter_documents(source, "all"))
    assert [d.text for d in docs] == ["first", "second", "third"]
    assert docs[1].origin == "json[train]#1"
    assert "first row's 'text' has 5 characters" in validate(source).description
    # a local directory is a dataset too, read by the same load_dataset call
    assert texts(HfSource(dataset=str(tmp_path))) == ["first", "second", "third"]


def test_hf_errors_are_data_errors(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", ["x"], field="body")
    with pytest.raises(DataError, match=r"row 0 has no field 'text' \(its fields: body, id\)"):
        validate(HfSource(dataset="json", data_files=(str(path),)))
    with pytest.raises(DataError, match="a data file was not found"):
        validate(HfSource(dataset="json", data_files=(str(tmp_path / "none.jsonl"),)))
    with pytest.raises(DataError, match="split 'validation'.* cannot be opened: Bad split"):
        validate(HfSource(dataset=str(tmp_path), split="validation"))


def test_hf_unreachable_dataset_says_so(monkeypatch):
    import datasets
    import huggingface_hub.constants

    # offline mode fails at once, like a machine without network but without its retries
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError) as caught:
        validate(HfSource(dataset="allenai/c4", name="en"))
    assert str(caught.value).startswith("dataset allenai/c4 cannot be reached offline: ")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# ------------------------------------------------------------------------------ splits


def test_heldout_and_train_are_disjoint_complementary_and_stable(tmp_path):
    corpus = [f"document number {i}" for i in range(400)] + ["duplicate"] * 5
    source = JsonlSource(path=str(write_jsonl(tmp_path / "c.jsonl", corpus)), heldout=0.2)
    train, held = texts(source, "train"), texts(source, "heldout")
    assert not set(train) & set(held)
    assert sorted(train + held) == sorted(corpus)
    assert 40 < len(held) < 120  # about 20% of 405
    assert texts(source, "train") == train and texts(source, "heldout") == held
    # the split depends on the text only: another file with the same documents agrees
    other = JsonlSource(path=str(write_jsonl(tmp_path / "d.jsonl", corpus[::-1])), heldout=0.2)
    assert sorted(texts(other, "heldout")) == sorted(held)


def test_split_edge_cases(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [f"doc {i}" for i in range(50)] + [""])
    assert texts(JsonlSource(path=str(path), heldout=0.0), "heldout") == []
    stats = ReadStats()
    assert len(texts(JsonlSource(path=str(path), heldout=0.0), "train", stats=stats)) == 50
    assert stats.empty == 1 and stats.documents == 50
    with pytest.raises(ValueError, match="split must be one of train, heldout, all"):
        iter_documents(JsonlSource(path=str(path)), "validation")
    with pytest.raises(TypeError, match="'dyck' is not a data source"):
        iter_documents(DyckSource(), "train")


def test_start_skips_documents(tmp_path):
    source = JsonlSource(path=str(write_jsonl(tmp_path / "c.jsonl", [f"d{i}" for i in range(30)])))
    assert texts(source, "train", start=7) == texts(source, "train")[7:]


# ------------------------------------------------------------------------------ python_code


def test_python_code_is_the_sorted_standard_library_without_tests():
    corpus = stdlib_corpus()
    relative = [rel for rel, _ in corpus.files]
    assert relative == sorted(relative) and len(relative) > 300
    assert "json/decoder.py" in relative and "os.py" in relative
    assert not any(set(rel.split("/")[:-1]) & SKIP_DIRS for rel in relative)
    docs = list(itertools.islice(iter_documents(PythonCodeSource(), "all"), 3))
    assert [d.origin for d in docs] == [f"stdlib/{rel}" for rel in relative[:3]]
    info = validate(PythonCodeSource())
    assert f"{len(relative):,} files, {corpus.bytes:,} bytes of the Python 3." in info.description


def test_python_code_splits_are_disjoint():
    source = PythonCodeSource(heldout=0.05)
    held = [d.origin for d in iter_documents(source, "heldout")]
    train = [d.origin for d in iter_documents(source, "train")]
    assert held and not set(held) & set(train)
    assert len(held) + len(train) <= len(stdlib_corpus().files)  # minus duplicate texts


# ------------------------------------------------------------------------------ dm_math


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % k for k in range(2, math.isqrt(n) + 1))


def _evaluate(expression: str) -> Fraction:
    return eval(re.sub(r"(-?\d+)", r"Fraction(\1)", expression), {"Fraction": Fraction})


_UNIT_WORDS = {
    "ten": 10,
    "one hundred": 100,
    "one thousand": 1000,
    "ten thousand": 10**4,
    "one hundred thousand": 10**5,
    "one million": 10**6,
}


def solve(module: str, question: str) -> str:
    """An independent solver for each module's wording (checks the generator's answers)."""
    nums = [int(x) for x in re.findall(r"-?\d+", question)]
    if module == "arithmetic__add_or_sub":
        if question.startswith(("Subtract", "Take")):
            return str(nums[1] - nums[0])
        subtract = any(w in question for w in (" minus ", " - ", "difference"))
        return str(nums[0] - nums[1] if subtract else nums[0] + nums[1])
    if module == "arithmetic__mul":
        return str(nums[0] * nums[1])
    if module == "arithmetic__div":
        value = Fraction(nums[0], nums[1])
        assert value.denominator == 1
        return str(value.numerator)
    if module == "arithmetic__mixed":
        expression = re.sub(
            r"^(What is the value of|What is|Evaluate|Calculate|Work out) ", "", question
        ).rstrip("?.")
        value = _evaluate(expression)
        assert value.denominator == 1
        return str(value.numerator)
    if module == "numbers__gcd":
        return str(math.gcd(*nums))
    if module == "numbers__lcm":
        return str(math.lcm(*nums))
    if module == "numbers__is_prime":
        return str(_is_prime(nums[0]) != ("composite" in question))
    if module == "numbers__round_number":
        unit = _UNIT_WORDS[re.search(r"nearest (.+?)[?.]$", question).group(1)]
        assert Fraction(nums[0], unit) % 1 != Fraction(1, 2)
        return str(round(Fraction(nums[0], unit)) * unit)
    if module == "algebra__linear_1d":
        left, right, var = re.fullmatch(r"Solve (.+) = (.+) for (\w)\.", question).groups()

        def f(x):  # left - right, a linear function of the variable
            return _evaluate(left.replace(var, f"({x})")) - _evaluate(right.replace(var, f"({x})"))

        slope = f(1) - f(0)
        assert slope != 0  # exactly one solution
        solution = -f(0) / slope
        assert solution.denominator == 1
        return str(solution.numerator)
    if module == "comparison__sort":
        descending = "desc" in question or "decreas" in question
        return ", ".join(map(str, sorted(nums, reverse=descending)))
    if module == "comparison__closest":
        target, values = nums[0], nums[1:]
        best = min(range(len(values)), key=lambda k: abs(values[k] - target))
        assert sorted(abs(v - target) for v in values)[:2].count(abs(values[best] - target)) == 1
        return "abcde"[best] if "(a)" in question else str(values[best])
    raise KeyError(module)


@pytest.mark.parametrize("module", DM_MATH_MODULES)
def test_dm_math_answers_are_exact(module):
    docs = list(itertools.islice(iter_documents(DmMathSource(modules=(module,)), "all"), 150))
    for doc in docs:
        question, answer = doc.prompt, doc.answer
        assert question.endswith("\n") and doc.text == question + answer
        assert solve(module, question[:-1]) == answer, doc.text
    assert len({d.prompt for d in docs}) > 100  # varied problems ...
    assert len({re.sub(r"-?\d+", "N", d.prompt) for d in docs}) > 2  # ... and wordings


def test_dm_math_is_deterministic_and_seeded():
    source = DmMathSource()
    first = [d.text for d in itertools.islice(iter_documents(source, "train", seed=1), 300)]
    again = [d.text for d in itertools.islice(iter_documents(source, "train", seed=1), 300)]
    other = [d.text for d in itertools.islice(iter_documents(source, "train", seed=2), 300)]
    assert first == again and first != other
    assert any("Solve" in t for t in first) and any("common" in t for t in first)  # mixed
    resumed = [d.text for d in itertools.islice(iter_documents(source, "train", seed=1, start=100), 200)]
    assert resumed == first[100:]


def test_dm_math_heldout_is_disjoint_from_train():
    source = DmMathSource(modules=("numbers__gcd", "comparison__sort"), heldout=0.05)
    train = list(itertools.islice(iter_documents(source, "train"), 4000))
    held = list(itertools.islice(iter_documents(source, "heldout"), 400))
    assert not {d.prompt for d in train} & {d.prompt for d in held}
    assert not {d.origin for d in train} & {d.origin for d in held}  # one index space, split

    # the split hashes the numbers, not the wording: same numbers, same side
    def gcd_numbers(docs):
        return {tuple(re.findall(r"\d+", d.prompt)) for d in docs if "common" in d.prompt}

    assert gcd_numbers(held) and not gcd_numbers(train) & gcd_numbers(held)
    assert list(iter_documents(DmMathSource(heldout=0.0), "heldout")) == []


def test_validate_every_kind(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", ["x"])
    write_parquet(tmp_path / "c.parquet", {"text": ["x"]})
    for source in (
        JsonlSource(path=str(path)),
        TextSource(path=str(path)),
        ParquetSource(path=str(tmp_path / "c.parquet")),
        DmMathSource(),
        PythonCodeSource(),
        HfSource(dataset="json", data_files=(str(path),)),
    ):
        info = validate(source)
        assert info.kind == source.kind and info.description
