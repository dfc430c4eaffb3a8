"""Prefect flows: which stages run, in what order, for whom. No maths, no pixels.

Every (person, stage) pair is one Prefect task run, chained per person, so a Dask task runner spreads persons over
cores or a cluster while each person's stages stay in order. The tasks return small `StageOutcome` records
(paths live in the workspace); the person's manifest, not Prefect's result cache, decides what is fresh.
A failed stage fails its task run (visible in the Prefect UI) and the person's later stages record ``blocked``;
other persons carry on, and the flow ends with a summary instead of an exception. A failure on bad input is not
retried by the next `process_folder` while its inputs are unchanged (`rerun` retries it). Every flow holds the runs
folder's lock (`tasks.lock`), so two runs on one folder never work side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed
from prefect.utilities.annotations import allow_failure

from tasks.config import PipelineConfig, from_dict, to_dict
from tasks.discover import discover_persons, find_workspaces
from tasks.report import write_report
from dinar_core.errors import RunsBusyError, UnsafeWorkspaceError
from tasks.lock import runs_lock
from tasks.runner import (StageOutcome, clean_temporaries, failed_unchanged, is_transient, prepare_person,
                          record_crash, run_stage, stage_is_fresh)
from tasks.stages import get_stage, stage_names, stages_between
from tasks.status import runs_status, summarize
from tasks.workspace import BLOCKED, DONE, FAILED, Workspace, safe_id

# Progress observers, called as (stage, person, status) whenever a stage task finishes. The CLI adds its
# progress bars here; a flow run by Prefect alone has none.
PROGRESS_HOOKS: list[Callable[[str, str, str], None]] = []


def _transient(task, task_run, state) -> bool:
    """Retry only I/O hiccups (`tasks.runner.is_transient`: EIO, EAGAIN, ETIMEDOUT, ESTALE...), never bad input,
    bugs or deterministic OS errors (ENAMETOOLONG, EACCES, ENOENT...)."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


@task(name="stage", task_run_name="{stage}:{person}", retries=2, retry_delay_seconds=2,
      retry_condition_fn=_transient, cache_policy=NONE, persist_result=False)
def stage_task(stage: str, person_dir: str, config: dict, force: bool = False, person: str = "") -> StageOutcome:
    """Run one stage for one person (cache check, work, manifest record). Raises if the stage failed."""
    return run_stage(get_stage(stage), Path(person_dir), from_dict(config), force=force, reraise=True)


def _submit_chain(ws: Workspace, stages: list[str], cfg: PipelineConfig, force: set[str],
                  retry_failed: bool = False) -> tuple[list[tuple[PrefectFuture, str, str]], bool]:
    """Submit `stages` for one person, each waiting for the previous one (failed or not: a failed upstream stage
    is recorded as blocking by the next one, which therefore must still run). Returns the futures, and whether
    the person was skipped as an unchanged failure.

    Leading stages whose cached result is fresh are not submitted at all (a hash check here costs far less than a
    task run), so a rerun of a finished batch starts no task; progress hooks still hear of them as done. Nor is a
    person whose next stage failed on a non-transient error under its current cache key (`failed_unchanged`: the
    same input would fail the same way), unless `retry_failed` or the stage is forced."""
    config = to_dict(cfg)
    fresh, stages, skipped = _plan(ws, stages, cfg, force, retry_failed)
    for name in fresh:
        _tell(name, ws.person, DONE)
    if skipped:
        for i, name in enumerate(stages):
            _tell(name, ws.person, FAILED if i == 0 else BLOCKED)
        return [], True
    futures, prev = [], None
    for name in stages:
        fut = stage_task.submit(name, str(ws.root), config, force=name in force, person=ws.person,
                                wait_for=[allow_failure(prev)] if prev is not None else None)
        futures.append((fut, name, str(ws.root)))
        prev = fut
    return futures, False


def _plan(ws: Workspace, stages: list[str], cfg: PipelineConfig, force: set[str], retry_failed: bool
          ) -> tuple[list[str], list[str], bool]:
    """(fresh leading stages, the stages after them, True when the first of those is an unchanged failure)."""
    i = 0
    while i < len(stages) and stages[i] not in force and stage_is_fresh(get_stage(stages[i]), ws, cfg):
        i += 1
    rest = stages[i:]
    skip = bool(rest) and not retry_failed and rest[0] not in force and failed_unchanged(
        get_stage(rest[0]), ws, cfg) is not None
    return stages[:i], rest, skip


