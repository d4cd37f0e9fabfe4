"""Build output: whole lines, steps with their elapsed time, the full log in a file named on
failure, and a TLS hint where the network (not the `image:` section) is the problem."""

from __future__ import annotations

import pytest

from claude_docker.artifacts import Artifact
from claude_docker.commands.lifecycle_cmds import BuildProgress
from claude_docker.engine import Engine, build_failure_hint
from claude_docker.errors import EngineError


class FakeApi:
    def __init__(self, chunks):
        self.chunks = chunks

    def build(self, **kwargs):
        return iter(self.chunks)


class FakeClient:
    def __init__(self, chunks):
        self.api = FakeApi(chunks)


def build(chunks) -> tuple[list[str], str]:
    lines: list[str] = []
    image = Engine(FakeClient(chunks)).build({"Dockerfile": Artifact(b"FROM x\n")}, on_output=lines.append)
    return lines, image


def test_output_cut_inside_a_line_arrives_as_whole_lines():
    lines, image = build([
        {"stream": "Step 1/2 : RUN npm install\n"},
        {"stream": "npm ERR! code "}, {"stream": "SELF_SIGNED"}, {"stream": "_CERT_IN_CHAIN\nnpm ERR! "},
        {"stream": "errno 1\n"}, {"status": "Pulling fs layer"},
        {"stream": "no newline at the end"}, {"aux": {"ID": "sha256:abc"}},
    ])
    assert lines == [
        "Step 1/2 : RUN npm install", "npm ERR! code SELF_SIGNED_CERT_IN_CHAIN", "npm ERR! errno 1",
        "Pulling fs layer", "no newline at the end",
    ]
    assert image == "sha256:abc"


def test_a_tls_failure_points_at_the_ca_files_and_the_proxy():
    with pytest.raises(EngineError) as failure:
        build([
            {"stream": "Step 3/9 : RUN npm install -g @anthropic-ai/claude-code\n"},
            {"stream": "npm error code SELF_SIGNED_CERT_IN_CHAIN\n"},
            {"error": "The command '/bin/sh -eu -c npm install' returned a non-zero code: 1"},
        ])
    assert "npm error code SELF_SIGNED_CERT_IN_CHAIN" in failure.value.message
    assert failure.value.hint == (
        "a TLS certificate was not trusted during the build (a TLS-inspecting proxy?): list its CA file in "
        "image.extra_ca_certificates, and set network.proxy if only a proxy reaches the internet"
    )
    assert "image.extra_ca_certificates" in build_failure_hint("pip: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert build_failure_hint("E: Unable to locate package nope").startswith("fix the `image:` section")


def test_steps_show_number_name_and_elapsed_time_and_the_log_keeps_everything(tmp_path, capsys):
    ticks = iter([0.0, 2.5, 2.5, 14.0])
    log = tmp_path / "logs" / "build.log"
    progress = BuildProgress(verbose=False, tty=False, log_path=log, clock=lambda: next(ticks))
    for line in ("Step 1/2 : FROM debian", " ---> abc", "Step 2/2 : RUN apt-get install -y jq", "Setting up jq"):
        progress(line)
    progress.finish()
    assert capsys.readouterr().err.splitlines() == [
        "building the image...", "  step 1/2: FROM debian (2.5s)", "  step 2/2: RUN apt-get install -y jq (11.5s)",
    ]
    assert log.read_text() == "Step 1/2 : FROM debian\n ---> abc\nStep 2/2 : RUN apt-get install -y jq\nSetting up jq\n"
    failed = progress.failed(EngineError("image build failed: boom", "fix the `image:` section"))
    assert failed.hint == f"fix the `image:` section; the full build log is in {log}"
