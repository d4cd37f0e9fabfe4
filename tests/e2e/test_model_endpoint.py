"""The model endpoint and host ports through the real firewall: one address and TCP port each.

The sessions here use the tests' DNS stand-in as their upstream resolver (as in
test_firewall_container), so a gateway can be reached by a test name that resolves to the
Docker host, with the product's default rebinding refusal on.
"""

from __future__ import annotations

import time

from claude_docker.config.model import NetworkConfig
from tests.fakes.anthropic import FakeAnthropic, bash, text


def test_claude_reaches_a_gateway_by_name_on_the_docker_host(session_with, gateway, dns):
    """The real Claude Code binary, ANTHROPIC_BASE_URL naming a gateway on the host, strict firewall."""
    dns.set("llm-gateway.test", gateway)
    with FakeAnthropic([bash("echo by-name > /workspace/n.txt"), text("Gateway by name works.")]) as api:
        environ = {"ANTHROPIC_BASE_URL": f"http://llm-gateway.test:{api.port}", "ANTHROPIC_API_KEY": api.api_key}
        box = session_with(NetworkConfig(), command=("-p", "write n.txt"), environ=environ, wait=False)
        status = box.container.wait(timeout=240)
        logs = box.container.logs().decode(errors="replace")
    assert status["StatusCode"] == 0, logs
    assert "Gateway by name works." in logs
    assert len(api.tool_results()) == 1


def test_an_endpoint_name_that_does_not_resolve_stops_the_session_at_once(session_with, dns):
    environ = {"ANTHROPIC_BASE_URL": "https://llm-gateway.missing.test", "ANTHROPIC_API_KEY": "sk-test"}
    started = time.monotonic()
    box = session_with(NetworkConfig(), command=("-p", "hello"), environ=environ, wait=False)
    status = box.container.wait(timeout=120)
    elapsed = time.monotonic() - started
    logs = box.container.logs().decode(errors="replace")
    assert status["StatusCode"] == 72, logs
    assert "cannot reach the model endpoint llm-gateway.missing.test:443" in logs
    assert "did not resolve" in logs and "hint:" in logs
    assert elapsed < 60, elapsed


def test_an_endpoint_name_answered_with_loopback_is_refused_in_words(session_with, dns):
    """The rebinding refusal holds for the endpoint's own name too (loopback is never pinned),
    and the session says that the answer was refused, not that the name is unknown."""
    dns.set("loop-gateway.test", "127.0.0.1")
    environ = {"ANTHROPIC_BASE_URL": "http://loop-gateway.test:4000", "ANTHROPIC_API_KEY": "sk-test"}
    box = session_with(NetworkConfig(), command=("-p", "hello"), environ=environ, wait=False)
    status = box.container.wait(timeout=120)
    logs = box.container.logs().decode(errors="replace")
    assert status["StatusCode"] == 72, logs
    assert "the firewall refused the answer for loop-gateway.test (DNS)" in logs
    assert "network.allowed_cidrs" in logs
