"""The image build context, its content-hash tag, and a real build."""

from __future__ import annotations

import dataclasses

import pytest

from claude_docker import contract
from claude_docker.config.model import ImageConfig
from claude_docker.engine import Engine
from claude_docker.errors import EngineError
from claude_docker.imagebuild import ensure_image
from tests.support.testbed import standard_image_config

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


IMAGE_LEFTOVERS = (
    "ls /var/cache/apt/*.bin /var/lib/apt/lists/*_Packages* /var/cache/apt/archives/*.deb 2>/dev/null;"
    " find /usr/share/doc/git /usr/share/doc/haproxy /usr/share/doc/dnsmasq-base -type f ! -name copyright;"
    " ls /usr/share/man/man1/git.1.gz /usr/share/locale/de/LC_MESSAGES/git.mo /etc/dpkg/dpkg.cfg.d/*claude* 2>/dev/null;"
    " test -s /usr/share/doc/git/copyright || echo 'no copyright'; true"
)


def leftovers(engine: Engine, tag: str) -> list[str]:
    """What of the image only a person reads, or only apt needs while installing."""
    output = engine.client.containers.run(tag, entrypoint=["bash", "-c", IMAGE_LEFTOVERS], remove=True, network_disabled=True)
    return output.decode().split()


def test_the_image_carries_no_apt_caches_docs_manuals_or_translations():
    """apt's package caches (78 MB with Debian's lists), documentation, manuals and translations
    of the image's own packages stay out; copyright notices stay in."""
    engine = Engine.connect()
    assert leftovers(engine, ensure_image(engine, TEST_IMAGE).tag) == []


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
    # the project's own packages come as Debian ships them, manual included
    manual = engine.client.containers.run(result.tag, entrypoint=["ls", "/usr/share/man/man1/jq.1.gz"], remove=True, network_disabled=True)
    assert manual.strip() == b"/usr/share/man/man1/jq.1.gz"


def test_missing_base_image_is_named_in_the_error():
    engine = Engine.connect()
    with pytest.raises(EngineError) as failure:
        ensure_image(engine, ImageConfig(base="claude-docker-test/no-such-base:1"))
    assert "image.base claude-docker-test/no-such-base:1 is not present locally and could not be pulled" in failure.value.message
    assert "docker pull" in failure.value.hint
