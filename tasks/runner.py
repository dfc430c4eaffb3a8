"""Running one stage for one person: the cache decision, the manifest record, the error record.

A stage's cache key is the hash of (stage name, stage version, its config sections, the names and bytes of its
input files). `run_stage` skips the stage when the key is unchanged, the recorded status is ``done`` and every
recorded output still exists with the recorded hash; otherwise it runs the stage function, and records
``done`` with its outputs or ``failed`` with the error type and message. A stage whose upstream stage is not
``done`` is recorded ``blocked`` and not run. This module knows nothing about Prefect: flows wrap it in tasks.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import json
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dinar_core.errors import DinarError
from tasks import config as config_mod
from tasks.config import PipelineConfig
from tasks.threads import ThreadChoice, apply_threads
from tasks.workspace import (
    BLOCKED,
    DONE,
    FAILED,
    Workspace,
    atomic_write_text,
    clean_temporaries,
    file_sha256,
    now_iso,
)


@dataclass
class StageOutput:
    """What a stage function returns: the files it wrote, warnings for the user, and small facts for the report."""

    outputs: list[Path]
    warnings: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    `inputs(ws, cfg)` lists the files whose bytes key the cache; `run(ws, cfg)` does the work (paths in, paths
    out) and may assume `after` stages are done. Bump `version` whenever a code change alters the outputs.
    """

    name: str
    version: str
    after: tuple[str, ...]
    sections: tuple[str, ...]
    inputs: Callable[[Workspace, PipelineConfig], list[Path]]
    run: Callable[[Workspace, PipelineConfig], StageOutput]
    tools: tuple[str, ...] = ()
    """Distributions whose versions are recorded in the manifest."""


@dataclass
class StageOutcome:
    """The result of `run_stage`, small and picklable (it is what a Prefect task returns)."""

    person: str
    stage: str
    status: str
    executed: bool
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


# errno values of I/O hiccups worth a retry (a network file system, a busy device); anything else (ENAMETOOLONG,
# EACCES, ENOENT, EISDIR, EROFS, ENOSPC, ...) fails the same way when retried two seconds later.
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.EWOULDBLOCK, errno.ETIMEDOUT, errno.ESTALE,
                              errno.EINTR, errno.EBUSY, errno.ECONNRESET, errno.ECONNABORTED, errno.ENETUNREACH,
                              errno.EHOSTUNREACH})


def is_transient(exc: BaseException) -> bool:
    """True for an I/O error that may pass on its own (retried); False for bad input (`DinarError`), bugs and
    deterministic OS errors (not retried, and not rerun by `dinar run` while the stage's inputs are unchanged)."""
    if isinstance(exc, DinarError) or not isinstance(exc, OSError):
        return False
    return isinstance(exc, (TimeoutError, InterruptedError, BlockingIOError)) or exc.errno in TRANSIENT_ERRNOS


def _tool_versions(dists: tuple[str, ...], threads: ThreadChoice | None = None) -> dict:
    versions: dict = {"python": platform.python_version()}
    for name in ("dinar-pipeline", *dists):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if threads is not None:
        versions["threads"] = threads.as_dict()
    return versions


