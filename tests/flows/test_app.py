"""`dinar app`: what it accepts and what it serves. The upload checks and the person lookups are plain functions;
the HTTP tests run the real Gradio server on a free port of 127.0.0.1 and ask it for files inside and outside its
runs folder, upload a too-large file, and call the upload handler with a file that is not an image."""

from __future__ import annotations

import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dinar_core.errors import UnsafeWorkspaceError, UploadRefusedError
from flows.app import (AppSettings, UPLOADS, launch, named_folder, person_results, person_workspace,
                       photo_folders, stage_uploads, status_rows, workspace_zip)
from tasks.workspace import Workspace


def _person(runs: Path, name: str, source: Path | None = None) -> Workspace:
    ws = Workspace(runs / name)
    ws.root.mkdir(parents=True)
    manifest = ws.read_manifest()
    if source is not None:
        manifest["sources"] = [str(source)]
    ws.write_manifest(manifest)
    ws.avatar_dir.mkdir()
    (ws.avatar_dir / "avatar.glb").write_bytes(b"glTF-of-" + name.encode())
    return ws


def _photo(samples_dir: Path, folder: Path, name: str = "sports2d_1.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(samples_dir / "sports2d_1.png", folder / name))


# ------------------------------------------------------------------------------------------- uploads


def test_an_upload_of_photos_is_copied_into_the_runs_folder_once(tmp_path, samples_dir):
    runs, settings = tmp_path / "runs", AppSettings(runs=tmp_path / "runs")
    a = _photo(samples_dir, tmp_path / "up1", "front view.png")
    b = Path(shutil.copy(samples_dir / "sports2d_2.png", tmp_path / "up1" / "b.png"))
    batch = stage_uploads([a, b], runs, settings)
    assert batch.parent == runs / UPLOADS
    assert sorted(p.name for p in batch.iterdir()) == ["b.png", "front_view.png"]
    assert stage_uploads([b, a], runs, settings) == batch  # the same photos: the same folder, nothing new
    again = Path(shutil.copy(a, tmp_path / "again.png"))
    assert stage_uploads([a, b, again], runs, settings) == batch  # the same bytes twice: one photo, one person
    together = stage_uploads([a, b], runs, settings, one_person=True)
    assert together.parent.parent == runs / UPLOADS and sorted(p.name for p in together.iterdir()) == [
        "b.png", "front_view.png"]


def test_a_new_photo_of_a_taken_name_does_not_replace_that_persons_work(tmp_path, samples_dir):
    runs, settings = tmp_path / "runs", AppSettings(runs=tmp_path / "runs")
    first = _photo(samples_dir, tmp_path / "old", "me.png")
    _person(runs, "me", source=first)
    same = stage_uploads([first], runs, settings)
    assert [p.stem for p in same.iterdir()] == ["me"]  # the same photo again: the same person
    other = Path(shutil.copy(samples_dir / "sports2d_3.png", tmp_path / "me.png"))
    renamed = stage_uploads([other], runs, settings)
    (name,) = [p.stem for p in renamed.iterdir()]
    assert name.startswith("me_") and name != "me"


def test_a_file_that_is_not_an_image_is_refused_by_name(tmp_path, samples_dir):
    runs, settings = tmp_path / "runs", AppSettings(runs=tmp_path / "runs")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    with pytest.raises(UploadRefusedError, match=r"notes\.txt is not an image.*fix: upload photos"):
        stage_uploads([notes], runs, settings)
    disguised = tmp_path / "holiday.png"
    disguised.write_bytes(b"#!/bin/sh\necho hello\n" * 20)
    with pytest.raises(UploadRefusedError, match=r"holiday\.png is not an image that can be read"):
        stage_uploads([_photo(samples_dir, tmp_path / "ok"), disguised], runs, settings)
    assert not (runs / UPLOADS).exists()  # nothing of a refused upload is kept


def test_too_large_and_too_many_files_are_refused(tmp_path, samples_dir):
    runs = tmp_path / "runs"
    photo = _photo(samples_dir, tmp_path / "up")
    small = AppSettings(runs=runs, max_photo_bytes=photo.stat().st_size - 1)
    with pytest.raises(UploadRefusedError, match=r"sports2d_1\.png is [\d,]+ bytes, over the app's limit.*--max-mb"):
        stage_uploads([photo], runs, small)
    few = AppSettings(runs=runs, max_photos=2)
    with pytest.raises(UploadRefusedError, match=r"3 files in one upload, over the app's limit of 2"):
        stage_uploads([photo] * 3, runs, few)
    with pytest.raises(UploadRefusedError, match="no photo was uploaded"):
        stage_uploads([], runs, few)


def test_a_named_folder_is_one_of_the_photo_roots_folders(tmp_path):
    root = tmp_path / "photos"
    for name in ("alice", "bob", ".hidden"):
        (root / name).mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    assert photo_folders(root) == [".", "alice", "bob"]  # no hidden folder, no link out of the root
    assert named_folder(root, "alice") == (root / "alice").resolve() and named_folder(root, ".") == root.resolve()
    for choice in ("..", "../elsewhere", "linked", ".hidden", str(tmp_path / "elsewhere"), "alice/..", ""):
        with pytest.raises(UploadRefusedError, match="is not one of the folders this app may read"):
            named_folder(root, choice)
    with pytest.raises(UploadRefusedError):  # without --photos, no folder may be named
        named_folder(None, ".")


# ------------------------------------------------------------------------------------------- lookups


def test_a_person_is_looked_up_among_the_workspaces_never_joined_onto_a_path(tmp_path):
    runs = tmp_path / "runs"
    _person(runs, "alice")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "manifest.json").write_text("{}")  # a workspace-looking folder outside the runs folder
    assert person_workspace(runs, "alice").root == runs / "alice"
    for name in ("../secret", "..", "/etc", str(tmp_path / "secret"), "alice/../../secret", "", "."):
        with pytest.raises(UnsafeWorkspaceError, match="is not a person of"):
            person_workspace(runs, name)
    (runs / "linked").symlink_to(tmp_path / "secret")  # a link inside the runs folder is no workspace either
    with pytest.raises(UnsafeWorkspaceError):
        person_results(runs, "linked")


