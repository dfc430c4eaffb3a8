"""`dinar app`: the pipeline in a browser (Gradio), over one runs folder.

Photos dropped on the page (or a folder under the ``--photos`` root) go through the same Prefect flows as
`dinar run` into the same runs folder, so the same cache decides what is fresh: a photo uploaded twice is not
computed twice. A page shows each person's stages as they finish, then the fit overlay, the texture, the turntable,
the GLB in an interactive 3D view, the fit metrics and the downloads (GLB, MP4, the workspace as a zip); a second tab
is the runs folder's status table with "rerun failed".

What the app lets a browser do is kept small, because whoever reaches the port reaches the machine:
- it listens on 127.0.0.1 unless told otherwise (`AppSettings.host`);
- an upload is at most `AppSettings.max_photos` files of at most `AppSettings.max_photo_bytes` each (Gradio refuses
  a larger file before it is stored; `stage_uploads` checks again), and only images: the name's suffix and the
  file's header (Pillow reads the header only; the pipeline's isolated decoder does the rest);
- it serves files from its runs folder only (Gradio's ``allowed_paths``; nothing of the working directory), and
  every person a request names is looked up among the runs folder's workspaces (`person_workspace`), never joined
  onto a path;
- jobs are queued: `AppSettings.concurrency` at a time (the runs folder's lock serialises runs anyway).

The upload handling and the result lookups are plain functions (tested without a browser); `build_app` only wires
them to Gradio components.
"""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from dinar_core.errors import DinarError, UnsafeWorkspaceError, UploadRefusedError
from tasks.discover import find_workspaces
from tasks.ingest import IMAGE_SUFFIXES
from tasks.workspace import Workspace, atomic_write_bytes, file_sha256, safe_id

UPLOADS = ".uploads"  # RUNS/.uploads/<batch>/: the photos of each upload (hidden: not a person, not a workspace)
DOWNLOADS = ".downloads"  # RUNS/.downloads/<person>.zip: workspaces packed for download


@dataclass(frozen=True)
class AppSettings:
    """How `dinar app` serves: where, how much it accepts, how many jobs run at once."""

    runs: Path
    photos_root: Path | None = None  # folders under it can be processed by name (none: uploads only)
    host: str = "127.0.0.1"
    port: int = 7860
    max_photos: int = 20  # files per upload
    max_photo_bytes: int = 25 << 20  # bytes per file (the pipeline's own ingest.max_file_bytes applies after)
    concurrency: int = 1  # jobs at a time; the others wait in the queue
    queue_size: int = 32  # waiting jobs beyond which a new one is refused


# ---------------------------------------------------------------------------------------------- uploads


def check_photo(path: Path, settings: AppSettings) -> None:
    """Raise `UploadRefusedError` unless `path` (its name is the one it was uploaded as) is a photo the app takes:
    an image suffix, at most ``max_photo_bytes``, and a header Pillow recognises as an image."""
    from PIL import Image, UnidentifiedImageError

    name = path.name
    suffix = Path(name).suffix.lower()
    kinds = "PNG, JPEG, WebP, TIFF, BMP or GIF"
    if suffix not in IMAGE_SUFFIXES:
        raise UploadRefusedError(f"{name} is not an image (its name ends in {suffix or 'no suffix'!r})",
                                 fix=f"upload photos: {kinds}")
    size = path.stat().st_size
    if size > settings.max_photo_bytes:
        raise UploadRefusedError(f"{name} is {size:,} bytes, over the app's limit of {settings.max_photo_bytes:,}",
                                 fix="upload a smaller photo (e.g. re-exported as JPEG), or start `dinar app "
                                     "--max-mb N` with a larger limit")
    try:
        with Image.open(path) as im:  # the header only: no pixel is decoded here
            im.size
    except Image.DecompressionBombError:
        return  # an image, just a huge one: the pipeline's ingest names it (ImageTooLargeError) in the status
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UploadRefusedError(f"{name} is not an image that can be read ({type(exc).__name__})",
                                 fix=f"upload photos: {kinds}") from None


def _upload_name(runs: Path, stem: str, digests: set[str]) -> str:
    """The person id for uploaded photos (their SHA-256 `digests`): their safe name, unless a workspace of that name
    was made from other photos (its finished work is kept: the new person gets the name with a content hash)."""
    pid = safe_id(stem)
    ws = Workspace(runs / pid)
    if not ws.manifest_path.is_file():
        return pid
    try:
        if {file_sha256(src) for src in ws.sources() if src.is_file()} == digests:
            return pid
    except OSError:
        pass
    return safe_id(f"{stem}_{hashlib.sha256(''.join(sorted(digests)).encode()).hexdigest()[:8]}")


