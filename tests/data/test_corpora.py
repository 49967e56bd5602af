"""Corpora, the book's cleaning, and exact values on The Time Machine (notes §6.2)."""

from __future__ import annotations

import hashlib

import pytest

from divekit.data import corpora, load_dataset
from divekit.data.download import RemoteFile
from divekit.errors import ConfigError, DataError
from tests.helpers import shared_data


def test_letters_normalisation_is_the_books_reader():
    assert corpora.normalize_line("The Time-Machine, by H. G. Wells [1898]\n") == "the time machine by h g wells"
    assert corpora.normalize_line("  \n") == ""
    assert corpora.normalize_line("Keep, it!\n", "none") == "Keep, it!"
    with pytest.raises(ConfigError, match="normalization"):
        corpora.normalize_line("x", "upper")


def test_build_corpus_counts_all_text_then_truncates():
    ids, vocab = corpora.build_corpus(["ab", "", "ba c"], token="char", max_tokens=3)
    assert vocab.token_freqs[:2] == [("a", 2), ("b", 2)]
    assert ids == [vocab["a"], vocab["b"], vocab["b"]]  # lines are read as one stream, as in the book


def test_pydoc_is_embedded_english_text():
    corpus = load_dataset("pydoc")
    lines = corpus.lines()
    letters = sum(len(line) for line in lines)
    assert corpus.task == "language-model" and letters > 100_000
    assert set("".join(lines)) <= set("abcdefghijklmnopqrstuvwxyz ")
    assert "the" in " ".join(lines[:200]).split()


def test_text_file_reads_any_utf8_file_and_refuses_others(tmp_path):
    good = tmp_path / "story.txt"
    good.write_text("\ufeffÉté à Paris\nsecond line\n", encoding="utf-8")
    corpus = load_dataset("text-file", data_dir=str(good))
    assert corpus.raw_lines == ["Été à Paris", "second line"] and corpus.name == "story"
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset("text-file", data_dir=str(bad))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match="no text"):
        load_dataset("text-file", data_dir=str(tmp_path / "empty.txt"))
    with pytest.raises(DataError, match="no such text file"):
        load_dataset("text-file", data_dir=str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="named by data.data_dir"):
        load_dataset("text-file")


def test_timemachine_without_file_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="data.download=true"):
        load_dataset("timemachine", data_dir=str(tmp_path))


def test_download_checks_the_checksum_before_keeping_the_file(http_folder, tmp_path, monkeypatch):
    root, url = http_folder
    text = b"The Time Traveller (for so it will be convenient to speak of him)\n"
    (root / "timemachine.txt").write_bytes(text)
    monkeypatch.setattr(corpora, "TIME_MACHINE", RemoteFile("timemachine.txt", hashlib.sha256(text).hexdigest(), ()))
    corpus = load_dataset("timemachine", data_dir=str(tmp_path / "tm"), download=True, mirror=url)
    assert corpus.lines() == ["the time traveller for so it will be convenient to speak of him"]
    monkeypatch.setattr(corpora, "TIME_MACHINE", RemoteFile("timemachine.txt", "0" * 64, ()))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("timemachine", data_dir=str(tmp_path / "other"), download=True, mirror=url)
    assert not any((tmp_path / "other").iterdir())  # nothing half-downloaded is left behind


# ----------------------------------------------------------- The Time Machine
@pytest.fixture(scope="module")
def time_machine():
    return load_dataset("timemachine", data_dir=str(shared_data("timemachine")))


def test_time_machine_file_is_the_checksummed_one(time_machine):
    digest = hashlib.sha256(shared_data("timemachine", "timemachine.txt").read_bytes()).hexdigest()
    assert digest == corpora.TIME_MACHINE.sha256


def test_time_machine_characters(time_machine):
    lines = time_machine.lines()
    ids, vocab = corpora.build_corpus(lines, token="char")
    assert len(lines) == 3221
    assert len(vocab) == 28 and len(ids) == 170_580
    assert vocab.idx_to_token[:3] == ["<unk>", " ", "e"]


def test_time_machine_words(time_machine):
    from divekit.data.text import Vocab, tokenize

    tokens = tokenize(time_machine.lines(), "word")
    vocab = Vocab(tokens)
    assert [vocab["the"], vocab["i"], vocab["and"]] == [1, 2, 3]
    assert vocab.token_freqs[:3] == [("the", 2261), ("i", 1267), ("and", 1245)]
    assert tokens[0] == ["the", "time", "machine", "by", "h", "g", "wells"]
    assert vocab[tokens[0]] == [1, 19, 50, 40, 2183, 2184, 400]