def test_the_workspace_zip_holds_the_workspace_and_no_linked_file(tmp_path):
    import zipfile

    runs = tmp_path / "runs"
    ws = _person(runs, "bob")
    (tmp_path / "private.txt").write_text("private")
    (ws.avatar_dir / "link.txt").symlink_to(tmp_path / "private.txt")
    with pytest.raises(UnsafeWorkspaceError):  # a workspace holding links is refused as a whole
        workspace_zip(runs, "bob")
    (ws.avatar_dir / "link.txt").unlink()
    with zipfile.ZipFile(workspace_zip(runs, "bob")) as zf:
        assert sorted(zf.namelist()) == ["bob/avatar/avatar.glb", "bob/manifest.json"]
    assert status_rows(runs)[1][0][:2] == ["bob", "pending"]


# ------------------------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The real app on 127.0.0.1, its runs folder holding one person; a file beside the runs folder."""
    root = tmp_path_factory.mktemp("served")
    runs = root / "runs"
    _person(runs, "alice")
    (root / "outside.txt").write_text("outside the runs folder")
    settings = AppSettings(runs=runs, port=_free_port(), max_photo_bytes=200_000)
    demo = launch(settings, {}, block=False)
    try:
        yield demo, settings, root
    finally:
        demo.close()


def _get(settings: AppSettings, path: str) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{settings.port}/gradio_api/file={urllib.parse.quote(path)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_the_app_listens_on_localhost_by_default(served):
    demo, settings, _ = served
    assert AppSettings(runs=Path("r")).host == "127.0.0.1" and demo.server_name == "127.0.0.1"


def test_the_cli_starts_the_app_on_localhost_unless_told_otherwise(tmp_path, monkeypatch):
    import flows.app
    from flows.cli import app

    seen = []
    monkeypatch.setattr(flows.app, "launch", lambda settings, config: seen.append(settings))
    res = CliRunner().invoke(app, ["app", "--runs", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    assert seen[0].host == "127.0.0.1" and seen[0].runs == (tmp_path / "runs").resolve()
    CliRunner().invoke(app, ["app", "--runs", str(tmp_path), "--host", "0.0.0.0", "--max-mb", "2"])
    assert seen[1].host == "0.0.0.0" and seen[1].max_photo_bytes == 2 << 20


def test_the_server_gives_files_of_its_runs_folder_and_nothing_outside(served):
    _, settings, root = served
    inside = Path(settings.runs) / "alice" / "avatar" / "avatar.glb"
    status, body = _get(settings, str(inside))
    assert status == 200 and body == b"glTF-of-alice"  # the route works: what follows is refused, not broken
    for path in ("/etc/passwd", str(root / "outside.txt"), str(Path(settings.runs) / ".." / "outside.txt"),
                 "../outside.txt", "../../../../etc/passwd", "pyproject.toml",
                 str(Path(settings.runs) / "alice" / ".." / ".." / "outside.txt")):
        status, body = _get(settings, path)
        assert status in (403, 404) and b"outside" not in body and b"root:" not in body, (path, status)


def test_an_oversized_upload_is_refused_by_the_server(served):
    import httpx

    _, settings, _ = served
    url = f"http://127.0.0.1:{settings.port}/gradio_api/upload"
    small = httpx.post(url, files={"files": ("small.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 1000, "image/png")},
                       timeout=30)
    assert small.status_code == 200  # the route takes a file under the limit
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000  # over the served app's 200,000-byte limit
    r = httpx.post(url, files={"files": ("big.png", big, "image/png")}, timeout=30)
    assert r.status_code == 413 and "exceeded maximum allowed size of 200000 bytes" in r.text, (r.status_code, r.text)


def test_a_non_image_through_the_apps_api_gets_a_clear_refusal(served, tmp_path):
    """Gradio refuses a file whose name is no image's; the app refuses one whose name is but whose content is not."""
    from gradio_client import Client, handle_file

    _, settings, _ = served
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    disguised = tmp_path / "holiday.png"
    disguised.write_bytes(b"#!/bin/sh\necho hello\n" * 20)
    client = Client(f"http://127.0.0.1:{settings.port}/", verbose=False)
    with pytest.raises(Exception, match=r"Invalid file type.*image"):
        client.predict([handle_file(str(notes))], False, None, api_name="/start")
    with pytest.raises(Exception, match=r"UploadRefusedError: holiday\.png is not an image that can be read"):
        client.predict([handle_file(str(disguised))], False, None, api_name="/start")
    assert not (Path(settings.runs) / UPLOADS).exists()


def test_pipeline_jobs_share_one_queue_one_at_a_time(served):
    """A new upload or a rerun while a job runs waits in Gradio's queue (one pipeline job at a time by default; the
    runs folder's lock would serialise them anyway), and the queue is bounded."""
    demo, settings, _ = served
    jobs = {f.name: (f.concurrency_id, f.concurrency_limit) for f in demo.fns.values()
            if f.name in ("start", "rerun_click")}
    assert jobs == {"start": ("pipeline", 1), "rerun_click": ("pipeline", 1)}
    assert demo._queue.max_size == settings.queue_size
