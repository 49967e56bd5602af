"""``divekit train`` on translation data, ``translate``, ``attention`` and ``kernel-regression``."""

import io
import json

import pytest

from divekit.cli import main

TRAIN = ["--data", "numbers-fr", "--num-examples", "300", "--set", "task.options.num_test=20", "--epochs", "1",
         "--threads", "1", "--device", "cpu", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for model in ("transformer", "seq2seq"):
        assert main(["train", model, *TRAIN, "--out", str(root / model)]) == 0
    return root


def test_train_reports_tokens_per_second(runs, capsys):
    metrics = json.loads((runs / "transformer" / "metrics.json").read_text())
    assert "train_tokens_per_s" in metrics[-1] and "test_bleu" in metrics[-1]
    assert (runs / "transformer" / "src_vocab.json").is_file() and (runs / "transformer" / "tgt_vocab.json").is_file()


def test_translate_prints_each_translation_with_its_bleu(runs, capsys):
    code = main(["translate", str(runs / "transformer"), "seven", "one hundred and two", "--ref", "sept",
                 "--ref", "cent deux"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].startswith("seven => ") and "(bleu " in lines[0]
    assert lines[1].startswith("one hundred and two => ")
    assert lines[2].startswith("corpus BLEU (sacrebleu) ")


def test_translate_beam_search_and_json(runs, capsys):
    assert main(["translate", str(runs / "transformer"), "seven", "--beam-size", "3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["source"] == "seven" and record["reference"] is None and record["bleu"] is None


def test_translate_streams_a_file_with_references(runs, tmp_path, capsys):
    path = tmp_path / "input.tsv"
    path.write_text("".join(f"{w}\t{w}\n" for w in ["one", "two", "three"] * 30) + "\nfour\n", encoding="utf-8")
    assert main(["translate", str(runs / "seq2seq"), "--input", str(path), "--batch-size", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 92 and lines[0].startswith("one => ") and lines[90].startswith("four => ")
    assert "(bleu" not in lines[90] and lines[91].startswith("corpus BLEU")


def test_translate_reads_stdin(runs, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"five\nsix\n")))  # a real stdin has .buffer
    assert main(["translate", str(runs / "seq2seq"), "--input", "-"]) == 0
    assert [line.split(" => ")[0] for line in capsys.readouterr().out.splitlines()] == ["five", "six"]


@pytest.mark.parametrize("args, message", [
    (["seven", "--ref", "a", "--ref", "b"], "2 --ref for 1 sentences"),
    ([], "nothing to translate"),
    (["seven", "--beam-size", "0"], "--beam-size must be at least 1"),
    (["seven", "--max-len", "5000"], "--max-len must be between 1 and 1000"),
])  # fmt: skip
def test_translate_input_errors_are_one_line(runs, capsys, args, message):
    assert main(["translate", str(runs / "transformer"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_translate_needs_a_run_folder(tmp_path, capsys):
    assert main(["translate", str(tmp_path), "seven"]) == 2
    assert "not a divekit run folder" in capsys.readouterr().err


def test_attention_writes_encoder_and_cross_attention_heatmaps(runs, tmp_path, capsys):
    assert main(["attention", str(runs / "transformer"), "two hundred and five", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("two hundred and five <eos> => ")
    for name in ("encoder-self-attention.png", "decoder-cross-attention.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_attention_of_a_model_without_attention_is_an_error(runs, capsys):
    assert main(["attention", str(runs / "seq2seq"), "seven"]) == 2
    assert "without attention" in capsys.readouterr().err


def test_kernel_regression_command(tmp_path, capsys):
    assert main(["kernel-regression", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "non-parametric (w = 1): test MSE" in out and "parametric (learned w" in out
    assert len(list(tmp_path.glob("*.png"))) == 4


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "folder", "long line", "latin-1"])
def test_an_input_file_that_is_not_a_text_file_is_one_line(runs, tmp_path, capsys, special):
    """Before: /dev/zero or a 200 MB line ended in MemoryError, and a FIFO hung."""
    import os

    message = {"/dev/zero": "a character device", "fifo": "a named pipe", "folder": "a folder",
               "long line": "longer than 1,048,576 characters", "latin-1": "not UTF-8"}[special]  # fmt: skip
    path = special
    if special == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
    elif special == "folder":
        path = tmp_path
    elif special == "long line":
        path = tmp_path / "long.txt"
        path.write_text("seven " * 400_000)
    elif special == "latin-1":
        path = tmp_path / "latin.txt"
        path.write_bytes("sept été\n".encode("latin-1"))
    assert main(["translate", str(runs / "seq2seq"), "--input", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("divekit: error:") and captured.err.count("\n") == 1
    assert message in captured.err
