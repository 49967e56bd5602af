"""Freed host memory stays in the process while training (glibc), so steps stop paying page faults for it.

Each measurement trains LeNet for 25 steps in a fresh interpreter (glibc's
thresholds move with everything a process allocated before) and counts the
page faults of the last 20. With glibc's defaults they ranged from 1 to
132,660 in ten runs (most runs 35k-130k: the activations are handed back to
the kernel and faulted in again at every step); with the memory kept, from 0
to 1,176.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from divekit.engine import allocator
from divekit.engine.allocator import kept_freed_memory

STEPS = textwrap.dedent("""
    import resource, torch
    from torch.nn import functional as F
    from divekit.engine.allocator import kept_freed_memory
    from divekit.models import create_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("lenet")
    X, y = torch.rand(256, 1, 28, 28), torch.randint(0, 10, (256,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def step():
        loss = F.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with kept_freed_memory():
        for _ in range(5):  # the heap settles into the step's pattern
            step()
        before = faults()
        for _ in range(20):
            step()
        print(faults() - before)
""")
PAGES_PER_STEP = 6000  # LeNet's activations and their gradients at batch 256: about 24 MB


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc's malloc only")
def test_training_steps_reuse_the_memory_they_freed():
    runs = [int(subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]  # fmt: skip
    assert max(runs) < 20 * PAGES_PER_STEP / 10, f"page faults over 20 steps: {runs}"


def test_elsewhere_nothing_changes(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    with kept_freed_memory() as changed:
        assert not changed