def stage_uploads(files: list[Path], runs: Path, settings: AppSettings, one_person: bool = False) -> Path:
    """Check the uploaded `files` (their names are the names they were uploaded as) and copy them into a new folder
    ``RUNS/.uploads/<batch>/``: one photo per person, or all in one person's sub-folder when `one_person`. The
    folder's name is a hash of the photos, so the same upload twice lands in the same folder; a photo given twice
    (the same bytes) is kept once. Returns the folder."""
    files = [Path(f) for f in files or []]
    if not files:
        raise UploadRefusedError("no photo was uploaded", fix="drop one or more photos on the upload area")
    if len(files) > settings.max_photos:
        raise UploadRefusedError(f"{len(files)} files in one upload, over the app's limit of {settings.max_photos}",
                                 fix="upload fewer at a time, or start `dinar app --max-photos N`")
    for f in files:
        check_photo(f, settings)
    unique: dict[str, Path] = {}  # the same photo twice in one upload is one photo
    for f in files:
        unique.setdefault(file_sha256(f), f)
    digests, files = list(unique), list(unique.values())
    batch = hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()[:16]
    folder = Path(runs) / UPLOADS / batch
    if one_person:
        folder = folder / _upload_name(runs, files[0].stem, set(digests))
    folder.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for f, digest in zip(files, digests):
        name = safe_id(f.stem) if one_person else _upload_name(runs, f.stem, {digest})
        if name in taken:  # two uploads of one name in one batch
            name = safe_id(f"{f.stem}_{digest[:8]}")
        taken.add(name)
        dst = folder / f"{name}{f.suffix.lower()}"
        if not dst.is_file() or file_sha256(dst) != digest:
            atomic_write_bytes(dst, f.read_bytes())
    return folder


