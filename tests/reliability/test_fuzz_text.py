"""Property-based fuzzing of the text readers (pairs, lines, corpora read in pieces), truncate_pad and Vocab."""

from __future__ import annotations

import collections

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from divekit import io
from divekit.data import corpora
from divekit.data.text import Vocab
from divekit.data.translation import build_array, build_vocab, read_tab_pairs, truncate_pad
from divekit.errors import DataError

CASES = 300
RUNS: collections.Counter = collections.Counter()

cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r"), max_size=12)
line = st.lists(cell, min_size=0, max_size=5).map("\t".join)


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(line, max_size=8), encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
def test_pair_parser_accepts_or_names_the_line(tmp_path, lines, encoding):
    RUNS["pairs"] += 1
    path = tmp_path / "pairs.txt"
    text = "\n".join(lines)
    try:
        path.write_bytes(text.encode(encoding))
    except UnicodeEncodeError:
        return
    try:
        pairs = read_tab_pairs(path)
    except DataError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    good = [l for l in lines if l.strip()]
    assert len(pairs) == len(good)  # every non-blank line became exactly one pair
    assert all(src and tgt and src == src.lower() for src, tgt in pairs)


@settings(max_examples=CASES, deadline=None)
@given(ids=st.lists(st.integers(0, 50), max_size=30), num_steps=st.integers(1, 20), pad=st.integers(0, 3))
def test_truncate_pad(ids, num_steps, pad):
    RUNS["truncate_pad"] += 1
    out = truncate_pad(ids, num_steps, pad)
    assert len(out) == num_steps
    kept = min(len(ids), num_steps)
    assert out[:kept] == ids[:kept] and out[kept:] == [pad] * (num_steps - kept)


@settings(max_examples=CASES // 2, deadline=None)
@given(sentences=st.lists(st.lists(st.sampled_from(list("abcdef") + ["go", "."]), max_size=12), min_size=1,
                          max_size=10), num_steps=st.integers(1, 15))  # fmt: skip
def test_build_array_valid_lengths(sentences, num_steps):
    RUNS["build_array"] += 1
    vocab = build_vocab(sentences, min_freq=1)
    array, valid = build_array(sentences, vocab, num_steps)
    assert array.shape == (len(sentences), num_steps)
    for row, length, sentence in zip(array.tolist(), valid.tolist(), sentences):
        assert length == min(len(sentence) + 1, num_steps)
        assert all(token == vocab["<pad>"] for token in row[length:])  # nothing but padding after the valid part


@settings(max_examples=CASES, deadline=None)
@given(tokens=st.lists(st.sampled_from(list("abcdefgh")), max_size=60), min_freq=st.integers(0, 4),
       reserved=st.lists(st.sampled_from(["<pad>", "<bos>", "<eos>", "a"]), max_size=3))  # fmt: skip
def test_vocab_orders_and_round_trips(tokens, min_freq, reserved):
    RUNS["vocab"] += 1
    vocab = Vocab(tokens, min_freq=min_freq, reserved_tokens=reserved)
    assert vocab.idx_to_token[0] == "<unk>" and len(set(vocab.idx_to_token)) == len(vocab)
    counts = collections.Counter(tokens)
    learned = [t for t in vocab.idx_to_token[1:] if t not in reserved]
    assert [counts[t] for t in learned] == sorted((counts[t] for t in learned), reverse=True)
    assert all(vocab[t] == 0 for t in counts if counts[t] < min_freq and t not in reserved)
    assert vocab.to_tokens(vocab[tokens]) == [t if t in vocab else "<unk>" for t in tokens]
    assert Vocab.from_json(vocab.to_json()) == vocab


prose = st.lists(st.sampled_from(list("abcXYZ é,.!-\n\r\t\u2028日") + ["\r\n", "time ", "machine"]),
                max_size=40).map("".join)  # fmt: skip


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=120) | prose.map(lambda t: t.encode("utf-8")), limit=st.integers(1, 40))
def test_line_reader_returns_the_lines_or_one_error(tmp_path, data, limit):
    """Any bytes: the lines Python's own text files give, or one DataError; a line over the limit never passes."""
    RUNS["lines"] += 1
    path = tmp_path / "any.txt"
    path.write_bytes(data)
    try:
        lines = list(io.read_lines(path, what="input file", max_line_chars=limit))
    except DataError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    with open(path, encoding="utf-8-sig", newline=None) as handle:  # it decoded: so does Python's reader
        expected = [line.rstrip("\r\n") for line in handle]
    assert lines == expected and all(len(line) <= limit for line in lines)


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=prose, piece=st.integers(1, 24), normalize=st.sampled_from(corpora.NORMALIZATIONS))
def test_a_corpus_read_in_any_pieces_has_the_tokens_of_whole_lines(tmp_path, monkeypatch, text, piece, normalize):
    """Cut anywhere (inside a line, a word, a UTF-8 character): the same characters and words as whole lines."""
    RUNS["corpus pieces"] += 1
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))
    with open(path, encoding="utf-8", newline=None) as handle:
        whole = corpora.normalize_lines([line.rstrip("\n") for line in handle], normalize)
    monkeypatch.setattr(corpora, "PIECE_BYTES", piece)
    pieces = list(corpora.CleanedText(corpora.TextFile(path), normalize))
    assert "".join(pieces) == "".join(whole)
    assert [w for p in pieces for w in p.split()] == [w for line in whole for w in line.split()]


def test_cases_ran():
    """How many cases each property ran (printed with pytest -s; recorded in docs/reliability.md)."""
    print(f"text fuzz cases: {dict(RUNS)}")
    assert all(count > 0 for count in RUNS.values()) or not any(RUNS.values())
