"""Start-up imports only what a command uses (issue 16): the CLI, `env`, `models` and a training run's start.

torchvision (whose package imports its models, and through them
``torch._dynamo``: seconds at every start), matplotlib (only when a figure is
drawn) and ``torch._dynamo`` must stay out. One exception is PyTorch's own:
``torch.optim.Optimizer`` imports ``torch._dynamo`` when it is built and at
every ``step()``, so a training run may load it, but only from there.
Each check runs in a fresh interpreter and reads its ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import shared_data

NEVER = ("torchvision", "matplotlib")  # any of their submodules counts
DYNAMO = "torch._dynamo"

# Runs `divekit ARGS`; notes every module imported, and who first imported torch._dynamo; at the first
# training step writes that to the file named by the first argument and ends the process.
PROBE = textwrap.dedent(r"""
    import json, os, runpy, sys, traceback
    out = sys.argv.pop(1)
    dynamo_stack = []

    class Watch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch._dynamo" and not dynamo_stack:
                dynamo_stack.extend(frame.filename for frame in traceback.extract_stack()[:-1])
            return None

    def report(**fields):
        with open(out, "w") as handle:
            json.dump({"modules": sorted(sys.modules), "dynamo_stack": dynamo_stack, **fields}, handle)

    sys.meta_path.insert(0, Watch())
    if sys.argv[1:2] == ["train"]:
        from divekit.engine import trainer

        def first_step(self, batch):
            report(first_step=True)
            os._exit(0)

        trainer.Trainer._step = first_step
    sys.argv = ["divekit", *sys.argv[1:]]
    try:
        runpy.run_module("divekit", run_name="__main__", alter_sys=True)
    finally:
        report(first_step=False)
""")


def probe(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "probe.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert out.exists(), done.stderr[-3000:]
    return json.loads(out.read_text())


def heavy(modules: list[str], *, dynamo: bool = True) -> list[str]:
    """The modules of ``NEVER`` (and ``torch._dynamo``) among ``modules``."""
    banned = NEVER + ((DYNAMO,) if dynamo else ())
    return [m for m in modules if any(m == b or m.startswith(b + ".") for b in banned)]


def test_importing_the_cli_imports_no_torch_at_all():
    code = "import json, sys, divekit.cli; print(json.dumps(sorted(sys.modules)))"
    modules = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout)  # fmt: skip
    assert heavy(modules) == [] and "torch" not in modules


@pytest.mark.parametrize("command", [["env"], ["models"]])
def test_listing_commands_load_torch_but_nothing_heavier(tmp_path, command):
    seen = probe(tmp_path, *command)
    assert heavy(seen["modules"]) == []


def assert_light_training_start(seen: dict) -> None:
    assert seen["first_step"], "the run never reached its first training step"
    assert heavy(seen["modules"], dynamo=False) == []
    if DYNAMO in seen["modules"]:  # PyTorch's optimiser imports it; nothing else may
        optim = [f for f in seen["dynamo_stack"] if "/torch/optim/" in f.replace("\\", "/")]
        assert optim, "torch._dynamo was imported outside torch.optim:\n" + "\n".join(seen["dynamo_stack"])


def test_a_plain_training_run_starts_without_torchvision_dynamo_or_matplotlib(tmp_path):
    assert_light_training_start(probe(tmp_path, "train", "lenet", "--epochs", "1", "--no-progress",
                                      "--out", str(tmp_path / "run")))  # fmt: skip


def test_the_fashion_mnist_run_starts_just_as_light(tmp_path):
    data = shared_data("fashion-mnist")
    assert_light_training_start(probe(tmp_path, "train", "lenet", "--data", "fashion-mnist", "--data-dir", str(data),
                                      "--epochs", "1", "--no-progress", "--out", str(tmp_path / "run")))  # fmt: skip
