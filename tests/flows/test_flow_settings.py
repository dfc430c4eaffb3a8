"""Flow-run settings: heartbeats off on the temporary server (each flow run would wait up to 1 s for their thread),
on with a real server. Each test starts from heartbeats on (30 s), whatever an earlier test's session harness set."""

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

from flows.settings import flow_run_settings


def test_heartbeats_off_without_a_real_server(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        with flow_run_settings():
            assert get_current_settings().flows.heartbeat_frequency is None
        assert get_current_settings().flows.heartbeat_frequency == 30  # only inside the block


def test_heartbeats_kept_for_a_real_server(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        with flow_run_settings():
            assert get_current_settings().flows.heartbeat_frequency == 30
