import dataclasses
import hashlib
import io
import zipfile

import pytest

from divekit.data import load_dataset
from divekit.data import translation as tr
from divekit.errors import ConfigError, DataError
from tests.helpers import shared_data

PAIRS_TEXT = "Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org\nHi.\tSalut\u202f!\n\nI'm home.\tJe suis chez moi.\n"


def test_preprocessing_follows_the_book():
    assert tr.preprocess_nmt("Go.") == "go ."
    assert tr.preprocess_nmt("Run!\u202fNow,\xa0please?") == "run ! now , please ?"
    assert tr.preprocess_nmt("Va !") == "va !"  # already spaced: unchanged
    assert tr.preprocess_nmt(".Hi") == ".hi"  # nothing to separate at the start


def test_truncate_pad():
    assert tr.truncate_pad([47, 4], 5, 1) == [47, 4, 1, 1, 1]
    assert tr.truncate_pad([1, 2, 3, 4, 5, 6], 4, 0) == [1, 2, 3, 4]


def test_vocabulary_and_arrays():
    lines = [["go", "."], ["go", "now", "."], ["i", "lost", "."]]
    vocab = tr.build_vocab(lines, min_freq=2)
    assert vocab.idx_to_token[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert "." in vocab and "go" in vocab and "lost" not in vocab  # seen once: below min_freq 2
    array, valid = tr.build_array(lines, vocab, num_steps=3)
    go, dot, pad, eos = vocab["go"], vocab["."], vocab["<pad>"], vocab["<eos>"]
    assert array[0].tolist() == [go, dot, eos] and array[1].tolist() == [go, 0, dot]  # cut: <eos> lost
    assert valid.tolist() == [3, 3, 3]
    array, valid = tr.build_array([["go"]], vocab, num_steps=4)
    assert array.tolist() == [[go, eos, pad, pad]] and valid.tolist() == [2]


def test_reading_two_and_three_column_files(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_text("\ufeff" + PAIRS_TEXT, encoding="utf-8")
    assert tr.read_tab_pairs(path) == [("go .", "va !"), ("hi .", "salut !"), ("i'm home .", "je suis chez moi .")]


@pytest.mark.parametrize("text, message", [("go.\tva!\nno tab here\n", "line 2: expected"),
                                           ("a\tb\tc\td\n", "found 4 column"),
                                           ("\tva !\n", "line 1")])  # fmt: skip
def test_malformed_lines_are_named(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        tr.read_tab_pairs(path)


def test_non_utf8_and_empty_files_are_refused(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("été\tsummer\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        tr.read_tab_pairs(tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="no sentence pairs"):
        tr.read_tab_pairs(tmp_path / "empty.txt")


def _data(n: int = 40) -> tr.TranslationData:
    pairs = [(f"s{i // 2} .", f"t{i} .") for i in range(n)]  # every source twice, with two translations
    return tr.TranslationData("toy", pairs)


def test_contiguous_split_never_shares_a_source_with_training():
    train, test = _data().split(num_examples=11, num_test=5)
    assert train == _data().pairs[:11]
    assert not {s for s, _ in test} & {s for s, _ in train}
    assert test[0] == ("s6 .", "t12 .")  # pair 11 ("s5 .") repeats a training source and is skipped
    assert len(test) == 5
    default_train, default_test = _data().split(num_examples=20)
    assert len(default_test) == 2  # a tenth of the training pairs


def test_split_errors_are_config_errors():
    with pytest.raises(ConfigError, match="leaves none to test"):
        _data().split(num_examples=40)
    with pytest.raises(ConfigError, match="at least 1"):
        _data().split(num_examples=0)
    fixed = dataclasses.replace(_data(), held_out=[("x .", "y .")])
    assert fixed.split(num_examples=3) == (_data().pairs[:3], [("x .", "y .")])
    with pytest.raises(ConfigError, match="too many"):
        fixed.split(num_examples=41)


def test_fra_eng_from_a_folder_a_file_or_the_archive(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "fra.txt").write_text(PAIRS_TEXT, encoding="utf-8")
    assert len(load_dataset("fra-eng", data_dir=tmp_path / "plain").pairs) == 3
    assert load_dataset("fra-eng", data_dir=tmp_path / "plain" / "fra.txt").task == "seq2seq"
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    _write_zip(zipped / "fra-eng.zip", {"fra-eng/fra.txt": PAIRS_TEXT, "fra-eng/_about.txt": "about"})
    assert load_dataset("fra-eng", data_dir=zipped).pairs[0] == ("go .", "va !")
    assert (zipped / "fra-eng" / "fra.txt").is_file()


def test_missing_fra_eng_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="data.download=true"):
        load_dataset("fra-eng", data_dir=tmp_path)


def _write_zip(path, members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_opt_in_download_checks_the_sha1_then_unpacks(http_folder, tmp_path, monkeypatch):
    served, url = http_folder
    payload = _write_zip(served / "fra-eng.zip", {"fra-eng/fra.txt": PAIRS_TEXT})
    remote = dataclasses.replace(tr.FRA_ENG_ARCHIVE, sha1=hashlib.sha1(payload).hexdigest())
    monkeypatch.setattr(tr, "FRA_ENG_ARCHIVE", remote)
    target = tmp_path / "cache"
    data = load_dataset("fra-eng", data_dir=target, download=True, mirror=url)
    assert len(data.pairs) == 3 and (target / "fra-eng.zip").is_file()


def test_download_with_a_wrong_checksum_keeps_nothing(http_folder, tmp_path, monkeypatch):
    served, url = http_folder
    _write_zip(served / "fra-eng.zip", {"fra-eng/fra.txt": PAIRS_TEXT})
    monkeypatch.setattr(tr, "FRA_ENG_ARCHIVE", dataclasses.replace(tr.FRA_ENG_ARCHIVE, sha1="0" * 40))
    target = tmp_path / "cache"
    with pytest.raises(DataError, match="checksum mismatch.*sha1"):
        load_dataset("fra-eng", data_dir=target, download=True, mirror=url)
    assert list(target.iterdir()) == []


def test_the_real_fra_eng_file():
    data = load_dataset("fra-eng", data_dir=shared_data("fra-eng"))
    assert len(data.pairs) == 167130
    assert data.pairs[:2] == [("go .", "va !"), ("hi .", "salut !")]
    train, test = data.split(num_examples=600)
    # three of the book's four test sentences are training pairs; "he's calm ." is in no pair of the file
    assert {"go .", "i lost .", "i'm home ."} <= {s for s, _ in train} and len(test) == 60
    assert "he's calm ." not in {s for s, _ in data.pairs}


def test_detokenize_undoes_the_punctuation_spacing():
    assert tr.detokenize_nmt(tr.preprocess_nmt("Va ! I'm home, now.")) == "va! i'm home, now."
