"""The model endpoint and host ports through the real firewall: one address and TCP port each.

The sessions here use the tests' DNS stand-in as their upstream resolver (as in
test_firewall_container), so a gateway can be reached by a test name that resolves to the
Docker host, with the product's default rebinding refusal on.
"""

from __future__ import annotations

import socket
import threading

import pytest

from claude_docker.config.model import ModelEndpoint, NetworkConfig
from tests.support.sandbox import Sandbox


class Listener:
    """A TCP server on every host address that answers each connection with `reply`."""

    def __init__(self, reply: bytes = b"host") -> None:
        self.connections = 0
        self._socket = socket.create_server(("0.0.0.0", 0))
        self.port = self._socket.getsockname()[1]
        self._reply = reply
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            try:
                connection.sendall(self._reply)
            finally:
                connection.close()

    def close(self) -> None:
        self._socket.close()


@pytest.fixture
def listeners():
    opened: list[Listener] = []

    def make() -> Listener:
        opened.append(Listener())
        return opened[-1]

    yield make
    for listener in opened:
        listener.close()


def reach(box: Sandbox, host: str, port: int) -> bool:
    """Whether the agent can connect and read the listener's greeting."""
    code, output = box.sh(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{host}/{port}; head -c 4 <&3'")
    return code == 0 and output == "host"


def test_host_ports_open_exactly_those_ports_of_the_docker_host(session_with, gateway, listeners):
    wanted, other = listeners(), listeners()
    box = session_with(NetworkConfig(host_ports=(wanted.port,)))
    assert reach(box, gateway, wanted.port)
    assert not reach(box, gateway, other.port)
    assert other.connections == 0


def test_a_host_address_with_a_port_in_allowed_cidrs_opens_exactly_that(session_with, gateway, listeners):
    wanted, other = listeners(), listeners()
    box = session_with(NetworkConfig(allowed_cidrs=(f"{gateway}/32:{wanted.port}",)))
    assert reach(box, gateway, wanted.port)
    assert not reach(box, gateway, other.port)


def test_the_model_endpoint_by_address_opens_its_port_only(session_with, gateway, listeners):
    endpoint, other = listeners(), listeners()
    box = session_with(NetworkConfig(model_endpoint=ModelEndpoint(gateway, endpoint.port, "test")))
    assert reach(box, gateway, endpoint.port)
    assert not reach(box, gateway, other.port)


def test_the_model_endpoint_by_name_on_the_docker_host(session_with, gateway, listeners, dns):
    """A gateway name resolving to the host works with rebinding refusal on; it opens its port only,
    and other allowed names pointing at the host stay refused."""
    endpoint, other = listeners(), listeners()
    dns.set("llm-gateway.test", gateway)
    dns.set("other.test", gateway)
    box = session_with(
        NetworkConfig(
            allowed_domains=("other.test",),
            model_endpoint=ModelEndpoint("llm-gateway.test", endpoint.port, "test"),
        )
    )
    assert reach(box, "llm-gateway.test", endpoint.port)
    assert not reach(box, "llm-gateway.test", other.port)
    assert not box.resolves("other.test")  # the rebinding refusal still holds for every other name
    assert not reach(box, gateway, other.port)
