"""An API read while the database cannot be reached is a 503 to retry, not a 500 traceback."""

import pytest
import requests

from tests.fixtures import processes


@pytest.mark.integration
def test_an_api_read_without_a_database_answers_503_with_retry_after(db):
    port = processes.free_port()
    # A port nothing listens on: every connection attempt fails as when Postgres is down (or the
    # pool stays full past its timeout; both raise OperationalError).
    dead = f"postgres://volspike:volspike@127.0.0.1:{processes.free_port()}/volspike"
    server = processes.ManagedProcess(
        "asgi-no-database",
        processes.asgi_server_args(port),
        processes.test_process_env(DATABASE_URL=dead),
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{base_url}/health")
        response = requests.get(f"{base_url}/api/open-interest-alerts", timeout=10)
        assert response.status_code == 503, response.text[:300]
        assert response.headers["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "database_unavailable"
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    assert "database unavailable" in log and "Traceback" not in log, log[-2000:]
