"""The stages in pipeline order. Each stage module defines ``STAGE`` (a `tasks.runner.Stage`)."""

from __future__ import annotations

import importlib

from tasks.runner import Stage

# Module names in pipeline order; a later issue's stage is added here when it lands.
_MODULES = ("tasks.ingest", "tasks.segment", "tasks.keypoints", "tasks.fit", "tasks.avatar", "tasks.render",
            "tasks.export")


def all_stages() -> list[Stage]:
    stages = [importlib.import_module(m).STAGE for m in _MODULES]
    for module, stage in zip(_MODULES, stages):
        if stage.name != module.rsplit(".", 1)[1]:  # what lets `stage_names` answer without importing the stages
            raise ValueError(f"{module}.STAGE is named {stage.name!r}: a stage is named after its module; rename "
                             f"the stage or the module")
    return stages


def stage_names() -> list[str]:
    """The stage names in order, read from `_MODULES` (a stage is named after its module, `all_stages` checks it):
    no stage module is imported, so `dinar status` and `dinar report` need neither torch nor OpenCV."""
    return [m.rsplit(".", 1)[1] for m in _MODULES]


def get_stage(name: str) -> Stage:
    for stage in all_stages():
        if stage.name == name:
            return stage
    raise ValueError(f"unknown stage {name!r}; stages are: {', '.join(stage_names())}")


def stages_between(first: str | None = None, last: str | None = None) -> list[Stage]:
    """The stages from `first` to `last` inclusive, in order (None = from the start / to the end)."""
    stages = all_stages()
    names = [s.name for s in stages]
    lo = names.index(get_stage(first).name) if first else 0
    hi = names.index(get_stage(last).name) if last else len(stages) - 1
    if lo > hi:
        raise ValueError(f"stage {first!r} comes after {last!r}")
    return stages[lo:hi + 1]
