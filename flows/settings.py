"""Prefect settings for an offline, per-user installation. Call `configure_prefect()` before importing prefect.

- ``PREFECT_HOME`` goes to a state folder outside the repository (``$DINAR_STATE_DIR``, by default
  ``~/.local/state/dinar-pipeline``), so the SQLite database of the temporary server never lands in a checkout.
- Analytics off (there is no internet to send them to), and a generous start-up timeout for the temporary local
  server, which takes 15-30 s on a 2-core machine.
- With ``PREFECT_API_URL`` set (a `prefect server`, or Prefect Cloud), runs go there instead.
- A local server started by ``dinar server`` (``make server``) records itself in ``PREFECT_HOME/local-server.json``;
  while it answers, every command of the same ``PREFECT_HOME`` uses it instead of starting a temporary server
  (measured: ``dinar run`` of one new photo through ingest 14.4 s -> 4.9 s). Only a loopback address is taken
  from that file; ``DINAR_NO_LOCAL_SERVER=1`` turns the reuse off.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def state_dir() -> Path:
    return Path(os.environ.get("DINAR_STATE_DIR") or Path.home() / ".local" / "state" / "dinar-pipeline")


LOCAL_SERVER_FILE = "local-server.json"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def local_server_record() -> Path:
    """Where `dinar server` records its URL and process id: beside the Prefect state it serves."""
    return Path(os.environ.get("PREFECT_HOME") or state_dir() / "prefect") / LOCAL_SERVER_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def find_local_server(timeout: float = 1.0) -> str | None:
    """The API URL of the local server recorded in `local_server_record` if its process lives, its address is a
    loopback one and its health check answers within `timeout` seconds; else None."""
    try:
        data = json.loads(local_server_record().read_text("utf-8"))
        url, pid = str(data["url"]).rstrip("/"), int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    host = urllib.parse.urlsplit(url).netloc.rsplit(":", 1)[0] if "://" in url else ""
    if host not in LOOPBACK_HOSTS or not _alive(pid):
        return None
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as answer:
            return url if answer.status == 200 else None
    except (OSError, ValueError):
        return None


def configure_prefect(verbose: bool = False) -> None:
    env = os.environ
    env.setdefault("PREFECT_HOME", str(state_dir() / "prefect"))
    if not env.get("PREFECT_API_URL") and not env.get("DINAR_NO_LOCAL_SERVER"):
        url = find_local_server()
        if url is not None:  # `dinar server` runs here: no temporary server to start
            env["PREFECT_API_URL"] = url
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    env.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")
    # The manifest is the cache; Prefect's own task cache stays off (see flows/pipeline.py).
    env.setdefault("PREFECT_TASKS_REFRESH_CACHE", "false")
    if not verbose:  # (mediapipe's native log lines are filtered where it runs: dinar_core.native_logs)
        env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


def has_real_server() -> bool:
    """True when runs go to a Prefect server that outlives this process (needed for schedules)."""
    return bool(os.environ.get("PREFECT_API_URL"))


@contextmanager
def flow_run_settings() -> Iterator[None]:
    """Prefect settings for the flow runs started inside the block (call after ``configure_prefect``).

    Without a real server, flow-run heartbeats are off: they let a server notice a flow run whose process died, but
    the temporary server dies with that process. Their thread sleeps in 1 s steps and every flow run waits for it
    when it ends: measured here, an empty flow run takes 1.08 s with them and 0.09 s without. With
    ``PREFECT_API_URL`` set they stay on (crash detection for long runs on a shared server)."""
    if has_real_server():
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
