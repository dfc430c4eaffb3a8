"""Prefect settings for an offline, per-user installation. Call `configure_prefect()` before importing prefect.

- ``PREFECT_HOME`` goes to a state folder outside the repository (``$DINAR_STATE_DIR``, by default
  ``~/.local/state/dinar-pipeline``), so the SQLite database of the temporary server never lands in a checkout.
- Analytics off (there is no internet to send them to), and a generous start-up timeout for the temporary local
  server, which takes 15-30 s on a 2-core machine.
- With ``PREFECT_API_URL`` set (a `prefect server` from ``make server``, or Prefect Cloud), runs go there instead.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    return Path(os.environ.get("DINAR_STATE_DIR") or Path.home() / ".local" / "state" / "dinar-pipeline")


def configure_prefect(verbose: bool = False) -> None:
    env = os.environ
    env.setdefault("PREFECT_HOME", str(state_dir() / "prefect"))
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    env.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    # The manifest is the cache; Prefect's own task cache stays off (see flows/pipeline.py).
    env.setdefault("PREFECT_TASKS_REFRESH_CACHE", "false")
    if not verbose:
        env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # mediapipe / TFLite C++ logging (absl, glog): keep the terminal for our progress bars and errors
        env.setdefault("GLOG_minloglevel", "2")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


def has_real_server() -> bool:
    """True when runs go to a Prefect server that outlives this process (needed for schedules)."""
    return bool(os.environ.get("PREFECT_API_URL"))
