"""Training in a Jupyter notebook: a progress widget, one live figure redrawn in place, a result table.

The book trains in notebooks, where its ``Animator`` redraws the curves in the
cell as training goes. Inside a Jupyter kernel (``train.display`` ``auto`` or
``notebook``) the trainer's default callbacks are :class:`NotebookDisplay`
instead of the terminal's tqdm bar and stderr lines: a progress bar widget
with the running metrics, the epoch lines as text, and one figure of the
curves (:func:`divekit.plot.curves_figure`) updated in place each epoch and,
within a long epoch, at most every ``REDRAW_EVERY_S`` seconds from
``on_sync`` (when the running metrics have already been read; nothing here
reads the device). :func:`result_html` is how a :class:`RunResult` shows itself.
"""

from __future__ import annotations

import base64
import html
import sys
import time
from typing import TYPE_CHECKING, Any

from divekit.engine.callbacks import Callback
from divekit.engine.progress import metric_items, postfix, summary_line

if TYPE_CHECKING:
    from divekit.engine.result import RunResult
    from divekit.engine.trainer import Trainer

REDRAW_EVERY_S = 5.0  # within an epoch, redraw the figure at most this often (a redraw costs ~0.2 s)
BAR_EVERY_S = 0.1  # move the progress widget at most this often (each move is a message to the browser)
KERNEL_SHELLS = ("ZMQInteractiveShell",)  # the shell class of ipykernel (Jupyter, VS Code, Colab subclass it)


