"""`dinar import pose2sim`: a Pose2Sim project (synchronised videos or image folders + one calibration) -> a
multi-view dataset in the contract's layout (``dinar_core/cameras/multiview.py``, ``MULTIVIEW`` in the docs).

```
PROJECT/
  videos/<camera>.mp4 (.avi, .mov, .mkv, .webm)   or   videos/<camera>/<frame images>   (sorted by name)
  calibration/Calib*.toml  or  calibration/*.qca.txt   (or --calibration FILE)
->
DATA/
  <project>_f0010/views/<camera>.png   frame 10 of each camera, undistorted (same K), optionally downscaled
  <project>_f0010/cameras.json         K (of the written PNG), R, t (m), dist (original), size
  dataset.json                         kind "pose2sim", source, licence, persons (merged with earlier imports)
```

Frame index = the 0-based index of the decoded video frame (or of the image in its sorted folder). Every camera must
have both frames and a calibration entry (else :class:`MissingCameraError`); ``cameras`` picks a subset.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from dinar_core.cameras.calibration import find_calibration, fit_to_frame, match_cameras, read_calibration
from dinar_core.cameras.multiview import (
    Camera,
    CameraSet,
    DatasetInfo,
    CAMERAS_FILE,
    VIEWS_DIR,
    read_dataset,
    write_cameras,
    write_dataset,
)
from dinar_core.errors import InvalidImageError, MissingCameraError, MultiViewDataError
from dinar_core.image import to_rgb8
from tasks.workspace import atomic_path, safe_id

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
KIND = "pose2sim"
DEFAULT_LICENCE = "unknown: record the licence of the source videos here"


@dataclass(frozen=True)
class FrameSource:
    """Where one camera's frames come from: a video file or a folder of images."""

    camera: str
    path: Path

    @property
    def is_video(self) -> bool:
        return self.path.is_file()


@dataclass
class ImportResult:
    """What an import wrote: the dataset folder, its person folders (one per frame) and warnings."""

    data_dir: Path
    persons: list[Path]
    calibration: Path
    cameras: list[str]
    warnings: list[str] = field(default_factory=list)


def parse_frames(text: str) -> list[int]:
    """``"10,40"`` / ``"0-30:10"`` (start-stop inclusive, step) -> sorted unique frame indices >= 0."""
    frames: set[int] = set()
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if not m:
            raise MultiViewDataError(f"--frames: {part!r} is not a frame index or range",
                                     fix="write indices like 10,40 or a range 0-90:30")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        step = int(m.group(3)) if m.group(3) else 1
        if b < a or step < 1:
            raise MultiViewDataError(f"--frames: empty range {part!r}", fix="write start-stop with start <= stop")
        frames.update(range(a, b + 1, step))
    if not frames:
        raise MultiViewDataError("--frames: no frame given", fix="give frame indices, e.g. --frames 10,40")
    return sorted(frames)


