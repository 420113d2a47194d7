"""Ingestion: malformed rows reported by line, nothing half-written, encoder failures."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from aura_snn.errors import InputValueError, ParameterError, ShapeError
from aura_snn.memory import EpisodicMemory, MalformedRowsWarning, ingest_csv_pairs, ingest_jsonl

JSONL_LINES = [
    b'{"text": "the cat sat", "place": "kitchen", "w": 2}',  # 1 ok
    b'{"text": "broken json", ',                             # 2 invalid JSON
    b'{"text": "a dog barked", "w": 0.5}',                    # 3 ok
    b'{"caption": "no text field"}',                          # 4 missing key field
    b"   ",                                                   # 5 blank: skipped
    b'["a", "list"]',                                         # 6 not an object
    b'{"text": "bad \xff byte"}',                             # 7 not UTF-8
    b'{"text": "negative weight", "w": -1}',                  # 8 bad importance
    b'{"text": "the end", "place": "hall"}',                  # 9 ok
]
BAD_JSONL = [2, 4, 6, 7, 8]


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "episodes.jsonl"
    path.write_bytes(b"\n".join(JSONL_LINES) + b"\n")
    return path


@pytest.fixture
def memory() -> EpisodicMemory:
    mem = EpisodicMemory(8, backend="flat")
    mem.write(torch.randn(2, 8), metadata=[{"pre": 1}, {"pre": 2}])
    return mem


def test_jsonl_malformed_rows_reported_by_line_and_nothing_written(jsonl, memory, encoder) -> None:
    before = memory.ids.tolist()
    expected = r"5 malformed row\(s\) at line\(s\) 2, 4, 6, 7, 8"
    with pytest.warns(MalformedRowsWarning, match=expected):
        report = ingest_jsonl(jsonl, memory, encoder(8), importance_field="w")
    assert report.lines == BAD_JSONL and report.malformed == 5
    assert report.rows == 8 and report.written == 0 and report.ids.numel() == 0
    assert "invalid JSON" in report.errors[0].message
    assert "'text'" in report.errors[1].message
    assert "UTF-8" in report.errors[3].message
    assert memory.ids.tolist() == before


def test_jsonl_skip_mode_writes_valid_rows_with_metadata_and_importance(jsonl, memory,
                                                                        encoder) -> None:
    enc = encoder(8)
    with pytest.warns(MalformedRowsWarning, match="the other rows were written"):
        report = ingest_jsonl(jsonl, memory, enc, importance_field="w", on_malformed="skip")
    assert report.written == 3 and report.lines == BAD_JSONL
    got = memory.get(report.ids)
    assert [m["text"] for m in got.metadata] == ["the cat sat", "a dog barked", "the end"]
    assert got.importance.tolist() == [2.0, 0.5, 1.0]
    expected = torch.nn.functional.normalize(enc("a dog barked"), dim=0)
    torch.testing.assert_close(got.keys[1], expected)


def test_jsonl_raise_mode_and_clean_file(jsonl, memory, encoder, tmp_path) -> None:
    with pytest.raises(InputValueError, match="line") as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", MalformedRowsWarning)
        ingest_jsonl(jsonl, memory, encoder(8), importance_field="w", on_malformed="raise")
    assert info.value.report.lines == BAD_JSONL and len(memory) == 2
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(json.dumps({"text": f"t{i}", "k": i}) for i in range(5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file warns about nothing
        report = ingest_jsonl(clean, memory, lambda xs: torch.randn(len(xs), 8),
                              batched=True, batch_size=2, metadata_fields=["k"])
    assert report.ok and report.written == 5
    assert [m for m in memory.get(report.ids).metadata] == [{"k": i} for i in range(5)]


def test_jsonl_numeric_values(tmp_path, encoder) -> None:
    mem = EpisodicMemory(8, value_dim=3, backend="flat")
    path = tmp_path / "v.jsonl"
    path.write_text('{"text": "a", "v": [1, 2, 3]}\n{"text": "b", "v": [1, 2]}\n'
                    '{"text": "c", "v": "encoded text"}\n')
    with pytest.warns(MalformedRowsWarning):
        report = ingest_jsonl(path, mem, encoder(8), value_field="v",
                              value_encoder=lambda s: torch.ones(3), on_malformed="skip")
    assert report.lines == [2]
    assert mem.get(report.ids).values.tolist() == [[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]
    with pytest.raises(ParameterError, match="value_dim"):
        ingest_jsonl(path, EpisodicMemory(8), encoder(8), value_field="v")


@pytest.mark.parametrize("failure, error, match", [
    ("raise", RuntimeError, "model crashed"),
    ("nan", InputValueError, "NaN or inf for .* line 3"),
    ("shape", ShapeError, r"shape \(4,\) for .* line 3"),
])
def test_failing_encoder_leaves_memory_unchanged(tmp_path, memory, failure, error, match) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text('{"text": "one"}\n\n{"text": "two"}\n{"text": "three"}\n')

    def enc(text: str) -> torch.Tensor:
        if text == "two":
            if failure == "raise":
                raise RuntimeError("model crashed")
            if failure == "nan":
                return torch.full((8,), float("nan"))
            return torch.ones(4)
        return torch.randn(8)

    before = (memory.ids.tolist(), memory.step)
    with pytest.raises(error, match=match) as info:
        ingest_jsonl(path, memory, enc)
    if failure == "raise":
        assert any("line 3" in note for note in info.value.__notes__)
    assert (memory.ids.tolist(), memory.step) == before


CSV_TEXT = (
    "cue,target,source\n"          # 1 header
    "red,apple,book\n"             # 2 ok
    "blue,sky\n"                   # 3 too few fields
    '"multi\nline cue",sea,web\n'  # 4-5 ok (quoted newline)
    ",empty key,web\n"             # 6 empty key
    'bad"quote,x,y\n'              # 7 ok for csv (quote inside an unquoted field)
    '"broken"x,y,z\n'              # 8 CSV syntax error
    "\n"                           # 9 blank: skipped
    "green,grass,field\n"          # 10 ok
)


def test_csv_pairs_report_line_numbers_across_quoted_newlines(tmp_path, encoder) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(CSV_TEXT)
    mem = EpisodicMemory(8, value_dim=8, backend="flat")
    with pytest.warns(MalformedRowsWarning, match="nothing was written"):
        report = ingest_csv_pairs(path, mem, encoder(8), key_column="cue",
                                  value_column="target")
    assert report.lines == [3, 6, 8] and len(mem) == 0
    assert "expected 3 fields, got 2" in report.errors[0].message
    assert "CSV syntax error" in report.errors[2].message
    with pytest.warns(MalformedRowsWarning):
        report = ingest_csv_pairs(path, mem, encoder(8), on_malformed="skip")
    assert report.written == 4 and report.rows == 7
    got = mem.get(report.ids)
    assert [m["cue"] for m in got.metadata] == ["red", "multi\nline cue", 'bad"quote', "green"]
    torch.testing.assert_close(got.values[0], encoder(8)("apple"))


def test_csv_without_header_and_bad_columns(tmp_path, encoder) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("a,b\nc,d\n")
    mem = EpisodicMemory(8, backend="flat")  # no values: the value text goes to metadata
    report = ingest_csv_pairs(path, mem, encoder(8), header=False)
    assert report.written == 2
    assert mem.get(report.ids).metadata == [{"key": "a", "value": "b"}, {"key": "c", "value": "d"}]
    with pytest.raises(ParameterError, match="key_column='nope' is not a column name"):
        ingest_csv_pairs(path, mem, encoder(8), key_column="nope")
    with pytest.raises(ParameterError, match="on_malformed"):
        ingest_csv_pairs(path, mem, encoder(8), on_malformed="ignore")
    assert len(mem) == 2
