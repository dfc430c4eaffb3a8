"""Persons spread over Dask worker processes (`--workers 2`), and the one-person flow."""

import shutil

import pytest

from flows.cli import _task_runner
from flows.pipeline import process_folder, process_person
from tasks.status import runs_status

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_two_dask_workers_process_a_batch(tmp_path, samples_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("sports2d_1.png", "sports2d_2.png"):
        shutil.copy(samples_dir / name, photos / name)
    runner = _task_runner(2, None)
    assert type(runner).__name__ == "DaskTaskRunner"
    out = process_folder.with_options(task_runner=runner)(photos=str(photos), out=str(tmp_path / "runs"),
                                                           config={}, until="segment")
    assert out["complete"] == 2 and out["executed"] == 4
    pids = {st["person"]: st for st in runs_status(tmp_path / "runs", ["ingest", "segment"])}
    assert all(s["stages"]["segment"]["status"] == "done" for s in pids.values())


def test_process_person_flow(tmp_path, samples_dir):
    out = process_person(photos=str(samples_dir / "sports2d_3.png"), out=str(tmp_path / "runs"), config={},
                         until="ingest")
    assert out["complete"] == 1
    assert (tmp_path / "runs" / "sports2d_3" / "rgb" / "sports2d_3.png").is_file()
