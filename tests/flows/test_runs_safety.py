"""The runs folder under hostile or careless input, through the flows and the CLI: symbolic links lose no file
outside --out, names that collide with the runs folder's own files or are too long are handled, an unchanged
failure is not retried by `dinar run` (and `dinar rerun --failed` retries it), only transient I/O errors are
retried, a held lock refuses a second run, and a deployment never starts a run beside a running one."""

import errno
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tasks.stages as stages_mod
from flows.cli import app
from flows.pipeline import process_folder, rerun
from tasks.status import runs_status
from tasks.workspace import MAX_ID_BYTES

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROOT = Path(__file__).resolve().parents[2]


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _executions(runs: Path) -> dict:
    return {(st["person"], s): r.get("executions", 0) for st in runs_status(runs) for s, r in st["stages"].items()}


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder outside --out holding what a careless cleanup would take: temporaries, PNGs, a manifest."""
    folder = tmp_path / "outside"
    (folder / "rgb").mkdir(parents=True)
    for rel in (".p.tmp-1.png", "rgb/.old.tmp-2.png", "rgb/old.png", "precious.png", "manifest.json"):
        (folder / rel).write_bytes(b"not the pipeline's")
    return folder


def test_a_symlinked_workspace_loses_no_file_outside_out(tmp_path, samples_dir, outside):
    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    runs.mkdir()
    shutil.copy(samples_dir / "sports2d_2.png", photos / "p.png")
    shutil.copy(samples_dir / "sports2d_3.png", photos / "q.png")
    before = _tree(outside)
    (runs / "p").symlink_to(outside, target_is_directory=True)
    out = process_folder(photos=str(photos), out=str(runs), config={}, until="ingest")
    assert _tree(outside) == before
    assert out["with_failures"] == 1 and out["complete"] == 1  # q is processed, p is refused by name
    (failure,) = out["failures"]
    assert failure["person"] == "p" and failure["error"].startswith("UnsafeWorkspaceError")
    assert str(runs / "p") in failure["error"]


def test_a_symlinked_rgb_folder_loses_no_file_outside_out(tmp_path, samples_dir, outside):
    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    shutil.copy(samples_dir / "sports2d_2.png", photos / "p.png")
    assert process_folder(photos=str(photos), out=str(runs), config={}, until="ingest")["complete"] == 1
    shutil.rmtree(runs / "p" / "rgb")
    (runs / "p" / "rgb").symlink_to(outside / "rgb", target_is_directory=True)
    before = _tree(outside)
    shutil.copy(samples_dir / "sports2d_3.png", photos / "p.png")  # a changed photo: ingest would run again
    out = process_folder(photos=str(photos), out=str(runs), config={}, until="ingest")
    assert _tree(outside) == before
    assert out["failures"][0]["error"].startswith("UnsafeWorkspaceError") and "rgb" in out["failures"][0]["error"]
    res = CliRunner().invoke(app, ["rerun", str(runs), "--force"])  # rerun refuses it too
    assert _tree(outside) == before and "UnsafeWorkspaceError" in res.output, res.output


def test_reserved_and_long_names_become_ids_that_fit(tmp_path, samples_dir):
    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    long_name = "é" * 124 + "x.png"
    assert len(long_name.encode()) == 253
    shutil.copy(samples_dir / "sports2d_2.png", photos / "report.html.png")
    shutil.copy(samples_dir / "sports2d_3.png", photos / long_name)
    args = ["run", str(photos), "--out", str(runs), "--until", "keypoints"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    persons = {st["person"] for st in runs_status(runs)}
    assert "report_html" in persons and len(persons) == 2
    assert all(len(p.encode()) <= MAX_ID_BYTES for p in persons)
    assert (runs / "report.html").is_file()
    for again in (args, ["report", str(runs)], ["status", str(runs)]):
        res = CliRunner().invoke(app, again)
        assert res.exit_code == 0, (again, res.output)


def test_an_unchanged_failure_is_not_retried_until_rerun_failed(tmp_path, samples_dir):
    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    shutil.copy(samples_dir / "sports2d_2.png", photos / "good.png")
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    args = ["run", str(photos), "--out", str(runs), "--until", "segment"]
    assert CliRunner().invoke(app, args).exit_code == 1
    first = _executions(runs)
    assert first[("broken", "ingest")] == 1

    res = CliRunner().invoke(app, args)  # answered by hash checks: no flow run, no retry
    assert res.exit_code == 1 and "nothing to run" in res.output and "1 failed person(s) not retried" in res.output
    assert "rerun --failed" in res.output and _executions(runs) == first

    shutil.copy(samples_dir / "sports2d_3.png", photos / "new.png")  # the flow runs for the new person only
    out = process_folder(photos=str(photos), out=str(runs), config={}, until="segment")
    assert out["skipped_failed"] == 1 and out["executed"] == 2
    assert _executions(runs)[("broken", "ingest")] == 1

    out = rerun(runs=str(runs), failed_only=True)
    assert _executions(runs)[("broken", "ingest")] == 2 and out["with_failures"] == 1


@pytest.mark.parametrize("code, calls, retried_next_run", [(errno.ENAMETOOLONG, 1, False), (errno.EIO, 3, True)])
def test_only_transient_io_errors_are_retried(tmp_path, samples_dir, monkeypatch, code, calls, retried_next_run):
    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    shutil.copy(samples_dir / "sports2d_2.png", photos / "p.png")
    seen = []

    def failing(ws, cfg):
        seen.append(1)
        raise OSError(code, "injected", str(ws.rgb_dir))

    original = stages_mod.all_stages
    monkeypatch.setattr(stages_mod, "all_stages",
                        lambda: [replace(s, run=failing) if s.name == "ingest" else s for s in original()])
    out = process_folder(photos=str(photos), out=str(runs), config={}, until="ingest")
    assert out["with_failures"] == 1 and len(seen) == calls  # 1 try, or 1 try + 2 retries
    out = process_folder(photos=str(photos), out=str(runs), config={}, until="ingest")
    assert out["skipped_failed"] == (0 if retried_next_run else 1)
    assert len(seen) == (2 * calls if retried_next_run else calls)


def test_a_held_lock_makes_a_second_run_refuse_with_a_clear_message(tmp_path, samples_dir):
    photos, runs = tmp_path / "photos", tmp_path / "runs"
    photos.mkdir()
    shutil.copy(samples_dir / "sports2d_2.png", photos / "p.png")
    code = ("import sys, time; from tasks.lock import runs_lock\n"
            "with runs_lock(sys.argv[1], what='dinar-process-folder'):\n    print('held', flush=True); time.sleep(90)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(runs)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = CliRunner().invoke(app, ["run", str(photos), "--out", str(runs), "--until", "ingest",
                                       "--set", "runtime.lock_timeout=0.5"])
        assert res.exit_code == 3, res.output
        assert "RunsBusyError" in res.output and f"pid {holder.pid}" in res.output
        assert not (runs / "p").exists()  # nothing was prepared beside the running run
    finally:
        holder.kill()
        holder.wait()


def test_a_deployment_run_due_while_one_is_active_is_cancelled(tmp_path, monkeypatch):
    """Against the Prefect test server: the deployment `dinar serve` registers has a concurrency limit of one with
    CANCEL_NEW, so a second flow run that comes due while the first is active never enters Pending/Running. (The
    runs folder's lock, tested above, is the second line of defence.) And `dinar serve` passes that limit."""
    from prefect.client.orchestration import get_client
    from prefect.states import Pending, StateType

    from flows.runners import serve_concurrency

    dep_id = process_folder.to_deployment(name="test-limited", cron="* * * * *",
                                          concurrency_limit=serve_concurrency(),
                                          parameters={"photos": str(tmp_path), "out": str(tmp_path / "r")}).apply()
    with get_client(sync_client=True) as client:
        first = client.create_flow_run_from_deployment(dep_id)
        second = client.create_flow_run_from_deployment(dep_id)
        client.set_flow_run_state(first.id, Pending())
        client.set_flow_run_state(second.id, Pending())
        assert client.read_flow_run(first.id).state.type == StateType.PENDING
        assert client.read_flow_run(second.id).state.type == StateType.CANCELLED

    served = {}
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # `serve` only checks that one is set
    monkeypatch.setattr(type(process_folder), "serve", lambda self, **kw: served.update(kw))
    res = CliRunner().invoke(app, ["serve", str(tmp_path), "--cron", "* * * * *"])
    assert res.exit_code == 0, res.output
    assert served["concurrency_limit"] == serve_concurrency() and served["cron"] == "* * * * *"
