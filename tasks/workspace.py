"""The person workspace: folder layout, atomic writes, safe ids, and the manifest.

``RUNS/<person>/`` holds DINAR's dataset layout (``rgb/ segm/ openpose/ smplx/``) plus our own folders, a
``manifest.json`` (per stage: status, cache key, outputs and their hashes, seconds, error, warnings, versions) and
the resolved ``config.yaml``. Every file is written to a temporary name in its folder and renamed into place, so a
run killed at any instant leaves either the old file or the new one, never half of one, and the manifest is written
only after a stage's outputs are in place.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from dinar_core.errors import UnsafeWorkspaceError
from dinar_core.fileio import TMP_MARK, atomic_target

MANIFEST = "manifest.json"
CONFIG = "config.yaml"

LOCK = ".dinar.lock"
REPORT = "report.html"
REPORT_ASSETS = "report_assets"
"""The report's own files beside it (its 3D viewer, each GLB as a script): ``tasks/report.py``."""
RESERVED_NAMES = frozenset({REPORT, REPORT_ASSETS, LOCK, MANIFEST, CONFIG, MANIFEST + ".corrupt"})
"""Names the runs folder itself uses (case-insensitively): never person ids."""
MAX_ID_BYTES = 100
"""A person or frame id is at most this many bytes of UTF-8: file names built from it (``<id>_keypoints.json``, a
temporary ``.<id>_keypoints.tmp-<pid>.json``) stay well under the 255-byte limit of common file systems."""

# Stage statuses, as shown by `dinar status`.
DONE, FAILED, BLOCKED, PENDING = "done", "failed", "blocked", "pending"


