"""Where a flow's tasks run (threads or Dask worker processes), and how a scheduled deployment avoids overlapping
runs. Imports Prefect lazily: call after ``flows.settings.configure_prefect``."""

from __future__ import annotations

import logging
import os
from typing import Optional

from tasks.threads import WORKERS_ENV, decide_threads


def task_runner(workers: int, dask_address: Optional[str]):
    """Threads (one at a time) for a single worker; a Dask cluster for several workers or a given scheduler.

    Worker processes inherit ``DINAR_WORKERS`` (each stage then sizes its thread pools by `tasks.threads`: its
    share of the CPUs, less what other work is running) and, for libraries that read them once at import, the
    ``OMP/MKL/OPENBLAS_NUM_THREADS`` that the same rule gives now; one Dask thread per worker process."""
    os.environ[WORKERS_ENV] = str(max(1, workers) if not dask_address else 1)
    if workers <= 1 and not dask_address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    threads = decide_threads("auto", workers).threads
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None, "silence_logs": logging.ERROR})


def serve_concurrency():
    """The deployment concurrency limit of `dinar serve`: one flow run of the deployment at a time; a scheduled run
    that comes due while the previous one is still going is cancelled (its photos are picked up by the next one),
    not queued behind it. The runs folder's lock (`tasks.lock`) is the second line of defence."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
