"""The rendered HAProxy config passes the check of the HAProxy that runs it: the one in the
product image (`haproxy -c`), whatever is or is not installed on the host."""

from __future__ import annotations

import pytest

from claude_docker.config.model import Config, NetworkConfig, ProxyConfig, WorkspaceConfig
from claude_docker.features import firewall
from claude_docker.imagebuild import ensure_image
from claude_docker.session import Session
from tests.support.testbed import TEST_LABEL, standard_image_config

NAMES = (*(f"host{i}.example.com" for i in range(100)), "*.example.org", "proxy.example.net")


def haproxy_check(engine, image: str, config: bytes, tmp_path) -> tuple[int, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "haproxy.cfg").write_bytes(config)
    container = engine.client.containers.run(
        image, entrypoint=["haproxy", "-c", "-f", "/check/haproxy.cfg"], detach=True, network_disabled=True,
        volumes={str(tmp_path): {"bind": "/check", "mode": "ro"}}, labels={TEST_LABEL: "haproxy-check"},
    )
    try:
        code = container.wait(timeout=60)["StatusCode"]
        return code, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@pytest.mark.parametrize(
    "proxy", [None, ProxyConfig(https="http://proxy.example.net:3128"), ProxyConfig(http="http://10.0.0.1:8080")],
    ids=["direct", "https-proxy", "http-proxy"],
)
def test_the_rendered_proxy_config_passes_haproxys_own_check(engine, tmp_path, proxy):
    image = ensure_image(engine, standard_image_config()).tag
    cfg = Config(
        source_files=(), project_dir=str(tmp_path), workspace=WorkspaceConfig(path=str(tmp_path)),
        network=NetworkConfig(allowed_domains=NAMES, proxy=proxy),
    )
    rendered = firewall.runtime_artifacts(cfg, Session("p", "s"))["haproxy.cfg"].content
    code, output = haproxy_check(engine, image, rendered, tmp_path / "ok")
    assert code == 0, output


def test_the_check_fails_a_broken_config(engine, tmp_path):
    """The control: the same check refuses what HAProxy cannot run."""
    image = ensure_image(engine, standard_image_config()).tag
    code, output = haproxy_check(engine, image, b"frontend f\n    bind :80\n    use_backend nowhere\n", tmp_path / "broken")
    assert code != 0 and "nowhere" in output, output
