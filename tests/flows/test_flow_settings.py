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


# ---------------------------------------------------------------------- a running `dinar server` is reused

import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, HTTPServer  # noqa: E402

import pytest  # noqa: E402

from flows.settings import configure_prefect, find_local_server, local_server_record  # noqa: E402


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    for name in ("PREFECT_API_URL", "DINAR_NO_LOCAL_SERVER"):  # set, then removed: restored after the test even
        monkeypatch.setenv(name, "")                             # when the code under test sets them itself
        monkeypatch.delenv(name)
    (tmp_path / "prefect").mkdir()
    return tmp_path / "prefect"


def _record(url: str, pid: int) -> None:
    local_server_record().write_text(json.dumps({"url": url, "pid": pid}))


def test_a_recorded_live_local_server_is_used(home, health_server):
    assert find_local_server() is None  # nothing recorded
    _record(health_server, os.getpid())
    configure_prefect()
    assert os.environ["PREFECT_API_URL"] == health_server


def test_a_dead_silent_or_remote_server_is_not_used(home, health_server, monkeypatch):
    _record(health_server, 2 ** 22 + 12345)  # no such process
    assert find_local_server() is None
    _record("http://127.0.0.1:9/api", os.getpid())  # nothing listens there
    assert find_local_server(timeout=0.5) is None
    _record(health_server.replace("127.0.0.1", "example.com"), os.getpid())  # only a loopback address is taken
    assert find_local_server() is None
    local_server_record().write_text("{not json")
    assert find_local_server() is None
    _record(health_server, os.getpid())
    monkeypatch.setenv("DINAR_NO_LOCAL_SERVER", "1")
    configure_prefect()
    assert "PREFECT_API_URL" not in os.environ


def test_dinar_server_records_itself_while_it_runs(home, monkeypatch):
    import subprocess

    from typer.testing import CliRunner

    from flows.cli import app

    seen = {}

    class FakeServer:
        pid = 4242

        def __init__(self, argv, **kwargs):
            seen["argv"] = argv

        def wait(self):
            seen["record"] = json.loads(local_server_record().read_text())
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    res = CliRunner().invoke(app, ["server", "--port", "4321"])
    assert res.exit_code == 0, res.output
    assert seen["argv"][1:] == ["server", "start", "--host", "127.0.0.1", "--port", "4321"]
    assert seen["record"] == {"url": "http://127.0.0.1:4321/api", "pid": 4242}
    assert not local_server_record().exists()  # removed when the server stops
