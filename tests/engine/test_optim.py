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


@pytest.mark.parametrize("optimizer, momentum, warmup", [("sgd", 0.95, 0.0), ("adam", 0.0, 1.0), ("sgd", 0.0, 0.0)])
def test_onecycle_follows_pytorchs_one_cycle(optimizer, momentum, warmup):
    """lr and momentum (SGD) or beta1 (Adam) step for step as torch.optim.lr_scheduler.OneCycleLR computes them."""
    config = OptimConfig(optimizer=optimizer, lr=0.5, momentum=momentum, schedule="onecycle", warmup_epochs=warmup)
    steps_per_epoch, epochs = 7, 3
    ours = build_optimizer(torch.nn.Linear(2, 1), config)
    sched = build_scheduler(ours, config, steps_per_epoch=steps_per_epoch, epochs=epochs)
    key = "betas" if optimizer == "adam" else "momentum"
    top = 0.9 if optimizer == "adam" else momentum
    reference = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.5, momentum=max(top, 0.5))
    ref = torch.optim.lr_scheduler.OneCycleLR(
        reference, max_lr=0.5, total_steps=steps_per_epoch * epochs, pct_start=(warmup or 0.3 * epochs) / epochs,
        cycle_momentum=True, base_momentum=top - 0.1, max_momentum=top, anneal_strategy="cos")
    for _ in range(steps_per_epoch * epochs):
        assert ours.param_groups[0]["lr"] == pytest.approx(reference.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        value = ours.param_groups[0][key]
        if optimizer == "adam":
            assert value[0] == pytest.approx(reference.param_groups[0]["momentum"]) and value[1] == 0.999
        elif momentum:
            assert value == pytest.approx(reference.param_groups[0]["momentum"])
        else:
            assert value == 0.0  # plain SGD has no momentum to cycle
        ours.step(), sched.step(), reference.step(), ref.step()


def test_onecycle_rises_then_falls():
    f = factors(OptimConfig(schedule="onecycle"), steps_per_epoch=10, epochs=4)
    peak = f.index(max(f))
    assert f[0] == pytest.approx(1 / 25) and max(f) == pytest.approx(1.0) and f[-1] == pytest.approx(1 / 25 / 1e4)
    assert all(a < b for a, b in zip(f[:peak], f[1:peak + 1])) and all(a > b for a, b in zip(f[peak:-1], f[peak + 1:]))


def test_onecycle_scheduler_state_is_plain_data_and_resumes():
    config = OptimConfig(schedule="onecycle", momentum=0.9)
    opt = build_optimizer(torch.nn.Linear(2, 1), config)
    sched = build_scheduler(opt, config, steps_per_epoch=5, epochs=2)
    for _ in range(4):
        opt.step(), sched.step()
    state = sched.state_dict()
    assert "_height" not in state and state["momentum_max"] == [0.9]
    again = build_optimizer(torch.nn.Linear(2, 1), config)
    resumed = build_scheduler(again, config, steps_per_epoch=5, epochs=2)
    again.load_state_dict(opt.state_dict()), resumed.load_state_dict(state)
    opt.step(), sched.step(), again.step(), resumed.step()
    assert again.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert again.param_groups[0]["momentum"] == opt.param_groups[0]["momentum"]
