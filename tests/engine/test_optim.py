import math

import pytest
import torch

from divekit.runs.config import OptimConfig
from divekit.engine.optim import build_optimizer, build_scheduler, lr_factor


def factors(config, steps_per_epoch=10, epochs=4):
    return [lr_factor(s, config=config, steps_per_epoch=steps_per_epoch, epochs=epochs) for s in range(40)]


def test_constant_and_warmup():
    assert factors(OptimConfig()) == [1.0] * 40
    warm = factors(OptimConfig(warmup_epochs=1))
    assert warm[:10] == pytest.approx([(i + 1) / 10 for i in range(10)]) and warm[10:] == [1.0] * 30


def test_step_decay():
    f = factors(OptimConfig(schedule="step", step_size=2, gamma=0.5))
    assert f[0] == f[19] == 1.0 and f[20] == f[39] == 0.5


def test_cosine_decays_to_zero():
    f = factors(OptimConfig(schedule="cosine"))
    assert f[0] == 1.0 and f[20] == pytest.approx(0.5) and f[39] == pytest.approx((1 + math.cos(math.pi * 39 / 40)) / 2)


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizers(name, cls):
    model = torch.nn.Linear(2, 1)
    model.bias.requires_grad_(False)
    opt = build_optimizer(model, OptimConfig(optimizer=name, lr=0.3))
    assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.3
    assert len(opt.param_groups[0]["params"]) == 1  # frozen parameters are left out


def test_scheduler_state_is_plain_data():
    opt = build_optimizer(torch.nn.Linear(2, 1), OptimConfig(schedule="cosine"))
    sched = build_scheduler(opt, OptimConfig(schedule="cosine"), steps_per_epoch=5, epochs=2)
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert state["last_epoch"] == 3 and all(fn is None for fn in state["lr_lambdas"])
