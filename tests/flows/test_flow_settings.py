"""Flow-run settings: heartbeats off on the temporary server (each flow run would wait up to 1 s for their thread),
on with a real server."""

from prefect.settings import get_current_settings

from flows.settings import flow_run_settings


def test_heartbeats_off_without_a_real_server(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with flow_run_settings():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency is not None  # only inside the block


def test_heartbeats_kept_for_a_real_server(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    before = get_current_settings().flows.heartbeat_frequency
    with flow_run_settings():
        assert get_current_settings().flows.heartbeat_frequency == before is not None