def photo_folders(root: Path | None) -> list[str]:
    """The folders a user may process by name: the root itself (``.``) and its sub-folders (not hidden)."""
    if root is None or not Path(root).is_dir():
        return []
    return ["."] + sorted(p.name for p in Path(root).iterdir()
                          if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def named_folder(root: Path | None, choice: str) -> Path:
    """The folder `choice` names, looked up among `photo_folders(root)` (never joined onto a path)."""
    if root is None or choice not in photo_folders(root):
        raise UploadRefusedError(f"{choice!r} is not one of the folders this app may read",
                                 fix="pick a folder from the list (the folders under `dinar app --photos DIR`)")
    return Path(root).resolve() if choice == "." else Path(root).resolve() / choice


# ---------------------------------------------------------------------------------------------- results


def person_workspace(runs: Path, person: str) -> Workspace:
    """The workspace of `person` among the runs folder's own workspaces (a name such as ``../x`` or ``/etc`` is
    found by none); a workspace that is a link, or holds links, is refused."""
    for ws in find_workspaces(Path(runs)):
        if ws.person == person:
            ws.check_safe()
            return ws
    raise UnsafeWorkspaceError(f"{person!r} is not a person of {runs}", fix="pick a person from the list")


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() and not path.is_symlink() else None


@dataclass(frozen=True)
class PersonResults:
    """The files the page shows for one person (None: not made, or not yet); downloads: the GLB and the MP4 (those
    that exist) and the workspace's zip."""

    overlay: str | None
    side: str | None
    texture: str | None
    video: str | None
    glb: str | None
    metrics: dict | None
    downloads: list[str]


def person_results(runs: Path, person: str) -> PersonResults:
    import json

    ws = person_workspace(runs, person)
    frame = (ws.frames() or [None])[0]
    metrics = None
    if (ws.fit_dir / "metrics.json").is_file():
        try:
            metrics = json.loads((ws.fit_dir / "metrics.json").read_text("utf-8"))
        except (OSError, ValueError):
            metrics = None
    video, glb = _existing(ws.renders_dir / "video.mp4"), _existing(ws.avatar_dir / "avatar.glb")
    return PersonResults(
        overlay=_existing(ws.fit_dir / f"{frame}_overlay.png") if frame else None,
        side=_existing(ws.fit_dir / f"{frame}_side.png") if frame else None,
        texture=_existing(ws.avatar_dir / "texture.png"), video=video, glb=glb, metrics=metrics,
        downloads=[p for p in (glb, video) if p] + [str(_zip(ws, runs))])


def workspace_zip(runs: Path, person: str) -> Path:
    """``RUNS/.downloads/<person>.zip``: every regular file of the person's workspace (links are left out), remade
    when the workspace's manifest is newer than the zip."""
    return _zip(person_workspace(runs, person), runs)


def _zip(ws: Workspace, runs: Path) -> Path:
    out = Path(runs) / DOWNLOADS / f"{ws.person}.zip"
    if out.is_file() and out.stat().st_mtime >= ws.manifest_path.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(ws.root.rglob("*")):
            if path.is_file() and not path.is_symlink() and not any(p.is_symlink() for p in path.parents):
                zf.write(path, Path(ws.person) / path.relative_to(ws.root))
    os.replace(tmp, out)
    return out


def status_rows(runs: Path, persons: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the status table: a row per person (all, or those of `persons`), a cell per stage; a
    failed stage's cell carries its error."""
    from tasks.stages import stage_names
    from tasks.status import runs_status

    headers = ["person", *stage_names()]
    rows = []
    for st in runs_status(Path(runs)):
        if persons is not None and st["person"] not in persons:
            continue
        cells = [st["person"]]
        for stage in headers[1:]:
            rec = st["stages"].get(stage, {"status": "pending"})
            text = rec["status"]
            if rec.get("status") == "failed" and rec.get("error"):
                text += f": {rec['error'][:200]}"
            cells.append(text)
        rows.append(cells)
    return headers, rows


# ---------------------------------------------------------------------------------------------- jobs


def run_in_background(job: Callable[[], dict], poll: Callable[[], object], every: float = 1.0
                      ) -> Iterator[tuple[object, dict | None]]:
    """Run `job` in a thread; yield ``(poll(), None)`` every `every` seconds while it runs, then ``(poll(),
    result)``. The job's exception is raised here, after the last poll."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = job()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="dinar-app-job", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(every)
        if thread.is_alive():
            yield poll(), None
    if "error" in box:
        raise box["error"]
    yield poll(), box["result"]


def process_photos(photos: Path, runs: Path, config: dict) -> dict:
    """`dinar run PHOTOS --out RUNS`: the pipeline's folder flow, with the same settings as the CLI."""
    from flows.pipeline import process_folder
    from flows.settings import flow_run_settings

    with flow_run_settings():
        return process_folder(photos=str(photos), out=str(runs), config=config)


def rerun_failed(runs: Path) -> dict:
    """`dinar rerun RUNS --failed`."""
    from flows.pipeline import rerun
    from flows.settings import flow_run_settings

    with flow_run_settings():
        return rerun(runs=str(runs), failed_only=True)


def summary_text(summary: dict) -> str:
    lines = [f"**{summary['persons']}** persons: {summary['complete']} complete, {summary['with_failures']} with a "
             f"failure, {summary['blocked']} blocked; {summary.get('executed', 0)} stage runs executed (the rest "
             f"were cached)."]
    lines += [f"- `{f['person']}` / {f['stage']}: {f['error']}" for f in summary.get("failures", [])]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- the page


def _persons_in(folder: Path) -> list[str]:
    from tasks.discover import discover_persons

    return [p.person for p in discover_persons(folder).persons]


def build_app(settings: AppSettings, config: dict):
    """The Gradio Blocks of the app (not launched)."""
    import gradio as gr

    runs = Path(settings.runs).resolve()
    runs.mkdir(parents=True, exist_ok=True)
    headers = status_rows(runs)[0]

    def people() -> list[str]:
        return [ws.person for ws in find_workspaces(runs)]

    def table(persons: list[str] | None = None):
        return gr.update(value=status_rows(runs, persons)[1] or None, headers=headers)

    @contextmanager
    def named_errors():
        """A named error (a refused upload; `RunsBusyError`: a `dinar run` holds the runs folder) as the page's
        message, not a traceback."""
        try:
            yield
        except DinarError as exc:
            raise gr.Error(f"{type(exc).__name__}: {exc}", duration=None) from None

    def start(files, one_person, folder_choice):
        with named_errors():
            if files:
                photos = stage_uploads([Path(f) for f in files], runs, settings, one_person)
            elif folder_choice:
                photos = named_folder(settings.photos_root, folder_choice)
            else:
                raise UploadRefusedError("no photo was uploaded and no folder picked",
                                         fix="drop photos on the upload area")
        persons = _persons_in(photos)
        message = "working: " + ", ".join(persons)
        with named_errors():
            for rows, summary in run_in_background(lambda: process_photos(photos, runs, config),
                                                   lambda: table(persons)):
                if summary is None:
                    yield rows, message, gr.update()
                else:
                    yield rows, summary_text(summary), gr.update(choices=people(),
                                                                 value=persons[0] if persons else None)

    def show(person):
        if not person:
            return None, None, None, None, None, None, None
        with named_errors():
            res = person_results(runs, person)
        return res.overlay, res.side, res.texture, res.video, res.glb, res.metrics, res.downloads

    def rerun_click():
        with named_errors():
            for rows, summary in run_in_background(lambda: rerun_failed(runs), table):
                yield rows, ("rerunning the failed stages..." if summary is None else summary_text(summary))

    with gr.Blocks(title="dinar-pipeline", analytics_enabled=False) as demo:
        gr.Markdown("# dinar-pipeline\nPhotos of people in, rigged and animated avatars out. Each photo is a "
                    f"person; results go to `{runs}`.")
        with gr.Tab("Make avatars"):
            with gr.Row():
                with gr.Column():
                    upload = gr.File(label="Photos", file_count="multiple", file_types=["image"], type="filepath",
                                     elem_id="photos")
                    one_person = gr.Checkbox(label="These photos show one person (several views)", value=False)
                    folder = gr.Dropdown(label="...or a folder under --photos", choices=photo_folders(
                        settings.photos_root), value=None, visible=settings.photos_root is not None)
                    go = gr.Button("Make avatars", variant="primary", elem_id="go")
                with gr.Column():
                    message = gr.Markdown(elem_id="message")
                    progress = gr.Dataframe(headers=headers, label="Stages", interactive=False, elem_id="progress")
            person = gr.Dropdown(label="Person", choices=people(), value=None, elem_id="person")
            with gr.Row():
                overlay = gr.Image(label="Fit", type="filepath", interactive=False)
                side = gr.Image(label="Fit, from the side", type="filepath", interactive=False)
                texture = gr.Image(label="Texture", type="filepath", interactive=False)
            with gr.Row():
                video = gr.Video(label="Turntable", interactive=False, elem_id="video")
                model = gr.Model3D(label="Avatar (GLB)", interactive=False, elem_id="model3d")
            with gr.Row():
                metrics = gr.JSON(label="Fit metrics")
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
        with gr.Tab("Runs folder"):
            runs_table = gr.Dataframe(value=status_rows(runs)[1] or None, headers=headers, interactive=False,
                                      label=str(runs))
            runs_message = gr.Markdown()
            with gr.Row():
                refresh = gr.Button("Refresh")
                again = gr.Button("Rerun failed")

        outputs = [overlay, side, texture, video, model, metrics, downloads]
        go.click(start, [upload, one_person, folder], [progress, message, person], concurrency_id="pipeline",
                 concurrency_limit=settings.concurrency).then(show, person, outputs)
        person.select(show, person, outputs)  # a user's pick (a run's own pick is shown by .then above)
        refresh.click(lambda: table(), None, runs_table)
        again.click(rerun_click, None, [runs_table, runs_message], concurrency_id="pipeline",
                    concurrency_limit=settings.concurrency)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    return demo


def launch(settings: AppSettings, config: dict, block: bool = True):
    """Build and start the app on ``settings.host:settings.port``; returns the Blocks (with `block`, only when
    the server stops)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    demo = build_app(settings, config)
    runs = Path(settings.runs).resolve()
    demo.launch(server_name=settings.host, server_port=settings.port, share=False, inbrowser=False,
                max_file_size=settings.max_photo_bytes, allowed_paths=[str(runs)], show_error=True,
                prevent_thread_lock=not block, quiet=not block, ssr_mode=False, footer_links=[],
                theme=gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],  # no web fonts:
                                        font_mono=["ui-monospace", "monospace"]))  # the page works offline
    return demo


__all__ = ["AppSettings", "build_app", "launch", "stage_uploads", "check_photo",
           "person_workspace", "person_results", "workspace_zip", "status_rows",
           "named_folder", "photo_folders", "run_in_background"]