def in_notebook() -> bool:
    """Whether this code runs inside a Jupyter kernel (IPython's kernel shell), not a terminal or script.

    IPython is only asked if it is already imported: a kernel always has it,
    and a script need not pay for the import.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    if shell is None:
        return False
    return any(cls.__name__ in KERNEL_SHELLS for cls in type(shell).__mro__)


def resolve_display(mode: str) -> str:
    """``notebook``, ``terminal`` or ``off`` for ``train.display`` (``auto`` looks where it runs)."""
    if mode == "auto":
        return "notebook" if in_notebook() else "terminal"
    return mode


def _display(obj: Any, *, display_id: bool = False) -> Any:
    from IPython.display import display

    return display(obj, display_id=display_id)


def png_image(fig: Any) -> Any:
    """A figure as an IPython image (shown by every front end and kept by ``nbconvert``)."""
    from IPython.display import Image

    from divekit.plot import figure_png

    return Image(data=figure_png(fig), format="png")


class ProgressWidget:
    """An ``ipywidgets`` progress bar with a label; a line of HTML where ipywidgets is not installed."""

    def __init__(self) -> None:
        self.total, self.done, self.text, self.shown_at = 0, 0, "", 0.0
        try:
            import ipywidgets
        except ImportError:
            self.bar = None
            self.handle = _display(self._html(), display_id=True)
            return
        self.bar = ipywidgets.IntProgress(min=0, max=1, value=0, layout=ipywidgets.Layout(width="40%"))
        self.label = ipywidgets.HTML()
        _display(ipywidgets.HBox([self.bar, self.label]))

    def _html(self) -> Any:
        from IPython.display import HTML

        share = f"{self.done}/{self.total}" if self.total else str(self.done)
        return HTML(f"<code>[{share}] {html.escape(self.text)}</code>")

    def start(self, *, total: int | None, done: int, text: str) -> None:
        self.total, self.done, self.text = total or 0, done, text
        if self.bar is not None:
            self.bar.max, self.bar.bar_style = max(self.total, done, 1), ""
        self.show()

    def step(self) -> None:
        self.done += 1
        if time.monotonic() - self.shown_at > BAR_EVERY_S:
            self.show()

    def show(self, text: str | None = None, *, finished: bool = False) -> None:
        self.text = self.text if text is None else text
        self.shown_at = time.monotonic()
        if self.bar is None:
            self.handle.update(self._html())
            return
        self.bar.value = self.bar.max if finished else min(self.done, self.bar.max)
        self.bar.bar_style = "success" if finished else ""
        self.label.value = f"<code>{html.escape(self.text)}</code>"


class NotebookDisplay(Callback):
    """The progress widget, the epoch lines and one live figure of the curves, in the running cell.

    Args:
        bar: show the progress widget (``train.progress``).
        redraw_every_s: within an epoch, redraw the figure at most this often.
    """

    def __init__(self, *, bar: bool = True, redraw_every_s: float | None = None) -> None:
        self.show_bar = bar
        self.redraw_every_s = REDRAW_EVERY_S if redraw_every_s is None else redraw_every_s
        self.bar: ProgressWidget | None = None
        self.figure: Any = None  # the display handle the figure is redrawn in
        self.lines: Any = None  # the display handle of the epoch lines
        self.partial: list[dict[str, float]] = []  # running training metrics within the current epoch
        self.drawn_at = 0.0
        self.redraws = 0

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.show_bar:
            self.bar = ProgressWidget()
        self.drawn_at = time.monotonic()

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.partial = []
        if self.bar is not None:
            self.bar.start(total=trainer.steps_per_epoch, done=trainer.progress.batch,
                           text=f"epoch {epoch + 1}/{trainer.train_config.epochs}")  # fmt: skip

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if self.bar is not None:
            self.bar.step()

    def on_sync(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        p = trainer.progress
        if self.bar is not None:
            figures = postfix(metrics, trainer.running_rate(), trainer.objective.unit)
            epoch = f"epoch {p.epoch + 1}/{trainer.train_config.epochs}"
            self.bar.show("  ".join([epoch, *(f"{k} {v}" for k, v in figures.items())]))
        if metrics and trainer.steps_per_epoch:
            self.partial.append({"epoch": p.epoch + p.batch / trainer.steps_per_epoch, **metrics})
            if time.monotonic() - self.drawn_at > self.redraw_every_s:
                self.draw(trainer, trainer.history + self.partial)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.partial = []
        self.draw(trainer, trainer.history)
        line = summary_line(record, epochs=trainer.train_config.epochs, unit=trainer.objective.unit)
        self._lines([summary_line(r, epochs=trainer.train_config.epochs, unit=trainer.objective.unit)
                     for r in trainer.history[:-1]] + [line])  # fmt: skip

    def on_fit_end(self, trainer: Trainer, result: RunResult) -> None:
        if self.bar is not None:
            self.bar.show(f"done: {result.stop_reason}", finished=result.stop_reason != "interrupted")

    def draw(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        """Redraw the one live figure in place."""
        from divekit.plot import curves_figure

        best = trainer.best["epoch"] if trainer.best else None
        image = png_image(curves_figure(records, best_epoch=best, monitor=trainer.monitor))
        if self.figure is None:
            self.figure = _display(image, display_id=True)
        else:
            self.figure.update(image)
        self.drawn_at, self.redraws = time.monotonic(), self.redraws + 1

    def _lines(self, lines: list[str]) -> None:
        from IPython.display import HTML

        text = HTML("<pre style='font-size:85%'>" + html.escape("\n".join(lines)) + "</pre>")
        if self.lines is None:
            self.lines = _display(text, display_id=True)
        else:
            self.lines.update(text)


def result_html(result: RunResult) -> str:
    """A small HTML summary of a run: last and selected epochs' metrics, the monitor, the curves, the folder."""
    if not result.history:
        return "<p>no epoch was trained</p>"
    final, best = result.final, result.best
    head = f"<p><b>{len(result.history)} epochs</b> ({html.escape(result.stop_reason)})</p>"
    columns = [f"last epoch ({final['epoch']})"] + ([f"selected epoch ({best['epoch']})"] if best else [])
    rows = [f"<tr><td>{html.escape(key)}</td>" + "".join(f"<td>{_number(r.get(key))}</td>" for r in (final, best) if r)
            + "</tr>" for key, _ in metric_items(final)]  # fmt: skip
    table = ("<table><tr><th>metric</th>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
             + "".join(rows) + "</table>")  # fmt: skip
    return head + table + _selection(result) + _curves_img(result) + _folder(result)


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


def _selection(result: RunResult) -> str:
    if result.best is None:
        return "<p>No validation split, so no best epoch is chosen: the last epoch's numbers are the result.</p>"
    value = result.best.get(result.monitor or "")
    shown = f" = {value:.4f}" if value is not None else ""
    where = " (<code>checkpoints/best.pt</code>)" if result.out_dir is not None else ""
    return (f"<p>Selected on the validation split by <code>{html.escape(str(result.monitor))}</code>{shown}: "
            f"epoch {result.best['epoch']}{where}.</p>")  # fmt: skip


def _curves_img(result: RunResult) -> str:
    from divekit.plot import curves_figure, figure_png

    fig = curves_figure(result.history, best_epoch=result.best["epoch"] if result.best else None, monitor=result.monitor)
    data = base64.b64encode(figure_png(fig, dpi=80)).decode("ascii")
    return f"<img alt='training curves' src='data:image/png;base64,{data}'/>"


def _folder(result: RunResult) -> str:
    if result.out_dir is None:
        return "<p>Nothing was written (no run folder).</p>"
    return f"<p>Run folder: <code>{html.escape(str(result.out_dir))}</code></p>"

