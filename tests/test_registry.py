"""The one registry class behind models, data sets and tasks."""

import pytest

from divekit.data.registry import DATASETS
from divekit.errors import ConfigError
from divekit.models.registry import MODELS
from divekit.registry import Registry
from divekit.tasks import TASK_REGISTRY


def test_add_get_list_and_the_closest_name():
    reg = Registry("widget")
    reg.add("gear", 1, module="m")
    reg.add("cog", 2, module="m")
    assert reg.get("gear") == 1 and reg.names() == ["cog", "gear"] and "cog" in reg and len(reg) == 2
    assert reg.names(lambda e: e > 1) == ["cog"]
    with pytest.raises(ConfigError, match="unknown widget 'gears'. Did you mean 'gear'"):
        reg.get("gears")


def test_same_module_replaces_another_module_is_refused_naming_both():
    reg = Registry("widget")
    reg.add("gear", 1, module="a")
    reg.add("gear", 2, module="a")
    assert reg.get("gear") == 2
    with pytest.raises(ValueError, match="already registered by a; b cannot"):
        reg.add("gear", 3, module="b")


def test_models_data_sets_and_tasks_share_the_class_and_the_task_names():
    import divekit.data  # noqa: F401
    import divekit.models  # noqa: F401

    assert all(isinstance(r, Registry) for r in (MODELS, DATASETS, TASK_REGISTRY))
    tasks = set(TASK_REGISTRY.names())
    assert {MODELS.get(n).task for n in MODELS.names()} <= tasks
    assert {DATASETS.get(n).task for n in DATASETS.names()} <= tasks