def _tell(stage: str, person: str, status: str) -> None:
    for hook in PROGRESS_HOOKS:
        hook(stage, person, status)


def _prepare(runs: Path, persons: list[tuple[str, list[Path]]], cfg: PipelineConfig
             ) -> tuple[list[Workspace], list[dict]]:
    """`prepare_person` for each (id, sources); a workspace that is a symbolic link is refused, not written."""
    ready, refused = [], []
    for person, sources in persons:
        try:
            ready.append(prepare_person(runs / person, sources, cfg))
        except UnsafeWorkspaceError as exc:
            refused.append({"person": person, "stage": "workspace", "error": f"{type(exc).__name__}: {exc}"})
    return ready, refused


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
        _tell(stage, Path(person_dir).name, status)
    return {"executed": executed}


def _finish(runs: Path, stage_list: list[str], counts: dict, ignored: list | None = None,
            refused: list[dict] | None = None) -> dict:
    statuses = runs_status(runs, stage_list)
    summary = summarize(statuses)
    summary.update(counts)
    summary.setdefault("skipped_failed", 0)
    if refused:  # workspaces refused before any stage ran (a symbolic link): failures of their own
        names = {r["person"] for r in refused}
        listed = {st["person"] for st in statuses}
        summary["failures"] += refused
        summary["with_failures"] = len({f["person"] for f in summary["failures"]})
        summary["persons"] += len(names - listed)
        summary["complete"] -= sum(1 for st in statuses if st["person"] in names
                                   and all(r["status"] == DONE for r in st["stages"].values()))
    summary["report"] = str(write_report(runs))
    summary["runs"] = str(runs)
    summary["ignored"] = [i.as_dict() for i in ignored or []]
    return summary


def fresh_summary(photos: Path, out: Path, cfg: PipelineConfig, until: str | None = None) -> dict | None:
    """The summary `process_folder` would return when every stage (up to `until`) of every person is already fresh
    under `cfg`, or stops at an unchanged failure, found by hash checks alone, without a flow run: so `dinar run` on
    a finished batch does not start Prefect (its temporary server takes 15-30 s) to learn that nothing is to do.
    None when anything would run (a new, changed, transiently failed or unfinished person, another configuration, a
    changed list of photos) or another run holds the runs folder (the flow then waits for it or refuses)."""
    from tasks.config import dump_yaml

    stages = [s.name for s in stages_between(None, until)]
    found = discover_persons(Path(photos))
    if not found.persons:
        return None
    config_text = dump_yaml(cfg)
    skipped = 0
    for person in found.persons:
        ws = Workspace(Path(out) / person.person)
        try:
            ws.check_safe()  # a linked workspace goes through the flow, which refuses it by name
        except UnsafeWorkspaceError:
            return None
        if not ws.config_path.is_file() or ws.config_path.read_text() != config_text:
            return None
        if ws.read_manifest().get("sources") != [str(Path(s).resolve()) for s in person.sources]:
            return None
        _, rest, skip = _plan(ws, stages, cfg, set(), False)
        if rest and not skip:
            return None
        skipped += int(skip)
    try:
        with runs_lock(Path(out), timeout=0, what="dinar run (cache check)"):
            for person in found.persons:  # as prepare_person does: leftovers of a killed run's writes go
                clean_temporaries(Path(out) / person.person)
            return _finish(Path(out), stages, {"executed": 0, "skipped_failed": skipped}, found.ignored)
    except RunsBusyError:
        return None


