"""Training in a notebook: detection both ways, the callbacks each mode gets, the live figure, the result table."""

from __future__ import annotations

import sys
import types

import pytest

from divekit.engine import display as display_module
from divekit.engine.callbacks import EpochLog, ProgressBar, RunFiles
from divekit.engine.display import NotebookDisplay, in_notebook, resolve_display, result_html
from divekit.errors import ConfigError
from divekit.runs import resolve_config, train
from tests.engine.test_no_sync import no_host_reads
from tests.helpers import make_trainer


class ZMQInteractiveShell:  # the name of ipykernel's shell class
    pass


class ColabShell(ZMQInteractiveShell):  # front ends subclass it
    pass


class TerminalInteractiveShell:  # plain `ipython` in a terminal
    pass


def fake_ipython(monkeypatch, shell):
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


@pytest.mark.parametrize("shell, expected", [(ZMQInteractiveShell(), True), (ColabShell(), True),
                                             (TerminalInteractiveShell(), False), (None, False)])  # fmt: skip
def test_a_jupyter_kernel_is_detected_and_a_terminal_is_not(monkeypatch, shell, expected):
    fake_ipython(monkeypatch, shell)
    assert in_notebook() is expected
    assert resolve_display("auto") == ("notebook" if expected else "terminal")
    assert resolve_display("off") == "off" and resolve_display("notebook") == "notebook"


def test_a_script_without_ipython_is_not_a_notebook(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert in_notebook() is False


def test_an_unknown_display_is_one_clear_error():
    with pytest.raises(ConfigError, match="train.display 'browser'; use one of auto, notebook, terminal, off"):
        resolve_config("mlp", overrides={"train.display": "browser"})


def callback_types(monkeypatch, shell, *, display="auto", log=None, out_dir=None, progress=True):
    fake_ipython(monkeypatch, shell)
    config = resolve_config("mlp", overrides={"train.display": display, "train.progress": progress, "train.epochs": 1})
    trainer = make_trainer(config, out_dir, log=log)
    return [type(c) for c in trainer.callbacks]


def test_each_display_gets_its_callbacks(monkeypatch, tmp_path):
    kernel, terminal = ZMQInteractiveShell(), None
    assert callback_types(monkeypatch, terminal) == [ProgressBar, EpochLog]  # a terminal: nothing changes
    assert callback_types(monkeypatch, kernel) == [NotebookDisplay]  # epoch lines shown in the cell, not on stderr
    assert callback_types(monkeypatch, kernel, log=print) == [NotebookDisplay, EpochLog]  # a log asked for still gets them
    assert callback_types(monkeypatch, kernel, display="terminal") == [ProgressBar, EpochLog]
    assert callback_types(monkeypatch, kernel, display="off") == [EpochLog]
    assert callback_types(monkeypatch, terminal, display="notebook", out_dir=tmp_path) == [NotebookDisplay, RunFiles]


class Handle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(("update", obj))


@pytest.fixture
def shown(monkeypatch):
    """What the display would have put in the cell: ("display" | "update", object)."""
    out: list = []

    def display(obj, *, display_id=False):
        out.append(("display", obj))
        return Handle(out) if display_id else None

    import IPython

    monkeypatch.setattr(display_module, "_display", display)
    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    return out


def images(shown):
    from IPython.display import Image

    return [(how, obj) for how, obj in shown if isinstance(obj, Image)]


def test_one_figure_is_redrawn_in_place_each_epoch(shown, monkeypatch):
    config = resolve_config("mlp", overrides={"train.epochs": 3, "data.val_split": 0.2, "train.sync_every": 5})
    result = train(config, write=False)
    drawn = images(shown)
    assert [how for how, _ in drawn] == ["display", "update", "update"]  # one figure, then in place
    assert all(obj.data[:4] == b"\x89PNG" for _, obj in drawn)
    texts = [obj.data for how, obj in shown if hasattr(obj, "data") and isinstance(obj.data, str)]
    assert any("epoch 3/3" in t and "val_acc" in t and "<pre" in t for t in texts)  # the epoch lines, in the cell
    assert result.best is not None


def test_without_ipywidgets_the_bar_is_a_line_of_html(shown, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    train(resolve_config("mlp", overrides={"train.epochs": 1, "train.sync_every": 5}), write=False)
    bars = [obj.data for how, obj in shown if isinstance(getattr(obj, "data", None), str) and obj.data.startswith("<code>[")]
    import re

    assert any(re.match(r"<code>\[\d+/\d+\] epoch 1/1", b) for b in bars) and "done: completed" in bars[-1]


def test_long_epochs_redraw_from_syncs_and_steps_read_nothing(shown, monkeypatch):
    real_step_end = NotebookDisplay.on_step_end

    def guarded(self, trainer, step):
        with no_host_reads(monkeypatch):
            real_step_end(self, trainer, step)

    monkeypatch.setattr(NotebookDisplay, "on_step_end", guarded)
    monkeypatch.setattr(display_module, "REDRAW_EVERY_S", 0.0)
    config = resolve_config("mlp", overrides={"train.epochs": 1, "train.sync_every": 2, "data.batch_size": 128})
    train(config, write=False)
    syncs = make_trainer(config).steps_per_epoch // 2
    assert 2 < len(images(shown)) <= syncs + 2  # at syncs only (the epoch end syncs once more), then the epoch


def test_the_result_shows_itself_as_a_small_html_table(tmp_path, monkeypatch):
    fake_ipython(monkeypatch, None)
    config = resolve_config("mlp", overrides={"train.epochs": 2, "data.val_split": 0.2, "train.progress": False})
    result = train(config, out_dir=tmp_path / "run", log=lambda m: None)
    page = result._repr_html_()
    assert page == result_html(result)
    for text in ("last epoch (2)", f"selected epoch ({result.best['epoch']})", "<code>val_acc</code>", "test_acc",
                 "checkpoints/best.pt", str(tmp_path / "run"), "data:image/png;base64,"):  # fmt: skip
        assert text in page, text
    assert f"{result.final['test_acc']:.4f}" in page


def test_without_validation_the_table_claims_no_best(monkeypatch):
    fake_ipython(monkeypatch, None)
    result = train(resolve_config("mlp", overrides={"train.epochs": 1, "train.progress": False}), write=False,
                   log=lambda m: None)  # fmt: skip
    page = result_html(result)
    assert "selected epoch" not in page and "no best epoch is chosen" in page and "Nothing was written" in page
