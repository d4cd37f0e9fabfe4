"""The image build context, its content-hash tag, and a real build."""

from __future__ import annotations

import dataclasses

import pytest

from claude_docker import contract
from claude_docker.config.model import ImageConfig
from claude_docker.engine import Engine
from claude_docker.errors import EngineError
from claude_docker.features.image import ensure_image
from tests.conftest import standard_image_config

TEST_IMAGE = standard_image_config()


def test_build_then_no_rebuild_and_labels():
    engine = Engine.connect()
    lines: list[str] = []
    first = ensure_image(engine, TEST_IMAGE, on_output=lines.append)
    second = ensure_image(engine, TEST_IMAGE, on_output=lines.append)
    assert second.built is False and second.tag == first.tag
    labels = engine.image_labels(first.tag)
    assert labels[contract.LABEL_CLAUDE_CODE_VERSION] == first.claude_code_version
    assert first.claude_code_version[0].isdigit(), first.claude_code_version
    assert labels[contract.LABEL_CONTEXT_HASH] == first.tag.split(":", 1)[1]
    # what the image must hold
    script = "command -v bash claude iptables ipset dnsmasq ip setpriv ps git curl update-ca-certificates; ! command -v sudo; id dnsmasq"
    output = engine.client.containers.run(first.tag, entrypoint=["bash", "-c", script], remove=True, network_disabled=True)
    assert b"/claude" in output and b"setpriv" in output and b"dnsmasq" in output
    # ... and what it need not: Claude Code is a native binary, Node a build tool of its stage
    leftovers = "command -v node npm; ls /usr/local/lib/node_modules 2>/dev/null; true"
    assert engine.client.containers.run(first.tag, entrypoint=["bash", "-c", leftovers], remove=True, network_disabled=True) == b""


def test_failed_build_is_an_engine_error_with_the_last_lines():
    engine = Engine.connect()
    broken = dataclasses.replace(TEST_IMAGE, apt_packages=("no-such-package-claude-docker-test",))
    with pytest.raises(EngineError) as failure:
        ensure_image(engine, broken)
    assert "image build failed" in failure.value.message
    assert "no-such-package-claude-docker-test" in failure.value.message
    assert "--verbose" in failure.value.hint


def test_project_packages_are_installed():
    engine = Engine.connect()
    with_jq = dataclasses.replace(TEST_IMAGE, apt_packages=("jq",))
    result = ensure_image(engine, with_jq)
    output = engine.client.containers.run(result.tag, entrypoint=["jq", "-n", "1+1"], remove=True, network_disabled=True)
    assert output.strip() == b"2"


def test_missing_base_image_is_named_in_the_error():
    engine = Engine.connect()
    with pytest.raises(EngineError) as failure:
        ensure_image(engine, ImageConfig(base="claude-docker-test/no-such-base:1"))
    assert "image.base claude-docker-test/no-such-base:1 is not present locally and could not be pulled" in failure.value.message
    assert "docker pull" in failure.value.hint
