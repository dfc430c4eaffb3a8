"""Which persons a folder of photos holds, and which workspaces a runs folder holds.

A person is one photo, or one sub-folder of photos of the same person. Every other entry of the photos folder is
listed as ignored with the reason (`Ignored`), so the run summary says what was left out and why: hidden files,
fifos, sockets and devices, dangling links, documentation-like files beside the photos (``LICENSES.md``,
``notes.txt``...), folders inside a person's folder, folders without photos. Any other regular file is a person
candidate, and ingest reports a named error if it is not a readable image.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tasks.workspace import MANIFEST, Workspace, unique_ids

# Files that sit beside photos and are clearly not photos: never made into persons.
NOT_PHOTO_SUFFIXES = {".md", ".txt", ".rst", ".json", ".yaml", ".yml", ".csv", ".tsv", ".pdf", ".html", ".htm",
                      ".xml", ".pkl", ".npz", ".npy", ".py", ".sh", ".zip", ".db", ".ini", ".log"}


@dataclass
class PersonSource:
    """A person to process: its workspace id and its photo files (one, or the files of its folder)."""

    person: str
    sources: list[Path]


@dataclass(frozen=True)
class Ignored:
    """An entry of the photos folder that is not (part of) a person, and why."""

    path: Path
    reason: str

    def as_dict(self) -> dict:
        return {"path": str(self.path), "reason": self.reason}


@dataclass
class Discovery:
    persons: list[PersonSource]
    ignored: list[Ignored] = field(default_factory=list)


_KINDS = ((stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def why_not_a_photo(path: Path) -> str | None:
    """None when `path` is a photo candidate (a regular file, or a link to one, of no excluded suffix) or a folder;
    otherwise the reason it is ignored."""
    kind = "folder" if path.is_dir() else "file"
    if path.name.startswith("."):
        return f"hidden {kind}"
    try:
        mode = path.stat().st_mode  # follows a link: a link to a photo is a photo
    except FileNotFoundError:
        return "dangling link" if path.is_symlink() else "vanished while the folder was read"
    except OSError as exc:  # a link loop, no permission
        return f"unreadable ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(mode):
        return None
    for test, name in _KINDS:
        if test(mode):
            return f"{name}, not a photo file"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    if path.suffix.lower() in NOT_PHOTO_SUFFIXES:
        return f"not a photo ({path.suffix.lower()} file)"
    return None


def _folder_photos(folder: Path, ignored: list[Ignored]) -> list[Path]:
    files = []
    for p in sorted(folder.iterdir()):
        reason = why_not_a_photo(p)
        if reason is None and p.is_dir():
            reason = "folder inside a person's folder (not searched)"
        if reason is None:
            files.append(p.resolve())
        else:
            ignored.append(Ignored(p, reason))
    return files


def discover_persons(photos: Path) -> Discovery:
    """Persons in `photos` (a folder, or a single photo file), sorted by name for stable ids."""
    photos = Path(photos)
    if photos.is_file():
        return Discovery([PersonSource(unique_ids([photos.stem])[0], [photos.resolve()])])
    if not photos.is_dir():
        raise FileNotFoundError(f"{photos} is neither a photo nor a folder of photos")
    ignored: list[Ignored] = []
    candidates: list[tuple[str, list[Path]]] = []
    for entry in sorted(photos.iterdir()):
        reason = why_not_a_photo(entry)
        if reason is not None:
            ignored.append(Ignored(entry, reason))
        elif entry.is_dir():
            files = _folder_photos(entry, ignored)
            if files:
                candidates.append((entry.name, files))
            else:
                ignored.append(Ignored(entry, "folder without photos"))
        else:
            candidates.append((entry.stem, [entry.resolve()]))
    ids = unique_ids([name for name, _ in candidates])
    return Discovery([PersonSource(pid, files) for pid, (_, files) in zip(ids, candidates)], ignored)


def find_workspaces(runs: Path) -> list[Workspace]:
    """Person workspaces under `runs` (real folders holding a manifest; a symbolic link is not one), sorted by id."""
    runs = Path(runs)
    if (runs / MANIFEST).is_file():
        return [Workspace(runs)]
    if not runs.is_dir():
        return []
    return sorted((Workspace(p) for p in runs.iterdir() if not p.is_symlink() and (p / MANIFEST).is_file()),
                  key=lambda w: w.person)
