"""One run at a time per runs folder: an exclusive `fcntl.flock` on ``RUNS/.dinar.lock``.

The flows take it (so a run started by a deployment respects it as a `dinar run` does). A second run on the same
folder waits up to ``runtime.lock_timeout`` seconds, then raises `RunsBusyError` saying which process holds it
(pid, host, start time, what it runs) and what to do. The kernel releases the lock when its holder exits, however
it exits, so a killed run leaves no stale lock; the file itself stays (its content is only the message). The lock
file is opened without following a symbolic link. Locks on a network file system work where it supports flock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from dinar_core.errors import RunsBusyError
from tasks.workspace import LOCK, now_iso


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        return (f"pid {info['pid']} on {info['host']} ({info.get('what', 'a run')}, started {info['started']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def runs_lock(runs: Path, timeout: float = 5.0, what: str = "dinar run") -> Iterator[Path]:
    """Hold the lock of the runs folder `runs` (created if missing) for the block; wait up to `timeout` seconds
    (0: do not wait) for a run that holds it, then raise `RunsBusyError`."""
    runs = Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RunsBusyError(f"{path} is a symbolic link, not the runs folder's lock file",
                                fix=f"remove {path} (the pipeline recreates it)") from exc
        raise
    try:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunsBusyError(
                        f"the runs folder {runs} is in use by {_holder(fd)}; a second run on it would redo and "
                        f"overwrite the same work",
                        fix="wait for that run to end (its results are reused), stop it, use another --out, or wait "
                            "longer with --set runtime.lock_timeout=SECONDS") from None
                time.sleep(min(0.2, max(0.01, deadline - time.monotonic())))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": now_iso(), "what": what}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing releases the lock
