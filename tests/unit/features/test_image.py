"""The image build context, its content-hash tag, and a real build."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

import pytest

from claude_docker import contract
from claude_docker.artifacts import shell_words
from claude_docker.config.model import Config, ImageConfig, NetworkConfig, ProxyConfig, WorkspaceConfig
from claude_docker.errors import ClaudeDockerError
from claude_docker.features.image import build_context, image_tag, proxy_build_args
from claude_docker.render import render_build_context
from tests.support.testbed import HOST_CA_BUNDLE, TEST_BASE_IMAGE, standard_image_config

TEST_IMAGE = standard_image_config()


def dockerfile(image: ImageConfig) -> str:
    return build_context(image)["Dockerfile"].content.decode()


def test_context_holds_dockerfile_entrypoint_ca_and_bin_scripts():
    context = build_context(TEST_IMAGE)
    assert "Dockerfile" in context
    assert context["entrypoint.sh"].mode == 0o755
    ca = [name for name in context if name.startswith("ca/")]
    assert len(ca) == 1 and ca[0].endswith(".crt")
    with open(HOST_CA_BUNDLE, "rb") as bundle:
        assert context[ca[0]].content == bundle.read()
    assert "NODE_EXTRA_CA_CERTS" in dockerfile(TEST_IMAGE)
    assert "update-ca-certificates" in dockerfile(TEST_IMAGE)


def test_bin_scripts_keep_their_exec_bit():
    from claude_docker.resources import container_dir

    bin_dir = container_dir() / "bin"
    scripts = [p for p in bin_dir.rglob("*") if p.is_file()] if bin_dir.is_dir() else []
    if not scripts:
        pytest.skip("no scripts under container/bin")
    context = build_context(TEST_IMAGE)
    for path in scripts:
        name = ("bin/" + path.relative_to(bin_dir).as_posix()).removesuffix(".j2")
        executable = bool(path.stat().st_mode & 0o111)
        assert bool(context[name].mode & 0o111) == executable, name


def rendered_scripts() -> dict[str, bytes]:
    """The entrypoint and every helper the image holds, as rendered (templates and static files)."""
    return {
        name: artifact.content
        for name, artifact in build_context(TEST_IMAGE).items()
        if name == "entrypoint.sh" or name.startswith("bin/")
    }


def test_the_entrypoint_and_helpers_are_rendered_with_the_contract():
    scripts = rendered_scripts()
    assert {"entrypoint.sh", "bin/hook-event", "bin/check-endpoint", "bin/notify"} <= set(scripts)
    for name, content in scripts.items():
        assert not any(marker in content for marker in (b"{{", b"{%", b"{#")), f"{name}: template syntax left over"
    entrypoint = scripts["entrypoint.sh"].decode()
    assert shell_words(contract.drop_privileges("$AGENT_UID", "$AGENT_GID")) in entrypoint
    assert shell_words(contract.AGENT_ONLY_VARIABLES) in entrypoint
    assert f"EXIT_FIREWALL_FAILED={contract.EXIT_FIREWALL_FAILED}" in entrypoint
    assert shell_words(contract.drop_privileges("$AGENT_UID", "$AGENT_GID")) in scripts["bin/check-endpoint"].decode()
    assert " | ".join(contract.EVENT_KINDS) + ")" in scripts["bin/hook-event"].decode()


def test_the_shell_words_filter_quotes_all_but_a_variable():
    assert shell_words(["setpriv", "--reuid", "$AGENT_UID", "a b", "$(id)", "$X;y"]) == (
        "setpriv --reuid \"$AGENT_UID\" 'a b' '$(id)' '$X;y'"
    )


@pytest.mark.parametrize("name", sorted(rendered_scripts()))
def test_rendered_scripts_pass_the_shell_and_shellcheck(tmp_path, name):
    content = rendered_scripts()[name]
    script = tmp_path / name.replace("/", "_")
    script.write_bytes(content)
    shell = "sh" if content.startswith(b"#!/bin/sh") else "bash"
    syntax = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    assert shutil.which("shellcheck"), "shellcheck is missing (scripts/test-env.sh installs it)"
    lint = subprocess.run(["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_tag_is_stable_and_follows_the_image_section_only(tmp_path):
    workspace = WorkspaceConfig(path=str(tmp_path))
    base = Config(source_files=(), project_dir=str(tmp_path), workspace=workspace, image=TEST_IMAGE)
    wider = dataclasses.replace(base, network=NetworkConfig(allowed_domains=("example.com",), allowed_cidrs=("10.0.0.0/8",)))
    assert image_tag(render_build_context(base)) == image_tag(render_build_context(wider))
    assert image_tag(build_context(TEST_IMAGE)).startswith("claude-docker:")

    with_git = dataclasses.replace(TEST_IMAGE, apt_packages=("jq",))
    assert image_tag(build_context(with_git)) != image_tag(build_context(TEST_IMAGE))


def test_ca_bytes_change_the_tag(tmp_path):
    pem = tmp_path / "proxy.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    first = image_tag(build_context(ImageConfig(base=TEST_BASE_IMAGE, extra_ca_certificates=(str(pem),))))
    pem.write_text("-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n")
    second = image_tag(build_context(ImageConfig(base=TEST_BASE_IMAGE, extra_ca_certificates=(str(pem),))))
    assert first != second


def test_unreadable_or_non_pem_ca_is_a_clear_error(tmp_path):
    with pytest.raises(ClaudeDockerError) as missing:
        build_context(ImageConfig(extra_ca_certificates=(str(tmp_path / "nope.pem"),)))
    assert "image.extra_ca_certificates" in missing.value.message and "nope.pem" in missing.value.message
    assert missing.value.hint
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")
    with pytest.raises(ClaudeDockerError, match="no PEM certificate"):
        build_context(ImageConfig(extra_ca_certificates=(str(junk),)))


def test_hostile_package_names_are_quoted():
    hostile = ImageConfig(apt_packages=("jq; rm -rf /",), npm_packages=("$(curl evil)",), pip_packages=("a`id`",), claude_code_version="1.0.0 && id")
    text = dockerfile(hostile)
    assert "'jq; rm -rf /'" in text
    assert "'$(curl evil)'" in text
    assert "'a`id`'" in text
    assert "'@anthropic-ai/claude-code@1.0.0 && id'" in text


def test_optional_layers_only_when_asked():
    plain = dockerfile(ImageConfig())
    assert "pip3 install" not in plain and "claude-docker/\n" not in plain
    assert "NODE_EXTRA_CA_CERTS" not in plain
    rich = dockerfile(ImageConfig(apt_packages=("jq",), npm_packages=("typescript",), pip_packages=("ruff",)))
    assert "--no-install-recommends jq " in rich
    assert "--loglevel=error typescript " in rich
    assert "--break-system-packages ruff " in rich


def test_heavy_common_layers_come_before_per_config_ones():
    text = dockerfile(ImageConfig(apt_packages=("jq",), npm_packages=("typescript",)))
    # Claude Code comes from a stage of its own that no project package can invalidate ...
    builder, final = text.split("\nFROM ", 2)[1:]
    assert "@anthropic-ai/claude-code" in builder and "jq" not in builder and "typescript" not in builder
    # ... and the final image takes the shared layers first, the project's packages last.
    assert final.index("iptables") < final.index("COPY --from=claude-code") < final.index("recommends jq ") < final.index("error typescript ")
    # never strip the native binary Claude Code installs through optional dependencies
    assert "--omit=optional" not in text and "--ignore-scripts" not in text


def test_node_is_in_the_final_image_only_when_asked_for():
    """Claude Code is a native binary: Node and npm are build tools unless the config needs them."""
    assert "nodejs npm" not in dockerfile(ImageConfig()).split("\nFROM ")[2]
    for asked in (ImageConfig(node=True), ImageConfig(npm_packages=("typescript",))):
        assert "nodejs npm" in dockerfile(asked).split("\nFROM ")[2]


def test_proxy_goes_to_predefined_build_args_not_the_context():
    proxy = ProxyConfig(http="http://proxy:3128", https="http://proxy:3128", no_proxy=("localhost", ".corp"))
    args = proxy_build_args(proxy)
    assert args["HTTPS_PROXY"] == "http://proxy:3128" and args["no_proxy"] == "localhost,.corp"
    assert proxy_build_args(None) == {}
    assert "proxy:3128" not in dockerfile(TEST_IMAGE)
