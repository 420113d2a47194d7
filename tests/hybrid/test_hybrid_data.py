"""Corpus: the pydoc topics split by whole documents, files streamed in bounded chunks,
token blocks that cover every token once, named errors for empty and binary files."""

from __future__ import annotations

import itertools
import json
import zlib

import pytest
import torch

from hybrid.data import (
    default_corpus,
    default_split,
    iter_text_file,
    random_batch,
    split_documents,
    token_blocks,
)
from hybrid.tokenizer import ByteTokenizer


def test_default_corpus_is_pydoc_topics_split_by_documents() -> None:
    from pydoc_data.topics import topics

    docs = default_corpus()
    assert docs == dict(topics) and 400_000 < sum(map(len, docs.values())) < 600_000
    split = default_split(0.1)
    assert default_split(0.1) == split  # deterministic
    total = sum(map(len, docs.values()))
    # the rule of the docstring, written out: CRC-32 order, a document goes to validation
    # while it still fits under 10 % of the characters
    val, size = set(), 0
    for name in sorted(docs, key=lambda n: (zlib.crc32(n.encode()), n)):
        if size + len(docs[name]) <= 0.1 * total:
            val.add(name)
            size += len(docs[name])
    assert split.validation == "\n\n".join(docs[n] for n in sorted(val))
    assert split.train == "\n\n".join(docs[n] for n in sorted(docs) if n not in val)
    assert 0.09 * total < len(split.validation) <= 0.1 * total
    assert split_documents({"a": "x"}, 0.0).validation == ""
    with pytest.raises(ValueError, match="val_fraction"):
        split_documents(docs, 1.0)


def test_text_file_streams_in_bounded_chunks(tmp_path) -> None:
    words = [f"w{i}é" for i in range(30_000)]
    text = " ".join(words) + "\nlast line\n"
    path = tmp_path / "big.txt"
    path.write_text(text, encoding="utf-8")
    chunks = list(iter_text_file(path, chunk_chars=4096))
    assert "".join(chunks) == text
    assert max(map(len, chunks)) <= 2 * 4096 and len(chunks) > len(text) // 8192
    assert all(c[-1].isspace() for c in chunks[:-1])  # cut at whitespace, words intact


def test_token_blocks_are_lazy_and_cover_every_token_once() -> None:
    tok = ByteTokenizer()
    text = "".join(chr(0x41 + i % 50) for i in range(1000)) + "ü"
    chunks = [text[i:i + 37] for i in range(0, len(text), 37)]
    blocks = list(token_blocks(chunks, tok, block_size=16))
    ids = list(text.encode("utf-8"))
    n = (len(ids) - 1) // 16
    assert len(blocks) == n
    for i, b in enumerate(blocks):
        assert b.dtype == torch.int64 and b.tolist() == ids[16 * i:16 * i + 17]
    # an endless stream of chunks still yields blocks: nothing waits for the end
    endless = token_blocks(itertools.cycle(["abc"]), tok, block_size=8)
    first = list(itertools.islice(endless, 3))
    assert first[2].tolist() == list(b"abc" * 9)[16:25]


def test_jsonl_records_joined(tmp_path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "id": i})
                              for i, t in enumerate(["one", "two", "three"])) + "\n\n")
    assert "".join(iter_text_file(path)) == "one\n\ntwo\n\nthree"
    assert "".join(iter_text_file(path, chunk_chars=3)) == "one\n\ntwo\n\nthree"


@pytest.mark.parametrize("name, content, match", [
    ("empty.txt", b"", "empty.txt: the corpus file is empty"),
    ("nul.txt", b"hello\x00world", "nul.txt: not a text file"),
    ("latin.txt", "caf\u00e9".encode("latin-1"), "latin.txt: not a UTF-8 text file"),
    ("img.png", b"\x89PNG\r\n\x1a\n\x00\x00", "img.png: not a"),
    ("bad.jsonl", b'{"text": "ok"}\n{oops\n', "bad.jsonl:2: not a JSON line"),
    ("key.jsonl", b'{"body": "x"}\n', "key.jsonl:1: text"),
    ("blank.jsonl", b"\n\n", "blank.jsonl: the corpus file holds no text"),
])
def test_bad_files_named(tmp_path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        list(iter_text_file(path))


def test_missing_file_and_format_refused_at_call(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        iter_text_file(tmp_path / "nope.txt")
    (tmp_path / "a.txt").write_text("abc")
    with pytest.raises(ValueError, match="format"):
        iter_text_file(tmp_path / "a.txt", format="csv")


def test_random_batch_targets_are_shifted_windows() -> None:
    ids = torch.arange(100)
    g = torch.Generator().manual_seed(0)
    x, y = random_batch(ids, 4, 10, g)
    assert x.shape == (4, 10)
    for row_x, row_y in zip(x, y, strict=True):
        start = int(row_x[0])
        assert row_x.tolist() == list(range(start, start + 10))
        assert row_y.tolist() == list(range(start + 1, start + 11))
    with pytest.raises(ValueError, match="block_size"):
        random_batch(ids[:5], 2, 10)
