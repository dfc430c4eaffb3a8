"""How many threads a stage's torch/OpenMP/BLAS pools get: the CPUs this process may use, shared between the
run's workers, minus what other work is running right now (``runtime.threads: auto``), or a fixed number.

Why: on a busy machine an OpenMP pool as large as the machine collapses (measured on 2 cores, SMPL-X fit of one
photo: 2 threads 30.7 s idle, 46.5 s beside one busy process, 154 s beside several; 1 thread 29.1 / 28.7 / 32 s):
the threads of a parallel region wait at every barrier for the one the scheduler descheduled. So a stage uses

    threads = max(1, min(cpus // workers, cpus - others))

where ``cpus`` = ``len(os.sched_getaffinity(0))`` (a container's or taskset's limit, not the machine's count),
``workers`` = the run's worker processes (``DINAR_WORKERS``, set by the Dask task runner; 1 otherwise) and
``others`` = the runnable threads of the machine besides this one, sampled for ~30 ms from ``/proc/stat``
(``procs_running``; the 1-minute load average where there is no ``/proc``: it lags by a minute, so it only serves
as a fallback). It is chosen when a stage starts (`apply_threads`, called by `tasks.runner.run_stage`, so it holds
inside Dask worker processes too) and recorded in the stage's manifest ``versions``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

WORKERS_ENV = "DINAR_WORKERS"
_POOL_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def run_workers() -> int:
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "1")))
    except ValueError:
        return 1


def other_load(samples: int = 4, interval: float = 0.01) -> float:
    """Runnable threads on the machine besides the calling one (mean of a few samples of ``procs_running``)."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/stat", "rb") as fh:
                line = next(ln for ln in fh if ln.startswith(b"procs_running"))
            counts.append(int(line.split()[1]) - 1)  # the reading thread itself is running
        except (OSError, StopIteration, ValueError, IndexError):
            return max(0.0, os.getloadavg()[0] - 1.0) if hasattr(os, "getloadavg") else 0.0
        if i + 1 < samples:
            time.sleep(interval)
    return max(0.0, sum(counts) / len(counts))


def choose_threads(cpus: int, workers: int, others: float) -> int:
    """The rule: this worker's share of the CPUs, reduced to what the other running work leaves free, at least 1."""
    share = max(1, cpus // max(1, workers))
    free = int(cpus - others + 0.5)  # a half-busy core counts as free
    return max(1, min(share, free))


@dataclass(frozen=True)
class ThreadChoice:
    """What `apply_threads` set, as recorded in the manifest."""

    threads: int
    setting: str
    cpus: int
    workers: int
    others: float | None

    def as_dict(self) -> dict:
        return {"threads": self.threads, "setting": self.setting, "cpus": self.cpus, "workers": self.workers,
                "others_running": None if self.others is None else round(self.others, 2)}


_recent: dict = {}
_REUSE_S = 1.0
"""Stages that start within this many seconds of the last decision (short stages of one person) reuse it."""


def decide_threads(setting: int | str = "auto", workers: int | None = None) -> ThreadChoice:
    workers = workers or run_workers()
    cpus = usable_cpus()
    if setting != "auto":
        return ThreadChoice(max(1, int(setting)), str(setting), cpus, workers, None)
    last = _recent.get((cpus, workers))
    if last is not None and time.monotonic() - last[0] < _REUSE_S:
        return last[1]
    others = other_load()
    choice = ThreadChoice(choose_threads(cpus, workers, others), "auto", cpus, workers, others)
    _recent[(cpus, workers)] = (time.monotonic(), choice)
    return choice


def apply_threads(setting: int | str = "auto", workers: int | None = None) -> ThreadChoice:
    """Size this process's thread pools (torch intra-op/OpenMP, OpenCV if loaded; the environment variables for
    processes it starts) by `decide_threads`."""
    choice = decide_threads(setting, workers)
    for var in _POOL_VARS:
        os.environ[var] = str(choice.threads)
    import torch

    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(choice.threads)
    return choice
