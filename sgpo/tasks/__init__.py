"""Tasks by name: ``build_task(cfg)`` turns a ``conf/task/*.yaml`` node into a ``Task``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sgpo.registry import Registry
from sgpo.tasks.arithmetic import ArithmeticTask
from sgpo.tasks.base import Query, Task, data_fingerprint
from sgpo.tasks.gym import ReasoningGymTask
from sgpo.tasks.hf_dataset import HFDatasetTask
from sgpo.tasks.jsonl import JsonlTask

TASKS: Registry[type[Task]] = Registry("task")
TASKS.register("arithmetic")(ArithmeticTask)
TASKS.register("jsonl")(JsonlTask)
TASKS.register("hf_dataset")(HFDatasetTask)
TASKS.register("reasoning_gym")(ReasoningGymTask)


def build_task(cfg: Mapping[str, Any]) -> Task:
    """``cfg`` holds ``type`` (a registered task) plus that task's constructor arguments."""
    kwargs = {k: v for k, v in dict(cfg).items() if k not in ("type", "name")}
    if cfg["type"] == "reasoning_gym":  # the generator's name is the task's name (task.name=basic_arithmetic)
        kwargs["generator"] = cfg["name"]
    return TASKS.get(cfg["type"])(**kwargs)


__all__ = ["TASKS", "Query", "Task", "build_task", "data_fingerprint"]
