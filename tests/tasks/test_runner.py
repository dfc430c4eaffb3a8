"""The stage runner: cache keys, freshness, failure and blocked records, with tiny stand-in stages."""

from dataclasses import replace
from pathlib import Path

import pytest

from tasks.config import PipelineConfig, override
from tasks.runner import Stage, StageOutput, cache_key, prepare_person, run_stage
from tasks.workspace import Workspace, atomic_write_text

CALLS = []


def _copy(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    CALLS.append(("copy", ws.person))
    out = ws.root / "copy" / "a.txt"
    atomic_write_text(out, Path(ws.sources()[0]).read_text() + f"|{cfg.segment.threshold}")
    return StageOutput([out])


def _upper(ws: Workspace, cfg: PipelineConfig) -> StageOutput:
    CALLS.append(("upper", ws.person))
    out = ws.root / "upper" / "a.txt"
    atomic_write_text(out, (ws.root / "copy" / "a.txt").read_text().upper())
    return StageOutput([out], warnings=["note"])


COPY = Stage("copy", "1", (), ("segment",), lambda ws, cfg: ws.sources(), _copy)
UPPER = Stage("upper", "1", ("copy",), ("keypoints",), lambda ws, cfg: [ws.root / "copy" / "a.txt"], _upper)


@pytest.fixture
def person(tmp_path):
    CALLS.clear()
    src = tmp_path / "a.txt"
    src.write_text("hello")
    return prepare_person(tmp_path / "runs" / "a", [src], PipelineConfig()), src


def test_second_run_is_cached_and_edit_reruns(person):
    ws, src = person
    cfg = PipelineConfig()
    assert run_stage(COPY, ws.root, cfg).executed and run_stage(UPPER, ws.root, cfg).executed
    assert not run_stage(COPY, ws.root, cfg).executed and not run_stage(UPPER, ws.root, cfg).executed
    src.write_text("changed")
    assert run_stage(COPY, ws.root, cfg).executed and run_stage(UPPER, ws.root, cfg).executed
    assert ws.stage_record("upper")["executions"] == 2 and ws.stage_record("upper")["warnings"] == ["note"]


def test_touch_without_change_keeps_cache(person):
    ws, src = person
    cfg = PipelineConfig()
    run_stage(COPY, ws.root, cfg)
    src.write_text(src.read_text())  # new mtime, same bytes
    assert not run_stage(COPY, ws.root, cfg).executed


def test_config_section_and_version_key_the_cache(person):
    ws, _ = person
    cfg = PipelineConfig()
    k0 = cache_key(COPY, ws, cfg)
    assert cache_key(COPY, ws, override(cfg, {"keypoints": {"crop_margin": 0.5}})) == k0  # not its section
    assert cache_key(COPY, ws, override(cfg, {"segment": {"threshold": 0.3}})) != k0
    assert cache_key(replace(COPY, version="2"), ws, cfg) != k0


def test_tampered_or_missing_output_is_redone(person):
    ws, _ = person
    cfg = PipelineConfig()
    run_stage(COPY, ws.root, cfg)
    (ws.root / "copy" / "a.txt").write_text("half-written")
    assert run_stage(COPY, ws.root, cfg).executed
    (ws.root / "copy" / "a.txt").unlink()
    assert run_stage(COPY, ws.root, cfg).executed


def test_failure_blocks_downstream_and_rerun_recovers(person):
    ws, _ = person
    cfg = PipelineConfig()

    def boom(ws, cfg):
        raise ValueError("injected fault")

    out = run_stage(replace(COPY, run=boom), ws.root, cfg)
    assert out.status == "failed" and "ValueError: injected fault" in out.error
    down = run_stage(UPPER, ws.root, cfg)
    assert down.status == "blocked" and not down.executed and CALLS == []
    assert ws.stage_record("copy")["error"]["type"] == "ValueError"
    assert run_stage(COPY, ws.root, cfg).status == "done"
    assert run_stage(UPPER, ws.root, cfg).status == "done"


def test_reraise_records_then_raises(person):
    ws, _ = person

    def boom(ws, cfg):
        raise OSError("disk hiccup")

    with pytest.raises(OSError):
        run_stage(replace(COPY, run=boom), ws.root, PipelineConfig(), reraise=True)
    assert ws.stage_record("copy")["status"] == "failed"


def test_threads_are_recorded_and_failures_are_classified(person):
    from tasks.runner import failed_unchanged

    ws, src = person
    cfg = override(PipelineConfig(), {"runtime": {"threads": 1}})
    run_stage(COPY, ws.root, cfg)
    threads = ws.stage_record("copy")["versions"]["threads"]
    assert threads["threads"] == 1 and threads["setting"] == "1" and threads["cpus"] >= 1

    def bad(ws, cfg):
        raise ValueError("deterministic")

    broken = replace(COPY, run=bad)
    run_stage(broken, ws.root, cfg, force=True)
    assert ws.stage_record("copy")["error"]["transient"] is False
    assert failed_unchanged(broken, ws, cfg) is not None  # same input: `dinar run` will not retry it
    src.write_text("fixed photo")
    assert failed_unchanged(broken, ws, cfg) is None  # changed input: it will

    def flaky(ws, cfg):
        raise OSError(5, "Input/output error")

    run_stage(replace(COPY, run=flaky), ws.root, cfg, force=True)
    assert ws.stage_record("copy")["error"]["transient"] is True
    assert failed_unchanged(replace(COPY, run=flaky), ws, cfg) is None
