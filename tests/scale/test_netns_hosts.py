"""The poller hosts of the scale-out test and bench: each reaches the simulator from its own IP and
this machine's Redis through a relay, and building them changes nothing in this machine's own
network namespace (a change there fails the connections every browser on the machine is opening
with ERR_NETWORK_CHANGED: it failed the production test's page load in CI once)."""

import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.fixtures.netns import NetnsHosts, hosts_for_test

pytestmark = pytest.mark.integration


def _in_host(hosts: NetnsHosts, index: int, code: str) -> str:
    done = subprocess.run(
        hosts.exec_args(index, [sys.executable, "-c", code]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_hosts_reach_the_hub_from_their_own_ips_and_leave_this_machines_network_alone():
    with hosts_for_test(2) as hosts:
        # nothing of theirs (links, addresses) in this machine's namespace
        assert hosts.on_this_machine() == []
        sim, url_for_hosts = hosts.simulator("--symbols", "5", "--event-rate-per-day", "0")
        try:
            for index in (0, 1):
                _in_host(
                    hosts,
                    index,
                    "import urllib.request; urllib.request.urlopen("
                    f"'{url_for_hosts}/fapi/v1/ping', timeout=10).read()",
                )
            # the simulator, asked from this machine, saw each host's own address
            ips = sim.stats()["ips"]
            assert {hosts.address(0), hosts.address(1)} <= set(ips), ips
        finally:
            sim.stop()
        redis_url = urlsplit(settings.REDIS_URL)
        relayed = hosts.relay(redis_url.port or 6379, redis_url.hostname or "127.0.0.1")
        answer = _in_host(
            hosts,
            1,
            "import socket; s = socket.create_connection("
            f"('{hosts.gateway}', {relayed}), timeout=10); s.sendall(b'PING\\r\\n');"
            " print(s.recv(64).decode().strip())",
        )
        # Redis answers a host through the relay (a password-protected one refuses the PING)
        assert answer in ("+PONG", "-NOAUTH Authentication required.")
        assert hosts.on_this_machine() == []
