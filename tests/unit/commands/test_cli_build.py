"""Build output: whole lines, steps with their elapsed time, the full log in a file named on
failure, and a TLS hint where the network (not the `image:` section) is the problem."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from claude_docker import contract
from claude_docker.artifacts import Artifact
from claude_docker.commands.lifecycle_cmds import BuildProgress
from claude_docker.config.model import ImageConfig
from claude_docker.engine import Engine, build_failure_hint
from claude_docker.errors import EngineError
from claude_docker.features.image import build_context, image_tag
from claude_docker.imagebuild import ImageResult, age_warning, ensure_image, newest_claude_code
from tests.fakes.engine import FakeEngine, FakeImage
from tests.support.serve import serve_in_background


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


# --- build --pull and the image's age ---------------------------------------------------------

@pytest.fixture
def registry(monkeypatch):
    """A loopback npm registry whose `latest` dist-tag the test sets."""
    tags = {"latest": "2.1.5", "next": "2.2.0-beta"}
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            paths.append(self.path)
            body = json.dumps(tags).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    serve_in_background(server)
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield tags, paths
    server.shutdown()
    server.server_close()


def engine_with(present_version: str | None, newly_built: str = "2.1.5", image: ImageConfig | None = None) -> FakeEngine:
    """An engine holding the image's current tag (built with `present_version`), or not; a build
    puts `newly_built` into the image."""
    image = image or ImageConfig()
    images = {}
    if present_version is not None:
        labels = {contract.LABEL_CLAUDE_CODE_VERSION: present_version}
        images[image_tag(build_context(image))] = FakeImage(labels=labels, created="2026-01-01T00:00:00.000000000Z")
    return FakeEngine(images, pullable=(image.base,), claude_code_version=newly_built)


def test_newest_version_comes_from_the_registry(registry):
    tags, paths = registry
    assert newest_claude_code("latest") == "2.1.5"
    assert newest_claude_code("next") == "2.2.0-beta"
    assert newest_claude_code("stable") is None  # a tag the registry does not have
    assert paths[0] == "/-/package/@anthropic-ai/claude-code/dist-tags"


def test_build_pull_rebuilds_without_cache_when_latest_moved(registry):
    engine = engine_with("2.1.4")
    result = ensure_image(engine, ImageConfig(), pull=True)
    assert engine.builds[0]["no_cache"] is True and engine.builds[0]["pull"] is True
    assert (result.built, result.previous_version, result.claude_code_version) == (True, "2.1.4", "2.1.5")


def test_build_pull_keeps_the_cache_when_latest_is_what_the_image_has(registry):
    engine = engine_with("2.1.5")
    result = ensure_image(engine, ImageConfig(), pull=True)
    assert engine.builds[0]["no_cache"] is False  # only a newer base image changes anything
    assert result.previous_version is None


def test_a_pinned_version_is_not_looked_up(registry):
    tags, paths = registry
    pinned = ImageConfig(claude_code_version="2.0.0")
    engine = engine_with("2.0.0", "2.0.0", pinned)
    ensure_image(engine, pinned, pull=True)
    assert paths == [] and engine.builds[0]["no_cache"] is False


def test_without_pull_a_present_image_is_used_and_its_age_known():
    engine = engine_with("2.1.4")
    result = ensure_image(engine, ImageConfig())
    assert engine.builds == [] and result.created == "2026-01-01T00:00:00.000000000Z"


def test_up_says_when_the_image_is_old():
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    old = ImageResult("claude-docker:x", False, "2.1.4", created="2026-01-01T00:00:00.000000000Z")
    assert age_warning(old, 30, now) == (
        "the image was built 59 days ago (Claude Code 2.1.4); `claude-docker build --pull` brings a newer "
        "Claude Code (image.max_age_days sets when this is said)"
    )
    assert age_warning(old, 60, now) is None
    assert age_warning(old, 0, now) is None  # 0: never
    assert age_warning(ImageResult("claude-docker:x", True, "2.1.5"), 30, now) is None
