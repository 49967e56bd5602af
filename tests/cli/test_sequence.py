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


@pytest.mark.parametrize("options, message", [
    (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
    (["--temperature", "inf"], "--temperature must be a finite number >= 0"),
    (["--temperature", "1e400"], "--temperature must be a finite number >= 0"),
    (["--temperature", "-0.5"], "--temperature must be a finite number >= 0"),
    (["--top-k", "0"], "--top-k must be an integer >= 1"),
    (["--temperature", "0.8", "--top-k", "-2"], "--top-k must be an integer >= 1"),
    (["--seed", str(2**64)], "--seed must fit in 64 bits"),
    (["--length", "-1"], "--length must be >= 0"),
])  # fmt: skip
def test_every_sampling_option_is_checked_before_any_output(char_run, capsys, options, message):
    """Before: nan was a RuntimeError traceback; a negative temperature or --top-k 0 was refused after the prefix."""
    capsys.readouterr()
    assert main(["generate", str(char_run), "--prefix", "time", "--prefix", "he", *options]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err


def test_a_tiny_temperature_is_greedy(char_run, capsys):
    capsys.readouterr()
    assert main(["generate", str(char_run), "--prefix", "time", "--length", "20"]) == 0
    greedy = capsys.readouterr().out
    for tiny in ("1e-45", "1e-300"):
        assert main(["generate", str(char_run), "--prefix", "time", "--length", "20", "--temperature", tiny]) == 0
        assert capsys.readouterr().out == greedy


def test_a_prefix_without_tokens_is_refused_before_it_is_printed(char_run, capsys):
    capsys.readouterr()
    assert main(["generate", str(char_run), "--prefix", "1234 !!", "--length", "5"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "no tokens after cleaning" in captured.err


@pytest.fixture
def special_file(tmp_path, request):
    """A device, a named pipe without a writer, a folder, or a file whose single line is 2 MB."""
    import os

    kind = request.param
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe")
        return tmp_path / "pipe", "a named pipe"
    if kind == "folder":
        return tmp_path, "a folder"
    if kind == "long line":
        (tmp_path / "long.txt").write_text("x" * 2_000_000)
        return tmp_path / "long.txt", "longer than 1,048,576 characters"
    return kind, "a character device"


@pytest.mark.parametrize("special_file", ["/dev/zero", "/dev/urandom", "fifo", "folder", "long line"],
                         indirect=True)  # fmt: skip
def test_a_prompts_file_that_is_not_a_text_file_is_one_line(char_run, capsys, special_file):
    """Before: /dev/zero or a 200 MB line ended in MemoryError, a FIFO hung. Now one line, and nothing printed."""
    path, message = special_file
    capsys.readouterr()
    assert main(["generate", str(char_run), "--prompts", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("divekit: error:") and captured.err.count("\n") == 1 and message in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("special_file", ["/dev/zero", "/dev/urandom", "fifo", "folder"], indirect=True)
def test_ngrams_of_a_device_pipe_or_folder_is_one_line(capsys, special_file):
    """Before: `divekit ngrams /dev/zero` reached 23 GB of memory; a FIFO hung."""
    path, message = special_file
    assert main(["ngrams", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("divekit: error:") and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("text", ["!!! ... ???\n", "1914-1918\n"])
def test_ngrams_of_a_text_without_letters_says_so(tmp_path, capsys, text):
    (tmp_path / "p.txt").write_text(text)
    assert main(["ngrams", str(tmp_path / "p.txt")]) == 2
    assert "no tokens after cleaning" in capsys.readouterr().err
    assert main(["ngrams", str(tmp_path / "p.txt"), "--normalize", "none"]) == 0


def test_training_on_a_text_without_letters_is_one_line_and_leaves_nothing(tmp_path, capsys):
    """Before: ValueError: __len__() should return >= 0, a traceback from the batch sampler."""
    (tmp_path / "p.txt").write_text("!!! ... ???\n" * 100)
    assert main(["train", "rnn-lm", "--data", "text-file", "--data-dir", str(tmp_path / "p.txt"), "--epochs", "1",
                 "--no-progress", "--out", str(tmp_path / "run")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no tokens after cleaning" in err and not (tmp_path / "run").exists()
