"""``divekit ngrams``, ``generate``, ``forecast`` and the language-model train flags, end to end."""

from __future__ import annotations

import json

import pytest

from divekit.cli import main

TEXT = "the time traveller smiled round at us then still smiling faintly he began\n" * 10


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "story.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _train(corpus, out, *extra):
    args = ["train", "gru-lm", "--data", "text-file", "--data-dir", str(corpus), "--epochs", "2", "--batch-size", "4",
            "--num-steps", "8", "--num-hiddens", "8", "--threads", "1", "--no-progress", "--out", str(out), *extra]
    assert main(args) == 0


@pytest.fixture(scope="module")
def char_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "char"
    _train(corpus, out, "--scratch", "--num-layers", "2", "--val-split", "0.2")
    return out


def test_train_flags_reach_the_config(char_run):
    config = json.loads((char_run / "config.json").read_text())
    assert config["model"]["options"] == {"num_hiddens": 8, "num_layers": 2, "scratch": True}
    assert config["task"]["options"]["num_steps"] == 8 and config["data"]["val_split"] == 0.2


def test_evaluate_reports_held_out_perplexity(char_run, capsys):
    assert main(["evaluate", str(char_run), "--split", "val", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"val_loss", "val_ppl"}
    assert main(["evaluate", str(char_run)]) == 2  # a text has no test split
    assert "has no test split" in capsys.readouterr().err


def test_generate_from_prefixes_and_a_prompt_file(char_run, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Time\n\nhe began\nsmil\n")
    assert main(["generate", str(char_run), "--prefix", "The Time  Traveller", "--length", "12",
                 "--prompts", str(prompts)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4  # the blank prompt line is skipped
    assert lines[0].startswith("the time traveller") and len(lines[0]) == len("the time traveller") + 12
    assert lines[2].startswith("he began")
    assert main(["generate", str(char_run), "--prefix", "time", "--length", "30", "--temperature", "0.8",
                 "--top-k", "3", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    main(["generate", str(char_run), "--prefix", "time", "--length", "30", "--temperature", "0.8", "--top-k", "3",
          "--seed", "1"])
    assert capsys.readouterr().out == first


def test_word_level_bidirectional_run_generates_with_a_warning(corpus, tmp_path, capsys):
    _train(corpus, tmp_path / "words", "--token", "word", "--bidirectional", "--num-steps", "4")
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "words"), "--prefix", "the time", "--length", "3"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "bidirectional" in captured.err
    words = captured.out.split()
    assert words[:2] == ["the", "time"] and len(words) == 5
    assert main(["evaluate", str(tmp_path / "words")]) == 2  # nothing was held out
    assert "--val-split" in capsys.readouterr().err


def test_generate_errors_are_one_line(char_run, tmp_path, capsys):
    assert main(["generate", str(char_run)]) == 2
    assert main(["generate", str(tmp_path / "nothing"), "--prefix", "x"]) == 2
    assert main(["generate", str(char_run), "--prefix", "42"]) == 2
    assert main(["generate", str(char_run), "--prompts", str(tmp_path / "missing.txt")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(e.startswith("divekit: error: ") for e in errors)
    assert "no tokens" in errors[2]


def test_ngrams_on_a_file_with_a_zipf_plot(corpus, tmp_path, capsys):
    plot = tmp_path / "zipf.png"
    assert main(["ngrams", str(corpus), "--top", "2", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "130 word tokens" in out and "the time traveller" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert main(["ngrams", "timemachin"]) == 2
    assert "Did you mean 'timemachine'" in capsys.readouterr().err


def test_forecast_plots_k_step_predictions(tmp_path, capsys, char_run):
    assert main(["train", "ar-mlp", "--threads", "1", "--no-progress", "--out", str(tmp_path / "ar")]) == 0
    capsys.readouterr()
    assert main(["forecast", str(tmp_path / "ar"), "--steps", "1", "4", "16", "64", "--out", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "64-step ahead" in out and (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["forecast", str(char_run)]) == 2
    assert main(["generate", str(tmp_path / "ar"), "--prefix", "x"]) == 2
    assert "needs a language model" in capsys.readouterr().err
