"""The pairs data set: any TSV of sentence pairs, its own test split, fra-eng's options, errors for too few."""

from __future__ import annotations

import pytest

from divekit.data import load_dataset
from divekit.data.pairs import looks_like_pairs, split_pairs
from divekit.errors import ConfigError, DataError
from divekit.runs import resolve_config
from divekit.runs.build import build_source


def write_pairs(path, count: int, *, repeat: int = 1) -> None:
    lines = [f"Sentence number {i}.\tPhrase numéro {i} !\textra column" for i in range(count) for _ in range(repeat)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_pairs_are_read_as_fra_eng_with_their_own_test_split(tmp_path):
    write_pairs(tmp_path / "mine.tsv", 50)
    data = load_dataset("pairs", data_dir=tmp_path / "mine.tsv")
    assert data.name == "mine" and len(data.pairs) == 45 and len(data.held_out) == 5
    assert data.pairs[0] == ("sentence number 0 .", "phrase numéro 0 !")  # lowercased, punctuation split off
    assert {s for s, _ in data.pairs}.isdisjoint({s for s, _ in data.held_out})
    assert load_dataset("pairs", data_dir=tmp_path / "mine.tsv").held_out == data.held_out  # always the same split


def test_every_pair_of_a_held_out_source_goes_to_test():
    pairs = [("a", "x"), ("b", "y"), ("a", "z"), ("c", "w")] * 3
    train, test = split_pairs(pairs, fraction=0.4)
    assert sorted(train + test) == sorted(pairs)
    assert {s for s, _ in train}.isdisjoint({s for s, _ in test})
    assert len({s for s, _ in test}) == 1  # round(0.4 * 3 sources)


def test_too_few_pairs_is_one_clear_error(tmp_path):
    write_pairs(tmp_path / "one.tsv", 1, repeat=3)
    with pytest.raises(DataError, match=r"3 pair\(s\) with 1 distinct source sentence\(s\).*at least 2"):
        load_dataset("pairs", data_dir=tmp_path / "one.tsv")
    (tmp_path / "empty.tsv").write_text("\n\n")
    with pytest.raises(DataError, match="no sentence pairs"):
        load_dataset("pairs", data_dir=tmp_path / "empty.tsv")
    with pytest.raises(ConfigError, match="reads the file named by data.data_dir"):
        load_dataset("pairs")
    with pytest.raises(DataError, match="is a folder"):
        load_dataset("pairs", data_dir=tmp_path)
    write_pairs(tmp_path / "two.tsv", 2)
    with pytest.raises(ConfigError, match="leaves none to train on"):
        build_source(resolve_config("seq2seq", data="pairs", overrides={
            "data.data_dir": str(tmp_path / "two.tsv"), "data.val_split": 0.5}))  # fmt: skip


def test_the_translation_options_of_fra_eng_apply(tmp_path):
    write_pairs(tmp_path / "mine.tsv", 200)
    config = resolve_config("transformer", data="pairs", overrides={
        "data.data_dir": str(tmp_path / "mine.tsv"), "data.val_split": 0.1, "task.options.num_steps": 4,
        "task.options.num_examples": 100, "task.options.num_test": 7, "task.options.min_freq": 1})  # fmt: skip
    source = build_source(config)
    info = source.info()
    assert (info["num_train"], info["num_val"], info["num_test"]) == (90, 10, 7)
    assert source.train_arrays[0].shape == (90, 4)  # cut to num_steps tokens
    assert info["model_options"]["src_vocab_size"] == len(source.src_vocab)


def test_pairs_files_are_told_apart_from_other_text(tmp_path):
    write_pairs(tmp_path / "pairs.txt", 5)
    (tmp_path / "prose.txt").write_text("It was a dark night.\nNo tabs here.\n")
    (tmp_path / "ragged.tsv").write_text("a\tb\nonly one column\n")
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00\x01")
    assert looks_like_pairs(tmp_path / "pairs.txt")
    assert not any(looks_like_pairs(tmp_path / n) for n in ("prose.txt", "ragged.tsv", "binary.bin", "missing"))