# ----------------------------------------------------------------------------------------------------------------
# Atomic files and hashes
# ----------------------------------------------------------------------------------------------------------------
atomic_path = atomic_target
"""Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def clean_temporaries(root: Path) -> list[Path]:
    """Delete temporary files a killed run left under `root`; returns what was removed.

    Never follows a symbolic link: a `root` that is a link is left alone, linked folders inside it are not entered
    (a link named like a temporary is removed as a link, its target untouched)."""
    removed: list[Path] = []
    root = Path(root)
    if root.is_symlink() or not root.is_dir():
        return removed
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):  # (links to folders are listed in `dirs`, not entered)
            p = Path(folder) / name
            if TMP_MARK in name and (p.is_symlink() or p.is_file()):
                p.unlink()
                removed.append(p)
    return removed


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Safe ids
# ----------------------------------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^\w.\-]+", flags=re.UNICODE)


def _cut_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def safe_id(name: str, fallback: str = "person", max_bytes: int = MAX_ID_BYTES) -> str:
    """A file-system-safe id from a file or folder name.

    Unicode letters and digits are kept (NFC-normalised), path separators, ``..``, whitespace, control and other
    characters become ``_``; leading dots are dropped (no hidden files, no ``..``); at most `max_bytes` bytes of
    UTF-8 (cut on a character boundary). A name the runs folder uses itself (`RESERVED_NAMES`, e.g. a photo
    ``report.html.png``) has its dots replaced (``report_html``), or without dots a suffix (``report_assets_p``).
    """
    text = unicodedata.normalize("NFC", str(name))
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else "_" for ch in text)
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\.{2,}", "_", text)
    text = text.strip("._ ")
    text = _cut_bytes(re.sub(r"_+", "_", text), max_bytes).rstrip("._")
    if text.lower() in RESERVED_NAMES:
        text = text.replace(".", "_")
        if text.lower() in RESERVED_NAMES:  # a reserved folder name (report_assets): no dot to replace
            text = _cut_bytes(text, max_bytes - 2) + "_p"
    return text or fallback


def unique_ids(names: list[str], max_bytes: int = MAX_ID_BYTES) -> list[str]:
    """`safe_id` of each name, with ``-2``, ``-3``... suffixes where two names map to one id (case-insensitively,
    so the layout also works on case-insensitive file systems); a suffixed id still fits in `max_bytes`."""
    seen: set[str] = set()
    out = []
    for name in names:
        base = safe_id(name, max_bytes=max_bytes)
        candidate, n = base, 1
        while candidate.lower() in seen:
            n += 1
            suffix = f"-{n}"
            candidate = _cut_bytes(base, max_bytes - len(suffix)) + suffix
        seen.add(candidate.lower())
        out.append(candidate)
    return out


# ----------------------------------------------------------------------------------------------------------------
# The workspace
# ----------------------------------------------------------------------------------------------------------------
def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Workspace:
    """Paths of one person's workspace ``RUNS/<person>/``."""

    root: Path

    @property
    def person(self) -> str:
        return self.root.name

    rgb_dir = property(lambda self: self.root / "rgb")
    segm_dir = property(lambda self: self.root / "segm")
    openpose_dir = property(lambda self: self.root / "openpose")
    smplx_dir = property(lambda self: self.root / "smplx")
    fit_dir = property(lambda self: self.root / "fit")
    avatar_dir = property(lambda self: self.root / "avatar")
    renders_dir = property(lambda self: self.root / "renders")
    report_dir = property(lambda self: self.root / "report")
    manifest_path = property(lambda self: self.root / MANIFEST)
    config_path = property(lambda self: self.root / CONFIG)

    def rgb(self, frame: str) -> Path:
        return self.rgb_dir / f"{frame}.png"

    def segm(self, frame: str) -> Path:
        return self.segm_dir / f"{frame}.png"

    def keypoints(self, frame: str) -> Path:
        return self.openpose_dir / f"{frame}_keypoints.json"

    def smplx(self, frame: str) -> Path:
        return self.smplx_dir / f"{frame}.pkl"

    def overlay(self, frame: str) -> Path:
        return self.report_dir / f"{frame}_overlay.png"

    def frames(self) -> list[str]:
        """Frame ids, from ``rgb/*.png`` (sorted)."""
        if not self.rgb_dir.is_dir():
            return []
        return sorted(p.stem for p in self.rgb_dir.glob("*.png") if TMP_MARK not in p.name)

    def check_safe(self) -> None:
        """Raise `UnsafeWorkspaceError` when the workspace is, or holds, a symbolic link (anything written or deleted
        through it could be outside the runs folder). Runs before every stage; costs one walk of the workspace."""
        links = [self.root] if self.root.is_symlink() else []
        if not links and self.root.is_dir():
            for folder, dirs, files in os.walk(self.root, followlinks=False):
                links += [Path(folder) / n for n in (*dirs, *files) if (Path(folder) / n).is_symlink()]
        if links:
            shown = ", ".join(str(p) for p in links[:3]) + (f" and {len(links) - 3} more" if len(links) > 3 else "")
            raise UnsafeWorkspaceError(
                f"the workspace {self.root} is or holds a symbolic link ({shown}); the pipeline writes and deletes "
                f"files there and will not follow a link out of the runs folder",
                fix="remove the link(s) (rm, not rm -r) and run again, or give --out a folder of its own")

    def remove_stale(self, folder: Path, pattern: str, keep: set[str]) -> list[Path]:
        """Delete the files of `folder` (one of this workspace's folders) matching `pattern` whose names are not in
        `keep`. Raises `UnsafeWorkspaceError` instead when the workspace holds a symbolic link (the files could be
        someone else's); never deletes outside the workspace."""
        self.check_safe()
        folder = Path(folder)
        if not folder.resolve().is_relative_to(self.root.resolve()):
            raise UnsafeWorkspaceError(f"{folder} is not inside the workspace {self.root}", fix="report this bug")
        removed = []
        for stale in folder.glob(pattern):
            if stale.name not in keep and stale.is_file():
                stale.unlink()
                removed.append(stale)
        return removed

    def rel(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    # -- manifest -------------------------------------------------------------------------------------------------
    def read_manifest(self) -> dict:
        """The manifest, or a fresh one. A corrupt manifest (impossible with atomic writes, but a user may edit
        it) is set aside as ``manifest.json.corrupt`` and every stage is considered pending."""
        path = self.manifest_path
        if path.exists():
            try:
                data = json.loads(path.read_text("utf-8"))
                if isinstance(data, dict):
                    data.setdefault("stages", {})
                    return data
            except (json.JSONDecodeError, UnicodeDecodeError):
                pass
            os.replace(path, path.with_name(MANIFEST + ".corrupt"))
        return {"person": self.person, "sources": [], "created": now_iso(), "stages": {}}

    def write_manifest(self, manifest: dict) -> None:
        manifest["updated"] = now_iso()
        atomic_write_json(self.manifest_path, manifest)

    def stage_record(self, stage: str) -> dict:
        return self.read_manifest()["stages"].get(stage, {})

    def sources(self) -> list[Path]:
        return [Path(p) for p in self.read_manifest().get("sources", [])]
