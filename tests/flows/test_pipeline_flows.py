"""The Prefect flows end to end on real sample photos, through keypoints: cache, partial reruns, injected faults,
bad input, the CLI. One Prefect test server serves the whole module (session-scoped harness)."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import tasks.stages as stages_mod
from flows.cli import app
from flows.pipeline import process_folder, rerun
from tasks.status import runs_status
from tests.helpers.images import png_header_only

pytestmark = pytest.mark.usefixtures("prefect_harness")

FULL_BODY = ["sports2d_1.png", "sports2d_2.png", "sports2d_3.png"]


def _executions(runs: Path) -> dict:
    return {(st["person"], s): r.get("executions", 0) for st in runs_status(runs) for s, r in st["stages"].items()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, samples_dir):
    photos = tmp_path_factory.mktemp("photos")
    for name in FULL_BODY:
        shutil.copy(samples_dir / name, photos / name)
    runs = tmp_path_factory.mktemp("runs")
    first = process_folder(photos=str(photos), out=str(runs), config={}, until="keypoints")
    return photos, runs, first


def test_first_run_processes_every_person(batch):
    photos, runs, first = batch
    assert first["persons"] == 3 and first["complete"] == 3 and first["executed"] == 9
    for st in runs_status(runs):
        ws = Path(st["path"])
        assert (ws / "rgb" / f"{st['person']}.png").is_file()
        assert (ws / "segm" / f"{st['person']}.png").is_file()
        kp = json.loads((ws / "openpose" / f"{st['person']}_keypoints.json").read_text())
        assert len(kp["people"][0]["pose_keypoints_2d"]) == 75
        assert (ws / "config.yaml").is_file()
    assert Path(first["report"]).is_file() and "sports2d_1" in Path(first["report"]).read_text()


def test_second_run_executes_nothing(batch):
    photos, runs, _ = batch
    before = _executions(runs)
    again = process_folder(photos=str(photos), out=str(runs), config={}, until="keypoints")
    assert again["executed"] == 0 and _executions(runs) == before


def test_editing_one_photo_reruns_that_person_only(batch):
    photos, runs, _ = batch
    before = _executions(runs)
    path = photos / "sports2d_2.png"
    rgb = np.array(Image.open(path))
    rgb[0, 0] = 255 - rgb[0, 0]  # different bytes, same person
    Image.fromarray(rgb).save(path)
    out = process_folder(photos=str(photos), out=str(runs), config={}, until="keypoints")
    after = _executions(runs)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {("sports2d_2", "ingest"), ("sports2d_2", "segment"), ("sports2d_2", "keypoints")}
    assert out["executed"] == 3


def test_segment_config_change_reruns_segment_and_what_it_changed(batch):
    photos, runs, _ = batch
    before = _executions(runs)
    masks_before = {p: p.read_bytes() for p in runs.glob("*/segm/*.png")}
    out = process_folder(photos=str(photos), out=str(runs), config={"segment": {"threshold": 0.35}},
                         until="keypoints")
    after = _executions(runs)
    persons = {p for p, _ in after}
    assert all(after[(p, "ingest")] == before[(p, "ingest")] for p in persons)
    assert all(after[(p, "segment")] == before[(p, "segment")] + 1 for p in persons)
    for p in persons:  # keypoints rerun exactly where the mask it reads changed
        mask = next(runs.glob(f"{p}/segm/*.png"))
        assert (after[(p, "keypoints")] > before[(p, "keypoints")]) == (mask.read_bytes() != masks_before[mask])
    assert out["executed"] >= 3


def test_injected_fault_then_rerun_failed_runs_only_the_failed_chain(batch, monkeypatch):
    photos, runs, _ = batch
    real = stages_mod.get_stage("segment")

    def faulty(ws, cfg):
        if ws.person == "sports2d_3":
            raise RuntimeError("injected fault")
        return real.run(ws, cfg)

    original_all = stages_mod.all_stages
    monkeypatch.setattr(stages_mod, "all_stages",
                        lambda: [replace(s, run=faulty) if s.name == "segment" else s for s in original_all()])
    out = process_folder(photos=str(photos), out=str(runs), config={}, force=True, until="keypoints")
    assert out["with_failures"] == 1
    assert out["failures"] == [{"person": "sports2d_3", "stage": "segment", "error": "RuntimeError: injected fault"}]
    status = {st["person"]: st["stages"] for st in runs_status(runs)}
    assert status["sports2d_3"]["keypoints"]["status"] == "blocked"
    assert status["sports2d_1"]["keypoints"]["status"] == "done"

    monkeypatch.setattr(stages_mod, "all_stages", original_all)  # the fault is fixed
    before = _executions(runs)
    again = rerun(runs=str(runs), failed_only=True)
    after = _executions(runs)
    assert {k for k in after if after[k] != before[k]} == {("sports2d_3", "segment"), ("sports2d_3", "keypoints")}
    assert again["complete"] == 3 and again["executed"] == 2


def test_cli_status_json_and_table(batch):
    _, runs, _ = batch
    res = CliRunner().invoke(app, ["status", str(runs), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {d["person"] for d in data} == {"sports2d_1", "sports2d_2", "sports2d_3"}
    assert all(d["stages"]["keypoints"]["status"] == "done" for d in data)
    res = CliRunner().invoke(app, ["status", str(runs)])
    assert res.exit_code == 0 and "sports2d_1" in res.output


def test_bad_input_is_named_and_the_others_finish(tmp_path, samples_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    good = Image.open(samples_dir / "sports2d_2.png").convert("RGB")
    (photos / "empty.jpg").write_bytes(b"")
    cut = photos / "truncated.jpg"
    good.save(cut, quality=90)
    cut.write_bytes(cut.read_bytes()[:2000])
    (photos / "text.png").write_text("hello, I am text")
    png_header_only(photos / "bomb.png", 20000, 20000)
    good.resize((10, 10)).save(photos / "tiny.png")
    y, x = np.mgrid[0:480, 0:360]
    Image.fromarray(np.stack([x * 255 // 360, y * 255 // 480, np.full_like(x, 128)], -1).astype(np.uint8)).save(
        photos / "nobody.png")
    two = Image.new("RGB", (good.width * 2, good.height))
    two.paste(good, (0, 0))
    two.paste(Image.open(samples_dir / "sports2d_3.png").convert("RGB"), (good.width, 0))
    two.save(photos / "two_people.png")
    (photos / "carol").mkdir()
    good.save(photos / "carol" / "front.png")
    (photos / "carol" / "scan.png").write_bytes(b"\x00\x01garbage")
    good.save(photos / "Zoë 写真.png")
    (photos / "README.md").write_text("not a person")

    res = CliRunner().invoke(app, ["run", str(photos), "--out", str(tmp_path / "runs"), "--until", "keypoints"])
    assert res.exit_code == 1, res.output  # failures -> non-zero exit, after every person was processed
    status = {st["person"]: st["stages"] for st in runs_status(tmp_path / "runs")}
    assert set(status) == {"empty", "truncated", "text", "bomb", "tiny", "nobody", "two_people", "carol", "Zoë_写真"}

    def err(person, stage="ingest"):
        rec = status[person][stage]
        assert rec["status"] == "failed", (person, rec)
        return rec["error"]

    assert err("empty").startswith("InvalidImageError") and "empty.jpg" in err("empty")
    assert err("truncated").startswith("InvalidImageError") and "truncated.jpg" in err("truncated")
    assert err("text").startswith("InvalidImageError") and "text.png" in err("text")
    assert err("bomb").startswith("ImageTooLargeError")
    assert err("tiny").startswith("ImageTooSmallError")
    assert err("nobody", "segment").startswith("NoPersonError") and "nobody" in err("nobody", "segment")
    for person in ("empty", "truncated", "text", "bomb", "tiny"):
        assert status[person]["segment"]["status"] == "blocked"
    assert status["two_people"]["keypoints"]["status"] == "done"
    assert any("MultiplePeople" in w for w in status["two_people"]["segment"]["warnings"])
    assert status["carol"]["keypoints"]["status"] == "done"
    assert any("scan.png" in w for w in status["carol"]["ingest"]["warnings"])
    assert status["Zoë_写真"]["keypoints"]["status"] == "done"
    assert "README.md" in res.output  # reported as ignored, not silently dropped

    res = CliRunner().invoke(app, ["status", str(tmp_path / "runs")])
    assert "ImageTooLargeError" in res.output and "NoPersonError" in res.output


def test_serve_without_a_server_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    res = CliRunner().invoke(app, ["serve", str(tmp_path), "--cron", "0 2 * * *"])
    assert res.exit_code == 2
    assert "make server" in res.output and "PREFECT_API_URL" in res.output


def test_scheduled_deployment_registers_its_cron(tmp_path):
    from prefect.client.orchestration import get_client

    dep = process_folder.to_deployment(name="test-nightly", cron="0 2 * * *",
                                       parameters={"photos": str(tmp_path), "out": str(tmp_path / "runs")})
    dep_id = dep.apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(dep_id)
    assert stored.parameters["photos"] == str(tmp_path)
    assert [s.schedule.cron for s in stored.schedules] == ["0 2 * * *"]


def test_cli_on_a_finished_batch_starts_no_flow(tmp_path, samples_dir, monkeypatch):
    """`dinar run` on a batch whose every stage is fresh answers from hash checks without a Prefect flow run (the
    temporary server alone takes 15-30 s); anything new, changed or forced goes through the flow again."""
    import flows.pipeline as pipeline

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(samples_dir / "sports2d_2.png", photos / "a.png")
    args = ["run", str(photos), "--out", str(tmp_path / "runs"), "--until", "keypoints"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and "nothing to run" not in first.output, first.output

    calls = []
    real = pipeline.process_folder
    monkeypatch.setattr(pipeline, "process_folder", type("Spy", (), {
        "with_options": lambda self, **kw: (calls.append(kw), real.with_options(**kw))[1]})())
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "nothing to run" in again.output and "1 complete" in again.output and calls == []
    assert (tmp_path / "runs" / "report.html").is_file()

    for change in (["--force"], ["--set", "keypoints.min_keypoint_confidence=0.1"]):
        res = CliRunner().invoke(app, args + change)
        assert res.exit_code == 0 and "nothing to run" not in res.output, (change, res.output)
    assert len(calls) == 2
    shutil.copy(samples_dir / "sports2d_3.png", photos / "b.png")  # a new person
    res = CliRunner().invoke(app, args)
    assert "nothing to run" not in res.output and len(calls) == 3 and "2 complete" in res.output, res.output
