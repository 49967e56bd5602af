import json

import pytest
import torch

from divekit.errors import ConfigError
from divekit.runs import resolve_config, train
from divekit.tasks.seq2seq import masked_softmax_cross_entropy, teacher_forcing_inputs
from divekit.inference.translate import Translator


def test_masked_loss_book_values_and_the_valid_token_mean():
    logits, labels, valid_lens = torch.ones(3, 4, 10), torch.ones(3, 4, dtype=torch.long), torch.tensor([4, 2, 0])
    tokens = masked_softmax_cross_entropy(logits, labels, valid_lens, reduction="none")
    # per sequence, averaged over all num_steps positions: the book's numbers
    torch.testing.assert_close(tokens.mean(dim=1), torch.tensor([2.3026, 1.1513, 0.0]), atol=1e-4, rtol=0)
    # the training loss averages over the 6 valid tokens only: ln 10, not the book's mean 1.1513
    mean = masked_softmax_cross_entropy(logits, labels, valid_lens)
    assert mean.item() == pytest.approx(2.302585, abs=1e-6)
    assert masked_softmax_cross_entropy(logits, labels, valid_lens, reduction="sum").item() == pytest.approx(6 * 2.302585, abs=1e-5)


def test_masked_loss_ignores_whatever_sits_in_padding():
    logits, labels, lens = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5)), torch.tensor([3, 5])
    changed_logits, changed_labels = logits.clone(), labels.clone()
    changed_logits[0, 3:] = 100.0
    changed_labels[0, 3:] = 0
    assert masked_softmax_cross_entropy(logits, labels, lens) == masked_softmax_cross_entropy(changed_logits, changed_labels, lens)
    with pytest.raises(ValueError):
        masked_softmax_cross_entropy(logits, labels, lens, reduction="avg")


def test_teacher_forcing_shifts_the_target_behind_bos():
    Y = torch.tensor([[5, 6, 3, 1], [7, 3, 1, 1]])
    assert teacher_forcing_inputs(Y, bos=2).tolist() == [[2, 5, 6, 3], [2, 7, 3, 1]]


def _config(model: str = "transformer", **overrides):
    values = {"train.epochs": 2, "task.options.num_examples": 400, "task.options.num_test": 40, "train.progress": False,
              "data.batch_size": 64, "train.device": "cpu", "train.threads": 1, **overrides}  # fmt: skip
    return resolve_config(model, data="numbers-fr", overrides=values)


def test_training_writes_a_translation_run_that_translates(tmp_path):
    result = train(_config(), out_dir=tmp_path / "run", log=lambda _: None)
    first, last = result.history
    assert last["train_loss"] < first["train_loss"]
    assert {"test_loss", "test_bleu", "train_tokens_per_s", "epoch_tokens_per_s"} <= set(last)
    assert 0 <= last["test_bleu"] <= 100
    info = json.loads((tmp_path / "run" / "task.json").read_text())
    assert info["task"] == "seq2seq" and info["num_train"] == 400 and info["num_test"] == 40
    translator = Translator.from_run(tmp_path / "run")
    (out,) = translator.translate_batch(["one hundred and twelve"])
    assert out.source == "one hundred and twelve" and isinstance(out.text, str)
    streamed = list(translator.translate(iter(["seven", "eight", "nine"]), batch_size=2))
    assert [t.source for t in streamed] == ["seven", "eight", "nine"]


def test_resumed_translation_run_matches_an_uninterrupted_one(tmp_path):
    whole = train(_config("seq2seq", **{"task.options.bleu": False}), out_dir=tmp_path / "whole", log=lambda _: None)
    train(_config("seq2seq", **{"task.options.bleu": False, "train.epochs": 1}), out_dir=tmp_path / "part", log=lambda _: None)
    from divekit.runs import resume

    resumed = resume(tmp_path / "part", changes={"train.epochs": 2}, log=lambda _: None)
    assert resumed.final["train_loss"] == whole.final["train_loss"]
    assert resumed.final["test_loss"] == whole.final["test_loss"]


def test_tokens_are_the_throughput_unit():
    from divekit.data import load_dataset
    from tests.helpers import build_parts

    parts = build_parts(_config())
    src, src_valid, tgt, tgt_valid = parts.source.train_arrays
    batch = tuple(t[:5] for t in parts.source.train_arrays)
    out = parts.objective.train_step(parts.model, batch)
    assert parts.objective.unit == "tokens" and int(out.sums["count"]) == int(tgt_valid[:5].sum())
    assert src.shape[1] == tgt.shape[1] == 10 and parts.objective.monitor == "bleu"
    assert len(load_dataset("numbers-fr").held_out) == 1000


def test_grouped_evaluation_scores_every_held_out_pair_once_and_each_source_against_all_its_references():
    from divekit.data.translation import TranslationData
    from divekit.data.sources.translation import TranslationOptions, TranslationSource

    pairs = [("go .", "va !"), ("go .", "marche ."), ("hi .", "salut !"), ("run !", "cours !")] * 3
    data = TranslationData("toy", pairs, held_out=[("go .", "va !"), ("go .", "bouge !"), ("hi .", "salut .")])
    source = TranslationSource(data, TranslationOptions(min_freq=0), batch_size=4, eval_batch_size=8)
    (batch,) = list(source.eval_batches()["test"])
    src, src_valid, tgt, tgt_valid, refs = batch
    assert tgt.shape[:2] == (2, 2) and tgt_valid.tolist()[1][1] == 0  # "hi ." has one reference: one padding row
    assert list(refs) == [["va!", "bouge!"], ["salut."]]
    from divekit.tasks.seq2seq import as_pairs

    assert len(as_pairs(batch)[0]) == 3  # the loss covers each held-out pair once


@pytest.mark.parametrize("override, message", [({"task.options.num_steps": 1}, "num_steps"),
                                               ({"task.options.beam": 2}, "unknown option 'beam'"),
                                               ({"task.options.num_examples": 10**6}, "too many")])  # fmt: skip
def test_bad_task_options_are_config_errors(override, message):
    from divekit.runs.build import build_source

    with pytest.raises(ConfigError, match=message):
        build_source(_config(**override))