def find_frame_sources(videos_dir: Path) -> dict[str, FrameSource]:
    """``{camera: source}`` of a project's ``videos/`` folder: video files and image sub-folders, by stem."""
    if not videos_dir.is_dir():
        raise MultiViewDataError(f"{videos_dir} is not a folder", fix="a Pose2Sim project keeps one video (or one "
                                                                      "folder of frames) per camera in videos/")
    sources: dict[str, FrameSource] = {}
    for p in sorted(videos_dir.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            name = p.stem
        elif p.is_dir() and any(q.suffix.lower() in FRAME_SUFFIXES for q in p.iterdir()):
            name = p.name
        else:
            continue
        if name in sources:
            raise MultiViewDataError(f"{videos_dir}: camera {name!r} has both {sources[name].path.name} and "
                                     f"{p.name}", fix="keep one source per camera")
        sources[name] = FrameSource(name, p)
    if not sources:
        raise MultiViewDataError(f"{videos_dir}: no video ({', '.join(sorted(VIDEO_SUFFIXES))}) and no folder of "
                                 "frames", fix="put one video or image folder per camera in videos/")
    return sources


def read_frames(source: FrameSource, frames: Sequence[int]) -> dict[int, np.ndarray]:
    """``{index: (H, W, 3) uint8 RGB}`` of the wanted frames of one camera; :class:`MultiViewDataError` when an
    index is past the end (naming the camera's frame count)."""
    wanted = set(frames)
    if source.is_video:
        got, count = _decode_video(source.path, wanted)
    else:
        files = sorted((q for q in source.path.iterdir() if q.suffix.lower() in FRAME_SUFFIXES
                        and not q.name.startswith(".")), key=_natural_key)
        count = len(files)
        got = {i: _read_image(files[i]) for i in wanted if i < count}
    missing = sorted(wanted - set(got))
    if missing:
        raise MultiViewDataError(f"{source.path}: camera {source.camera!r} has {count} frames, no frame "
                                 f"{', '.join(map(str, missing))}", fix=f"choose --frames below {count}")
    return got


def _decode_video(path: Path, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    import av

    got: dict[int, np.ndarray] = {}
    count = 0
    last = max(wanted)
    try:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                count = i + 1
                if i in wanted:
                    got[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise InvalidImageError(f"{path} cannot be decoded as a video ({exc})",
                                fix="re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)") from exc
    return got, count


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InvalidImageError(f"{path} cannot be decoded as an image", fix="replace the frame file")
    if img.ndim == 3 and img.shape[2] >= 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return to_rgb8(img)


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def person_id(project: str, frame: int) -> str:
    return f"{safe_id(project, 'project')}_f{frame:04d}"


def write_view(path: Path, rgb: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise OSError(f"could not write {path}")
    return path


def prepare_view(camera: Camera, raw: np.ndarray, scale: float) -> tuple[np.ndarray, Camera]:
    """One raw frame -> (undistorted, resized view (H', W', 3) uint8, the camera of that view)."""
    cam = fit_to_frame(camera, (raw.shape[1], raw.shape[0]), source=f"camera {camera.name!r} frames")
    view = cam.undistort_image(raw)
    if scale != 1.0:
        size = (max(1, round(cam.width * scale)), max(1, round(cam.height * scale)))
        view = cv2.resize(view, size, interpolation=cv2.INTER_AREA)
        cam = cam.resized(size)
    return view, cam


def import_pose2sim(project_dir: str | os.PathLike, out: str | os.PathLike, frames: Iterable[int], *,
                    cameras: Sequence[str] | None = None, scale: float = 1.0,
                    calibration: str | os.PathLike | None = None, binning: int = 1,
                    name: str | None = None, licence: str = DEFAULT_LICENCE, source: str | None = None
                    ) -> ImportResult:
    """Import frames ``frames`` of every camera (or of ``cameras``) of a Pose2Sim project into ``out``.

    Steps: 1. find the calibration and the per-camera frame sources; 2. pair cameras with sources by name (named
    error for any camera on one side only); 3. per camera, decode the wanted frames, fit the camera to the frames'
    actual size, undistort (same K), downscale by ``scale`` (K scaled), write ``<person>/views/<camera>.png``;
    4. write each person-instant's ``cameras.json``, then ``dataset.json`` (merged with the persons already in
    ``out``).
    """
    project = Path(project_dir)
    out = Path(out)
    if not project.is_dir():
        raise MultiViewDataError(f"{project} is not a folder", fix="give a Pose2Sim project folder (videos/, "
                                                                   "calibration/)")
    if not scale > 0 or scale > 1:
        raise MultiViewDataError(f"--scale must be in (0, 1], got {scale}", fix="e.g. --scale 0.5")
    frame_list = sorted(set(int(f) for f in frames))
    if not frame_list or frame_list[0] < 0:
        raise MultiViewDataError(f"frames must be indices >= 0, got {frame_list}", fix="e.g. --frames 10,40")

    # 1. calibration and frame sources
    calib_path = Path(calibration) if calibration else find_calibration(project / "calibration")
    calib = read_calibration(calib_path, binning)
    sources = find_frame_sources(project / "videos")

    # 2. pair them (all of both sides, or the chosen cameras)
    if cameras:
        chosen = list(dict.fromkeys(cameras))
        no_src = [c for c in chosen if c not in sources]
        if no_src:
            raise MissingCameraError(f"{project / 'videos'}: no video or frame folder for {', '.join(no_src)} "
                                     f"(found: {', '.join(sources)})", fix="choose cameras that have videos")
        mapping = match_cameras(calib, chosen, str(calib_path), allow_unused=True)
    else:
        chosen = list(sources)
        mapping = match_cameras(calib, chosen, str(calib_path))

    # 3. per camera (one pass over its video): frames -> undistorted, resized views, written at once. A person's
    # cameras.json is written last, so a person folder without it (an import that failed half-way) is not listed.
    project_name = name or project.resolve().name
    persons = [out / person_id(project_name, f) for f in frame_list]
    for person in persons:
        (person / CAMERAS_FILE).unlink(missing_ok=True)
    per_person: list[dict[str, Camera]] = [{} for _ in frame_list]
    warnings = []
    for cam_name in chosen:
        cam = calib[mapping[cam_name]]
        cam = Camera(cam_name, cam.K, cam.R, cam.t, cam.dist, cam.size)
        for k, (_f, rgb) in enumerate(sorted(read_frames(sources[cam_name], frame_list).items())):
            if k == 0 and (rgb.shape[1], rgb.shape[0]) != cam.size:
                warnings.append(f"{cam_name}: frames are {rgb.shape[1]}x{rgb.shape[0]}, the calibration says "
                                f"{cam.width}x{cam.height}; camera fitted to the frames (see fit_to_frame)")
            view, per_person[k][cam_name] = prepare_view(cam, rgb, scale)
            write_view(persons[k] / VIEWS_DIR / f"{cam_name}.png", view)

    # 4. each person's cameras.json (stale views of other cameras removed), then dataset.json
    for person, cams in zip(persons, per_person):
        for stale in (person / VIEWS_DIR).glob("*.png"):
            if stale.stem not in cams:
                stale.unlink()
        write_cameras(person, CameraSet(cams, calib.up))

    info = DatasetInfo(KIND, source or f"{project_name} (Pose2Sim project), calibration {calib_path.name}",
                       licence, [p.name for p in persons],
                       {"generator": "dinar import pose2sim", "frames": frame_list, "scale": scale,
                        "cameras": chosen})
    write_dataset(out, _merge(out, info))
    return ImportResult(out, persons, calib_path, chosen, warnings)


def _merge(out: Path, info: DatasetInfo) -> DatasetInfo:
    """dataset.json after this import: earlier persons of the same kind that still exist are kept."""
    if not (out / "dataset.json").exists():
        return info
    old = read_dataset(out)
    if old.kind and old.kind != info.kind:
        raise MultiViewDataError(f"{out / 'dataset.json'} is a {old.kind!r} dataset, not {info.kind!r}",
                                 fix="import into a new folder")
    kept = [p for p in old.persons if p not in info.persons and (out / p / "cameras.json").is_file()]
    frames = sorted(set(old.extra.get("frames", [])) | set(info.extra["frames"]))
    return DatasetInfo(info.kind, info.source, info.licence, sorted(kept + info.persons),
                       {**info.extra, "frames": frames})
