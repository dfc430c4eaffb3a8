"""Prefect flows: which stages run, in what order, for whom. No maths, no pixels.

Every (person, stage) pair is one Prefect task run, chained per person, so a Dask task runner spreads persons over
cores or a cluster while each person's stages stay in order. The tasks return small `StageOutcome` records
(paths live in the workspace); the person's manifest, not Prefect's result cache, decides what is fresh.
A failed stage fails its task run (visible in the Prefect UI) and the person's later stages record ``blocked``;
other persons carry on, and the flow ends with a summary instead of an exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed
from prefect.utilities.annotations import allow_failure

from dinar_core.errors import DinarError
from tasks.config import PipelineConfig, from_dict, to_dict
from tasks.discover import discover_persons, find_workspaces
from tasks.report import write_report
from tasks.runner import (StageOutcome, clean_temporaries, prepare_person, record_crash, run_stage,
                          stage_is_fresh)
from tasks.stages import get_stage, stage_names, stages_between
from tasks.status import runs_status, summarize
from tasks.workspace import BLOCKED, DONE, FAILED, Workspace, safe_id

# Progress observers, called as (stage, person, status) whenever a stage task finishes. The CLI adds its
# progress bars here; a flow run by Prefect alone has none.
PROGRESS_HOOKS: list[Callable[[str, str, str], None]] = []


def _transient(task, task_run, state) -> bool:
    """Retry only I/O hiccups (a network file system, a full temporary disk), never bad input or bugs."""
    try:
        state.result()
    except DinarError:
        return False
    except OSError:
        return True
    except Exception:
        return False
    return False


@task(name="stage", task_run_name="{stage}:{person}", retries=2, retry_delay_seconds=2,
      retry_condition_fn=_transient, cache_policy=NONE, persist_result=False)
def stage_task(stage: str, person_dir: str, config: dict, force: bool = False, person: str = "") -> StageOutcome:
    """Run one stage for one person (cache check, work, manifest record). Raises if the stage failed."""
    return run_stage(get_stage(stage), Path(person_dir), from_dict(config), force=force, reraise=True)


def _submit_chain(ws: Workspace, stages: list[str], cfg: PipelineConfig, force: set[str]
                  ) -> list[tuple[PrefectFuture, str, str]]:
    """Submit `stages` for one person, each waiting for the previous one (failed or not: a failed upstream stage
    is recorded as blocking by the next one, which therefore must still run).

    Leading stages whose cached result is fresh are not submitted at all (a hash check here costs far less than a
    task run), so a rerun of a finished batch starts no task; progress hooks still hear of them as done."""
    config = to_dict(cfg)
    while stages and stages[0] not in force and stage_is_fresh(get_stage(stages[0]), ws, cfg):
        for hook in PROGRESS_HOOKS:
            hook(stages[0], ws.person, DONE)
        stages = stages[1:]
    futures, prev = [], None
    for name in stages:
        fut = stage_task.submit(name, str(ws.root), config, force=name in force, person=ws.person,
                                wait_for=[allow_failure(prev)] if prev is not None else None)
        futures.append((fut, name, str(ws.root)))
        prev = fut
    return futures


def _collect(futures: list[tuple[PrefectFuture, str, str]]) -> dict:
    """Wait for every task, tell the progress hooks, count executed stages."""
    by_future = {f: (stage, person_dir) for f, stage, person_dir in futures}
    executed = 0
    for fut in as_completed(list(by_future)):
        stage, person_dir = by_future[fut]
        outcome = fut.result(raise_on_failure=False)
        if isinstance(outcome, StageOutcome):
            status = outcome.status
            executed += int(outcome.executed)
        else:  # the task raised: normally recorded by run_stage, but a dead worker or import error is not
            status = FAILED
            executed += 1
            record_crash(Path(person_dir), stage, outcome if isinstance(outcome, BaseException)
                         else RuntimeError(f"task ended in state {fut.state.name}"))
        person = Path(person_dir).name
        for hook in PROGRESS_HOOKS:
            hook(stage, person, status)
    return {"executed": executed}


def _finish(runs: Path, stage_list: list[str], counts: dict, ignored: list[str] | None = None) -> dict:
    statuses = runs_status(runs, stage_list)
    summary = summarize(statuses)
    summary.update(counts)
    summary["report"] = str(write_report(runs))
    summary["runs"] = str(runs)
    summary["ignored"] = ignored or []
    return summary


def fresh_summary(photos: Path, out: Path, cfg: PipelineConfig, until: str | None = None) -> dict | None:
    """The summary `process_folder` would return when every stage (up to `until`) of every person is already fresh
    under `cfg`, found by hash checks alone, without a flow run: so `dinar run` on a finished batch does not start
    Prefect (its temporary server takes 15-30 s) to learn that nothing is to do. None when anything would run (a new,
    changed, failed or unfinished person, another configuration, a changed list of photos)."""
    from tasks.config import dump_yaml

    stages = stages_between(None, until)
    found = discover_persons(Path(photos))
    config_text = dump_yaml(cfg)
    for person in found.persons:
        ws = Workspace(Path(out) / person.person)
        if not ws.config_path.is_file() or ws.config_path.read_text() != config_text:
            return None
        if ws.read_manifest().get("sources") != [str(Path(s).resolve()) for s in person.sources]:
            return None
        if not all(stage_is_fresh(stage, ws, cfg) for stage in stages):
            return None
    for person in found.persons:  # as prepare_person does: leftovers of a killed run's writes go
        clean_temporaries(Path(out) / person.person)
    if not found.persons:
        return None
    return _finish(Path(out), [s.name for s in stages], {"executed": 0}, [str(p) for p in found.ignored])


@flow(name="dinar-process-folder", log_prints=True)
def process_folder(photos: str, out: str, config: dict | None = None, until: str | None = None,
                   force: bool = False) -> dict:
    """Every photo or sub-folder of `photos` is a person: run its stages up to `until` into ``out/<person>/``."""
    cfg = from_dict(config or {})
    stages = [s.name for s in stages_between(None, until)]
    found = discover_persons(Path(photos))
    runs = Path(out)
    futures = []
    for person in found.persons:
        ws = prepare_person(runs / person.person, person.sources, cfg)
        futures += _submit_chain(ws, stages, cfg, set(stages) if force else set())
    counts = _collect(futures)
    return _finish(runs, stages, counts, [str(p) for p in found.ignored])


@flow(name="dinar-process-person", log_prints=True)
def process_person(photos: str, out: str, person: str | None = None, config: dict | None = None,
                   until: str | None = None, force: bool = False) -> dict:
    """One person: a photo, or a folder whose photos all show the same person."""
    cfg = from_dict(config or {})
    stages = [s.name for s in stages_between(None, until)]
    src = Path(photos)
    sources = [src.resolve()] if src.is_file() else [p for ps in discover_persons(src).persons for p in ps.sources]
    ws = prepare_person(Path(out) / (person or safe_id(src.stem if src.is_file() else src.name)), sources, cfg)
    counts = _collect(_submit_chain(ws, stages, cfg, set(stages) if force else set()))
    return _finish(Path(out), stages, counts)


def _rerun_plan(ws: Workspace, failed_only: bool, stage: str | None) -> list[str]:
    """Which stages to submit for `ws`: from the first failed/blocked stage (`failed_only`), from `stage`, or all
    recorded ones, up to the furthest stage the person has reached."""
    names = stage_names()
    recorded = ws.read_manifest()["stages"]
    reached = [n for n in names if n in recorded]
    last = names.index(reached[-1]) if reached else 0
    if stage is not None:
        first = names.index(get_stage(stage).name)
        last = max(last, first)
    elif failed_only:
        bad = [n for n in names if recorded.get(n, {}).get("status") in (FAILED, BLOCKED)]
        if not bad:
            return []
        first = names.index(bad[0])
    else:
        first = 0
    return names[first:last + 1]


@flow(name="dinar-rerun", log_prints=True)
def rerun(runs: str, failed_only: bool = False, stage: str | None = None, force: bool = False,
          config: dict | None = None, config_file: str | None = None, overrides: list[str] | None = None) -> dict:
    """Rerun the stages of existing workspaces that are failed or stale (`force`: run them regardless).

    Each person keeps the config it was run with (its ``config.yaml``), with the YAML `config_file` and the
    ``section.key=value`` `overrides` applied on top; `config` (a whole config) replaces it instead.
    """
    from tasks.config import resolve_config

    futures, all_stages = [], set()
    for ws in find_workspaces(Path(runs)):
        plan = _rerun_plan(ws, failed_only, stage)
        if not plan:
            continue
        cfg = resolve_config(config if config is not None else ws.config_path, config_file, overrides or ())
        prepare_person(ws.root, ws.sources(), cfg)
        all_stages.update(plan)
        forced = set(plan) if force and stage is None else ({get_stage(stage).name} if force else set())
        futures += _submit_chain(ws, plan, cfg, forced)
    counts = _collect(futures)
    return _finish(Path(runs), [n for n in stage_names() if n in all_stages] or stage_names(), counts)


def direct_process_folder(photos: str, out: str, config: PipelineConfig, until: str | None = None) -> dict:
    """The same work as `process_folder` with the stage functions called directly, no Prefect (for benchmarks
    that measure the orchestration overhead)."""
    stages = stages_between(None, until)
    executed = 0
    for person in discover_persons(Path(photos)).persons:
        ws = prepare_person(Path(out) / person.person, person.sources, config)
        for st in stages:
            outcome = run_stage(st, ws.root, config)
            executed += int(outcome.executed)
    return {"executed": executed}


__all__ = ["process_folder", "process_person", "rerun", "stage_task", "PROGRESS_HOOKS",
           "direct_process_folder"]
