"""Shared fixtures. The Prefect harness is session-scoped: one temporary API server per test run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SMPLX_UV_ASSETS = SHARED / "reference" / "dinar-smplx-data"
STATE_DIR = Path(os.environ.get("DINAR_STATE_DIR", Path.home() / ".local" / "state" / "dinar-pipeline"))

# Prefect reads these when it is first imported; keep its home out of the repository.
os.environ.setdefault("PREFECT_HOME", str(STATE_DIR / "prefect-test"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "false")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return ROOT / "data" / "samples"


@pytest.fixture(scope="session")
def uv_assets() -> Path:
    """DINAR's SMPL-X UV assets (not redistributed); tests that need them skip cleanly without them."""
    if not (SMPLX_UV_ASSETS / "uv.npy").is_file():
        pytest.skip(f"DINAR's SMPL-X UV assets not found at {SMPLX_UV_ASSETS}")
    return SMPLX_UV_ASSETS


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole run (starting one costs ~15-30 s)."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.settings import flow_run_settings

    with prefect_test_harness(server_startup_timeout=180), flow_run_settings():  # as `dinar run`: no heartbeats
        yield