def cache_key(stage: Stage, ws: Workspace, cfg: PipelineConfig) -> str:
    """sha256 over the stage's identity, its config sections and the names + bytes of its input files."""
    inputs = stage.inputs(ws, cfg)
    payload = {
        "stage": stage.name,
        "version": stage.version,
        "config": {s: config_mod.to_dict(getattr(cfg, s)) for s in stage.sections},
        "inputs": [[Path(p).name, file_sha256(p)] for p in inputs],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def is_fresh(record: dict, key: str, ws: Workspace) -> bool:
    """True when `record` says done under `key` and every recorded output is still there, byte for byte."""
    if record.get("status") != DONE or record.get("cache_key") != key:
        return False
    for rel, digest in record.get("outputs", {}).items():
        path = ws.root / rel
        if not path.is_file() or file_sha256(path) != digest:
            return False
    return True


def stage_is_fresh(stage: Stage, ws: Workspace, cfg: PipelineConfig) -> bool:
    """True when `run_stage` would skip `stage` (done under the same key, outputs intact). Never raises: a stage
    whose key cannot be computed (missing input) is not fresh."""
    record = ws.read_manifest()["stages"].get(stage.name, {})
    if record.get("status") != DONE:
        return False
    try:
        return is_fresh(record, cache_key(stage, ws, cfg), ws)
    except Exception:
        return False


def failed_unchanged(stage: Stage, ws: Workspace, cfg: PipelineConfig) -> dict | None:
    """The failure record of `stage` when rerunning it would fail the same way: it failed on a non-transient error
    under the cache key it would have now (same input bytes, config sections and stage version). None otherwise (a
    transient failure, a changed input, a key that cannot be computed)."""
    record = ws.read_manifest()["stages"].get(stage.name, {})
    if record.get("status") != FAILED or not record.get("cache_key") or record.get("error", {}).get("transient", True):
        return None
    try:
        return record if cache_key(stage, ws, cfg) == record["cache_key"] else None
    except Exception:
        return None


def _record(ws: Workspace, stage: str, entry: dict) -> None:
    manifest = ws.read_manifest()
    previous = manifest["stages"].get(stage, {})
    entry["executions"] = previous.get("executions", 0) + (1 if entry.pop("_executed", False) else 0)
    manifest["stages"][stage] = entry
    ws.write_manifest(manifest)


def prepare_person(person_dir: Path, sources: list[Path], cfg: PipelineConfig) -> Workspace:
    """Create the workspace, record its source photos and write the resolved ``config.yaml``."""
    ws = Workspace(Path(person_dir))
    ws.check_safe()  # a workspace that is, or holds, a symbolic link is refused before anything is written
    ws.root.mkdir(parents=True, exist_ok=True)
    clean_temporaries(ws.root)
    manifest = ws.read_manifest()
    manifest["person"] = ws.person
    manifest["sources"] = [str(Path(s).resolve()) for s in sources]
    ws.write_manifest(manifest)
    atomic_write_text(ws.config_path, config_mod.dump_yaml(cfg))
    return ws


def run_stage(
    stage: Stage,
    person_dir: Path,
    cfg: PipelineConfig,
    force: bool = False,
    reraise: bool = False,
) -> StageOutcome:
    """Run `stage` for the person at `person_dir` unless its cached result is fresh.

    A stage error is recorded in the manifest and returned; with `reraise` the original exception is raised
    after it is recorded (so a Prefect task fails with it and its retry condition can look at its type)."""
    ws = Workspace(Path(person_dir))
    ws.check_safe()  # (raises before anything is recorded: the manifest may be behind the link)
    manifest = ws.read_manifest()
    for upstream in stage.after:
        up = manifest["stages"].get(upstream, {}).get("status")
        if up != DONE:
            msg = f"blocked: upstream stage {upstream!r} is {up or 'pending'}"
            _record(ws, stage.name, {"status": BLOCKED, "error": {"type": "Blocked", "message": msg},
                                     "finished": now_iso()})
            return StageOutcome(ws.person, stage.name, BLOCKED, False, error=msg)

    t0 = time.perf_counter()
    try:
        key = cache_key(stage, ws, cfg)
    except Exception as exc:  # an input vanished or cannot be read: a failure of this stage
        outcome = _fail(ws, stage, exc, None, t0)
        if reraise:
            raise
        return outcome
    record = manifest["stages"].get(stage.name, {})
    if not force and is_fresh(record, key, ws):
        return StageOutcome(ws.person, stage.name, DONE, False, record.get("seconds", 0.0),
                            warnings=record.get("warnings", []))
    threads = apply_threads(cfg.runtime.threads)
    try:
        result = stage.run(ws, cfg)
    except Exception as exc:
        outcome = _fail(ws, stage, exc, key, t0, threads)
        if reraise:
            raise
        return outcome
    seconds = round(time.perf_counter() - t0, 3)
    _record(ws, stage.name, {
        "status": DONE,
        "cache_key": key,
        "outputs": {ws.rel(p): file_sha256(p) for p in result.outputs},
        "seconds": seconds,
        "error": None,
        "warnings": list(result.warnings),
        "info": result.info,
        "versions": _tool_versions(stage.tools, threads),
        "finished": now_iso(),
        "_executed": True,
    })
    return StageOutcome(ws.person, stage.name, DONE, True, seconds, warnings=list(result.warnings))


def record_crash(person_dir: Path, stage: str, exc: BaseException) -> None:
    """Record a failure that happened outside `run_stage` (a worker process that died, a stage that could not be
    imported), unless `run_stage` already recorded this attempt's failure."""
    ws = Workspace(Path(person_dir))
    if ws.root.is_symlink():  # never write through a link (prepare_person refuses such a workspace)
        return
    rec = ws.read_manifest()["stages"].get(stage, {})
    if rec.get("status") == FAILED and rec.get("error", {}).get("message") == str(exc):
        return
    error = {"type": type(exc).__name__, "message": str(exc)}
    _record(ws, stage, {"status": FAILED, "cache_key": None, "outputs": {}, "seconds": 0.0, "error": error,
                        "warnings": [], "finished": now_iso(), "_executed": True})


def _fail(ws: Workspace, stage: Stage, exc: BaseException, key: str | None, t0: float,
          threads: ThreadChoice | None = None) -> StageOutcome:
    seconds = round(time.perf_counter() - t0, 3)
    error = {"type": type(exc).__name__, "message": str(exc), "transient": is_transient(exc),
             "traceback": "".join(traceback.format_exception(exc))[-4000:]}
    _record(ws, stage.name, {"status": FAILED, "cache_key": key, "outputs": {}, "seconds": seconds,
                             "error": error, "warnings": [], "versions": _tool_versions(stage.tools, threads),
                             "finished": now_iso(), "_executed": True})
    return StageOutcome(ws.person, stage.name, FAILED, True, seconds, error=f"{error['type']}: {error['message']}")