@flow(name="dinar-process-folder", log_prints=True)
def process_folder(photos: str, out: str, config: dict | None = None, until: str | None = None,
                   force: bool = False) -> dict:
    """Every photo or sub-folder of `photos` is a person: run its stages up to `until` into ``out/<person>/``.

    Holds the runs folder's lock (``out/.dinar.lock``) throughout: a second run on `out` waits up to
    ``runtime.lock_timeout`` seconds, then fails with `RunsBusyError`."""
    cfg = from_dict(config or {})
    stages = [s.name for s in stages_between(None, until)]
    found = discover_persons(Path(photos))
    runs = Path(out)
    with runs_lock(runs, cfg.runtime.lock_timeout, what="dinar-process-folder"):
        ready, refused = _prepare(runs, [(p.person, p.sources) for p in found.persons], cfg)
        futures, skipped = _submit_all(ready, stages, cfg, set(stages) if force else set())
        counts = _collect(futures)
        return _finish(runs, stages, {**counts, "skipped_failed": skipped}, found.ignored, refused)


def _submit_all(persons: list[Workspace], stages: list[str], cfg: PipelineConfig, force: set[str]
                ) -> tuple[list, int]:
    futures, skipped = [], 0
    for ws in persons:
        submitted, skip = _submit_chain(ws, stages, cfg, force)
        futures += submitted
        skipped += int(skip)
    return futures, skipped


@flow(name="dinar-process-person", log_prints=True)
def process_person(photos: str, out: str, person: str | None = None, config: dict | None = None,
                   until: str | None = None, force: bool = False) -> dict:
    """One person: a photo, or a folder whose photos all show the same person."""
    cfg = from_dict(config or {})
    stages = [s.name for s in stages_between(None, until)]
    src = Path(photos)
    sources = [src.resolve()] if src.is_file() else [p for ps in discover_persons(src).persons for p in ps.sources]
    pid = person or safe_id(src.stem if src.is_file() else src.name)
    with runs_lock(Path(out), cfg.runtime.lock_timeout, what="dinar-process-person"):
        ready, refused = _prepare(Path(out), [(pid, sources)], cfg)
        futures, skipped = _submit_all(ready, stages, cfg, set(stages) if force else set())
        counts = _collect(futures)
        return _finish(Path(out), stages, {**counts, "skipped_failed": skipped}, refused=refused)


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
    """Rerun the stages of existing workspaces that are failed or stale (`force`: run them regardless). Failures
    are retried even when their inputs are unchanged (what `dinar run` does not do). Holds the runs folder's lock.

    Each person keeps the config it was run with (its ``config.yaml``), with the YAML `config_file` and the
    ``section.key=value`` `overrides` applied on top; `config` (a whole config) replaces it instead.
    """
    from tasks.config import RuntimeConfig, resolve_config

    timeout = from_dict(config).runtime.lock_timeout if config is not None else RuntimeConfig().lock_timeout
    futures, all_stages, refused = [], set(), []
    with runs_lock(Path(runs), timeout, what="dinar-rerun"):
        for ws in find_workspaces(Path(runs)):
            plan = _rerun_plan(ws, failed_only, stage)
            if not plan:
                continue
            cfg = resolve_config(config if config is not None else ws.config_path, config_file, overrides or ())
            ready, bad = _prepare(ws.root.parent, [(ws.person, ws.sources())], cfg)
            refused += bad
            if not ready:
                continue
            all_stages.update(plan)
            forced = set(plan) if force and stage is None else ({get_stage(stage).name} if force else set())
            futures += _submit_chain(ws, plan, cfg, forced, retry_failed=True)[0]
        counts = _collect(futures)
        return _finish(Path(runs), [n for n in stage_names() if n in all_stages] or stage_names(), counts,
                       refused=refused)


def direct_process_folder(photos: str, out: str, config: PipelineConfig, until: str | None = None) -> dict:
    """The same work as `process_folder` with the stage functions called directly, no Prefect (for benchmarks
    that measure the orchestration overhead)."""
    stages = stages_between(None, until)
    executed = 0
    with runs_lock(Path(out), config.runtime.lock_timeout, what="direct_process_folder"):
        for person in discover_persons(Path(photos)).persons:
            ws = prepare_person(Path(out) / person.person, person.sources, config)
            for st in stages:
                outcome = run_stage(st, ws.root, config)
                executed += int(outcome.executed)
    return {"executed": executed}


__all__ = ["process_folder", "process_person", "rerun", "stage_task", "PROGRESS_HOOKS",
           "direct_process_folder"]
