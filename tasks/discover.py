"""Which persons a folder of photos holds, and which workspaces a runs folder holds.

A person is one photo, or one sub-folder of photos of the same person. Documentation-like files beside the photos
(``LICENSES.md``, ``notes.txt``...) are not persons: they are listed as ignored, so the run summary says so. Any
other file is a person candidate, and ingest reports a named error if it is not a readable image.
"""

from __future__ import annotations

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


@dataclass
class Discovery:
    persons: list[PersonSource]
    ignored: list[Path] = field(default_factory=list)


def _is_candidate(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() not in NOT_PHOTO_SUFFIXES


def discover_persons(photos: Path) -> Discovery:
    """Persons in `photos` (a folder, or a single photo file), sorted by name for stable ids."""
    photos = Path(photos)
    if photos.is_file():
        return Discovery([PersonSource(unique_ids([photos.stem])[0], [photos.resolve()])])
    if not photos.is_dir():
        raise FileNotFoundError(f"{photos} is neither a photo nor a folder of photos")
    entries = sorted(p for p in photos.iterdir() if not p.name.startswith("."))
    ignored = [p for p in entries if p.is_file() and not _is_candidate(p)]
    candidates: list[tuple[str, list[Path]]] = []
    for entry in entries:
        if entry.is_dir():
            files = sorted(p.resolve() for p in entry.iterdir() if _is_candidate(p))
            ignored += sorted(p for p in entry.iterdir() if p.is_file() and not _is_candidate(p)
                              and not p.name.startswith("."))
            if files:
                candidates.append((entry.name, files))
            # an empty folder is not a person
        elif _is_candidate(entry):
            candidates.append((entry.stem, [entry.resolve()]))
    ids = unique_ids([name for name, _ in candidates])
    return Discovery([PersonSource(pid, files) for pid, (_, files) in zip(ids, candidates)], ignored)


def find_workspaces(runs: Path) -> list[Workspace]:
    """Person workspaces under `runs` (folders holding a manifest), sorted by id."""
    runs = Path(runs)
    if (runs / MANIFEST).is_file():
        return [Workspace(runs)]
    if not runs.is_dir():
        return []
    return sorted((Workspace(p) for p in runs.iterdir() if (p / MANIFEST).is_file()), key=lambda w: w.person)
