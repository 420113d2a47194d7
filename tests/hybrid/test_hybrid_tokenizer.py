"""Tokenizers: byte ids are Python's UTF-8 bytes, round trips on arbitrary text, BPE merges
against a BPE trainer written here, save/load identical and atomic."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid.tokenizer import BPETokenizer, ByteTokenizer, load_tokenizer, save_tokenizer

ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=200)  # surrogates too
VALID_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_byte_round_trip_on_any_string(text: str) -> None:
    tok = ByteTokenizer()
    ids = tok.encode(text, add_bos=True, add_eos=True)
    assert ids[0] == 256 and ids[-1] == 257
    assert tok.decode(ids) == text


def test_byte_ids_are_utf8_bytes_and_specials_are_ids_only() -> None:
    tok = ByteTokenizer()
    text = "héllo ✓ 😀 <|eos|>"
    assert tok.encode(text) == list(text.encode("utf-8"))
    assert tok.vocab_size == 259 and (tok.bos_id, tok.eos_id, tok.pad_id) == (256, 257, 258)
    assert tok.decode([104, 105, 258, 257]) == "hi"
    assert tok.decode([0xF0, 0x9F]) == "\ufffd"  # a cut 4-byte sequence, as sampling may leave
    with pytest.raises(ValueError, match=r"\[0, 259\), got 300"):
        tok.decode([300])
    with pytest.raises(TypeError, match="text"):
        tok.encode(b"bytes")


def _bpe_merges(words: dict[str, int], n: int) -> list[tuple[str, str]]:
    """Textbook BPE (Sennrich et al. 2016): merge the most frequent adjacent pair, n times."""
    seqs = {w: list(w) for w in words}
    merges = []
    for _ in range(n):
        pairs: Counter[tuple[str, str]] = Counter()
        for w, c in words.items():
            for a, b in zip(seqs[w], seqs[w][1:], strict=False):
                pairs[a, b] += c
        (best, count), *rest = pairs.most_common()
        assert not rest or rest[0][1] < count, "corpus must have no tie"
        merges.append(best)
        for w in words:
            s, out, i = seqs[w], [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == best:
                    out.append(s[i] + s[i + 1])
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


WORDS = {"abcd": 11, "bcde": 7, "cdab": 4, "eabc": 2}
CORPUS = "\n".join(w for w, c in WORDS.items() for _ in range(c))


def test_bpe_merges_equal_textbook_bpe() -> None:
    tok = BPETokenizer.train(CORPUS, vocab_size=300, min_frequency=2)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
              for m in json.loads(tok.to_json())["model"]["merges"]]
    assert merges[:6] == _bpe_merges(WORDS, 6)
    assert len(tok.encode("abcd")) == 1 and len(tok.encode("abcdbcde")) == 2
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (0, 1, 2)


@settings(max_examples=150, deadline=None)
@given(VALID_TEXT)
def test_bpe_round_trip_on_any_valid_text(text: str) -> None:
    tok = _trained()
    ids = tok.encode(text, add_eos=True)
    assert ids[-1] == tok.eos_id
    assert tok.decode(ids) == text


_CACHE: dict[str, BPETokenizer] = {}


def _trained() -> BPETokenizer:
    if "t" not in _CACHE:
        from hybrid.data import default_split

        _CACHE["t"] = BPETokenizer.train(default_split().train[:60_000], vocab_size=400)
    return _CACHE["t"]


def test_text_spelling_a_special_token_stays_text() -> None:
    tok = _trained()
    ids = tok.encode("a <|eos|> b")
    assert tok.eos_id not in ids and tok.decode(ids) == "a <|eos|> b"


def test_save_load_identical_and_atomic(tmp_path) -> None:
    bpe = _trained()
    path = save_tokenizer(bpe, tmp_path)
    assert path == tmp_path / "tokenizer.json"
    back = load_tokenizer(tmp_path)
    assert isinstance(back, BPETokenizer) and back == bpe
    sample = "def f(x):\n    return x ** 2  # déjà vu"
    assert back.encode(sample) == bpe.encode(sample)
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no temporaries left
    byte_file = ByteTokenizer().save(tmp_path / "byte.json")
    assert isinstance(load_tokenizer(byte_file), ByteTokenizer)


def test_load_refuses_foreign_files(tmp_path) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="x.json.*neither"):
        load_tokenizer(tmp_path / "x.json")
    (tmp_path / "y.json").write_bytes(b"\x00\xff garbage")
    with pytest.raises(ValueError, match="y.json"):
        load_tokenizer(tmp_path / "y.json")
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("abc", vocab_size=100)
