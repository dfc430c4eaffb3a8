"""Write-to-temporary-then-rename: the one implementation, used by the core's file writers (video, GLB, motion
files) and by the person workspace (``tasks.workspace.atomic_path`` is this function).

The temporary name carries a ``.tmp-<pid>`` mark and keeps the suffix (libraries that pick a format by extension,
such as cv2.imwrite or imageio, still work), so ``tasks.workspace.clean_temporaries`` recognises what a killed run
left behind.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

TMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds the file is fsynced and renamed onto
    ``path``; when it raises, the temporary file is deleted and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}{TMP_MARK}{os.getpid()}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
