"""Corpora, the book's cleaning, and exact values on The Time Machine (notes §6.2)."""

from __future__ import annotations

import hashlib
import os

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
    assert list(corpus.raw_lines) == ["Été à Paris", "second line"] and corpus.name == "story"
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset("text-file", data_dir=str(bad))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match="no text"):
        load_dataset("text-file", data_dir=str(tmp_path / "empty.txt"))
    with pytest.raises(DataError, match="missing.txt does not exist"):
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
    assert list(corpus.lines()) == ["the time traveller for so it will be convenient to speak of him"]
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
    lines = list(time_machine.lines())
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


# ----------------------------------------------------------- bounded reading
TEXTS = ["The Time-Machine, by H. G. Wells [1898]\n\nI.  Introduction\r\nThe Time Traveller (for so it will be",
         "  lead and trail  \n,,,\n\tx  yy,zz  \n", "no newline at the end", "Été: naïve café?! ok\n"]  # fmt: skip


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("normalize", corpora.NORMALIZATIONS)
def test_a_file_read_in_small_pieces_gives_the_tokens_of_whole_lines(tmp_path, monkeypatch, text, normalize):
    """Every piece size, even one byte: the same characters and the same words as the lines read whole."""
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    whole = corpora.normalize_lines(text.splitlines(), normalize)
    assert list(corpora.read_text_file(path).lines(normalize)) == whole  # big pieces: exactly the lines
    for size in range(1, len(text.encode()) + 1):
        monkeypatch.setattr(corpora, "PIECE_BYTES", size)
        pieces = list(corpora.read_text_file(path).lines(normalize))
        assert "".join(pieces) == "".join(whole), size
        assert [w for p in pieces for w in p.split()] == [w for line in whole for w in line.split()], size


def test_a_huge_single_line_is_never_held_whole(tmp_path, monkeypatch):
    """Peak memory does not grow with the file (4x the text, same peak), and max_tokens bounds the ids kept."""
    import tracemalloc

    monkeypatch.setattr(corpora, "PIECE_BYTES", 1 << 16)
    peaks = []
    for repeats in (40_000, 160_000):  # one line of 1.2 MB, then of 4.8 MB
        path = tmp_path / f"line-{repeats}.txt"
        path.write_text("the time machine, " * repeats)
        tracemalloc.start()
        try:
            ids, vocab = corpora.build_corpus(corpora.read_text_file(path).lines(), token="word", max_tokens=1000)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert len(ids) == 1000 and vocab.token_freqs == [("the", repeats), ("time", repeats), ("machine", repeats)]
    assert peaks[1] < peaks[0] + (1 << 20) and peaks[1] < 4 << 20  # reading it whole would hold 4.8 MB and more


@pytest.mark.parametrize("text", ["!!! ... ???\n", "1234 5678\n--\n", "日本語のテキスト\n"])
@pytest.mark.parametrize("token", ["char", "word"])
def test_a_text_without_letters_has_no_tokens_after_cleaning(tmp_path, text, token):
    """Before: ValueError: __len__() should return >= 0 deep in training. Now one line, before anything runs."""
    path = tmp_path / "punctuation.txt"
    path.write_text(text)
    with pytest.raises(DataError, match="no tokens after cleaning.*task.normalize 'none'"):
        corpora.build_corpus(corpora.read_text_file(path).lines(), token=token)
    with pytest.raises(DataError, match="no tokens after cleaning"):
        corpora.build_corpus([], token=token)


def test_build_corpus_reads_a_one_shot_iterator_once():
    ids, vocab = corpora.build_corpus(iter(["ab", "ba c"]), token="char")
    assert len(ids) == 6 and vocab.token_freqs[0] == ("a", 2)  # read twice: counted, then every id


@pytest.mark.parametrize("special, kind", [("/dev/zero", "a character device"), ("fifo", "a named pipe"),
                                           ("folder", "a folder")])  # fmt: skip
def test_a_device_pipe_or_folder_is_refused_at_once(tmp_path, special, kind):
    if special == "fifo":
        special = tmp_path / "pipe"
        os.mkfifo(special)
    elif special == "folder":
        special = tmp_path
    with pytest.raises(DataError, match=f"{special} is {kind}"):
        load_dataset("text-file", data_dir=str(special))
