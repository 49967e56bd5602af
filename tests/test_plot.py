"""Training-curve figures: one panel per metric, splits told apart by colour and line style, the selection marked."""

from __future__ import annotations

import pytest

from divekit.plot import SPLIT_STYLES, curve_panels, curves_figure, plot_curves


def history(metrics, epochs=3, splits=("train", "val", "test")):
    return [{"epoch": e, "lr": 0.1, "train_examples_per_s": 1e3, "epoch_time_s": 1.0,
             **{f"{s}_{m}": 1.0 / (e + i) for s in splits for i, m in enumerate(metrics)}}
            for e in range(1, epochs + 1)]  # fmt: skip


@pytest.mark.parametrize("family, metrics, titles", [
    ("classification", ("loss", "acc"), ["loss", "accuracy"]),
    ("language model", ("loss", "ppl"), ["loss", "perplexity"]),
    ("seq2seq", ("loss", "bleu"), ["loss", "BLEU"]),
    ("regression", ("loss",), ["loss"]),
    ("a loss function with metrics", ("mae", "loss"), ["loss", "mae"]),
])  # fmt: skip
def test_one_panel_per_metric_with_its_own_axis(family, metrics, titles):
    fig = curves_figure(history(metrics))
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert [ax.get_title() for ax in shown] == titles
    for ax in shown:  # throughputs, times and the lr never become curves
        assert sorted(line.get_label() for line in ax.get_lines()) == ["test", "train", "validation"]
    assert len({id(ax) for ax in shown}) == len(titles)  # no twin axes: perplexity no longer shares the loss axis


def test_splits_differ_in_colour_and_line_style():
    fig = curves_figure(history(("loss", "acc")))
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    styles = {(line.get_color(), line.get_linestyle()) for line in lines.values()}
    assert len({c for c, _ in styles}) == 3 and len({s for _, s in styles}) == 3
    assert {label for label in lines} == {style["label"] for style in SPLIT_STYLES.values()}
    assert fig.axes[0].get_legend() is not None


def test_the_selected_epoch_is_marked_on_every_panel():
    fig = curves_figure(history(("loss", "acc")), best_epoch=2, monitor="val_acc")
    for ax in fig.axes:
        marks = [line for line in ax.get_lines() if line.get_label().startswith("selected")]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [2, 2]
        assert marks[0].get_label() == "selected: epoch 2 (val_acc)"


def test_a_split_missing_from_the_history_draws_no_line():
    fig = curves_figure(history(("loss", "ppl"), splits=("train",)))
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["train"]
    assert curve_panels([{"epoch": 1, "train_loss": 1.0, "train_tokens_per_s": 5.0}]) == ["loss"]


def test_plot_curves_writes_a_png(tmp_path):
    plot_curves(history(("loss", "bleu")), tmp_path / "curves.png", best_epoch=1, monitor="val_bleu")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
