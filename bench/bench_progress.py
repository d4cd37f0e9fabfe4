"""What the progress hooks (`logs --follow`) cost a task: the hook alone, and a whole task.

1. The hook alone, in the product image as the agent: 200 calls with a typical PreToolUse event,
   against 200 calls of a hook that only reads its input (`bash -c "cat >/dev/null"`, about the least a hook
   costs). The difference is what each tool call waits longer.
2. A whole headless task, the real Claude Code binary against the scripted Messages API stand-in:
   TOOL_CALLS Bash tool calls, then an answer; from `up` to its end, with the progress hooks
   and with them left out of settings.json (alternating, median of --runs).

    python3 bench/bench_progress.py [--runs 5] [--markdown]

Needs the engine and the test base image.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from claude_docker import lifecycle  # noqa: E402
from claude_docker.config.model import Config, ImageConfig, NetworkConfig, PersistenceConfig, WorkspaceConfig  # noqa: E402
from claude_docker.engine import Engine  # noqa: E402
from claude_docker.features import claude_settings  # noqa: E402
from tests.fakes.anthropic import FakeAnthropic, bash, text  # noqa: E402
from tests.fakes.projects import bridge_gateway  # noqa: E402

BASE_IMAGE = os.environ.get("CLAUDE_DOCKER_TEST_BASE", "claude-docker-test/debian:bookworm")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TOOL_CALLS = 10
HOOK_CALLS = 200
EVENT = json.dumps({
    "session_id": "0f7b205e-ac0d-4bea-ae0f-81d1b9c45912",
    "transcript_path": "/home/agent/.claude/projects/-workspace/0f7b205e-ac0d-4bea-ae0f-81d1b9c45912.jsonl",
    "cwd": "/workspace", "permission_mode": "bypassPermissions", "hook_event_name": "PreToolUse",
    "tool_name": "Bash", "tool_input": {"command": "npm test -- --watch=false", "description": "Run the tests"},
    "tool_use_id": "toolu_7b9eefa17202266646f906c4",
})
LOOP = f"""
event={json.dumps(EVENT)}
start=$EPOCHREALTIME
for i in $(seq {HOOK_CALLS}); do printf '%s' "$event" | "$@"; done
end=$EPOCHREALTIME
echo "$start $end"
"""


def config(workspace: Path) -> Config:
    return Config(
        source_files=(),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace)),
        image=ImageConfig(base=BASE_IMAGE, extra_ca_certificates=(CA_BUNDLE,)),
        network=NetworkConfig(firewall=False),
        persistence=PersistenceConfig(git_config=False, shell_history=False, npm_cache=False, pip_cache=False),
    )


def run(cfg: Config, command: list[str] | None, extra_args: tuple[str, ...], environ: dict[str, str]) -> tuple[int, bytes, float]:
    out = io.BytesIO()
    began = time.monotonic()
    code = lifecycle.up(
        cfg, lifecycle.UpOptions(extra_args=extra_args, headless=True, command=command),
        echo=lambda line: None, stdout=out, stderr=io.BytesIO(), environ=environ,
    )
    return code, out.getvalue(), time.monotonic() - began


def hook_alone(cfg: Config) -> tuple[float, float]:
    """Milliseconds per call: the progress hook, and a hook that only drains its input."""
    results = []
    for hook in (["/opt/claude-docker/bin/hook-progress"], ["bash", "-c", "cat >/dev/null"]):
        code, out, _ = run(cfg, ["--exec", "bash", "-c", LOOP, "loop", *hook], (), dict(os.environ))
        assert code == 0, out
        start, end = (float(x) for x in out.split())
        results.append((end - start) * 1000 / HOOK_CALLS)
    return results[0], results[1]


def whole_task(cfg: Config, gateway: str, with_hooks: bool) -> float:
    script = [bash(f"echo step {n}") for n in range(TOOL_CALLS)] + [text("all steps done")]
    with FakeAnthropic(script) as api:
        environ = {**os.environ, "ANTHROPIC_BASE_URL": api.url_for(gateway), "ANTHROPIC_API_KEY": api.api_key}
        hooks = claude_settings.progress_hooks if with_hooks else (lambda: {})
        with mock.patch.object(claude_settings, "progress_hooks", hooks):
            code, out, elapsed = run(cfg, None, ("-p", "run the steps"), environ)
    assert code == 0 and b"all steps done" in out, out
    assert len(api.tool_results()) == TOOL_CALLS
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-progress-"))
    os.environ["CLAUDE_DOCKER_HOME"] = str(home / "cd-home")
    workspace = home / "ws"
    workspace.mkdir()
    if os.getuid() == 0:
        os.chown(workspace, 1000, 1000)
    cfg = config(workspace)
    gateway = bridge_gateway(docker.from_env())
    lifecycle.prepare_image(Engine.connect(), cfg)

    progress_ms, drain_ms = hook_alone(cfg)
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.runs):
        for with_hooks in (False, True):
            timings[with_hooks].append(whole_task(cfg, gateway, with_hooks))
    without, with_ = statistics.median(timings[False]), statistics.median(timings[True])
    rows = [
        ("hook alone, per call", f"{progress_ms:.1f} ms", f"{drain_ms:.1f} ms (a bash hook that only reads its input)"),
        (f"task with {TOOL_CALLS} tool calls, median of {args.runs}", f"{with_:.2f} s", f"{without:.2f} s without the progress hooks"),
        ("difference", f"{with_ - without:+.2f} s", f"{(with_ - without) / without * 100:+.1f} %"),
    ]
    if args.markdown:
        print("| measured | with progress | baseline |\n|---|---|---|")
        for row in rows:
            print(f"| {' | '.join(row)} |")
    else:
        for row in rows:
            print("  ".join(row))
        print("runs with:", ", ".join(f"{t:.2f}" for t in timings[True]), "without:", ", ".join(f"{t:.2f}" for t in timings[False]))


if __name__ == "__main__":
    main()
