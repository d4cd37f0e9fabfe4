"""An interactive `claude-docker up` in a real terminal (tmux) starts straight at Claude's prompt:
no onboarding wizard, no trust dialog, no bypass-permissions warning, no API-key question.

Drives the real CLI and the real Claude Code binary against the scripted Anthropic stand-in.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid

import pytest

from claude_docker.contract import LABEL_WORKSPACE
from tests.fakes.anthropic import FakeAnthropic, text
from tests.fakes.projects import bridge_gateway, make_project
from tests.support.wait import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test-env.sh installs it)"),
]

# What each first-run obstacle shows; none of them may appear.
OBSTACLES = (
    "Choose the text style",  # onboarding wizard
    "trust the files",  # workspace trust dialog
    "Bypass Permissions mode",  # the bypass warning
    "Do you want to use this API key",  # custom API key question
    "Select login method",
)
PROMPT_READY = "bypass permissions on"  # Claude's status line under an empty, ready prompt


def capture(pane: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", pane], capture_output=True, text=True).stdout


def wait_for_screen(pane: str, predicate, timeout: float) -> str:
    """The pane's screen once `predicate` holds for it, or as it was when time ran out."""
    screens = [""]

    def shows() -> bool:
        screens.append(capture(pane))
        return predicate(screens[-1])

    wait_for(shows, timeout, interval=0.5)
    return screens[-1]


def test_interactive_up_opens_at_claudes_prompt_and_remembers_the_login(docker_client, cd_home, tmp_path):
    config = make_project(tmp_path)
    workspace = str(config.parent)
    pane = f"cd-persist-{uuid.uuid4().hex[:8]}"
    reply = "reply-from-the-scripted-stand-in"
    with FakeAnthropic([text(reply)]) as api:
        env = {
            "CLAUDE_DOCKER_HOME": str(cd_home),
            "ANTHROPIC_BASE_URL": api.url_for(bridge_gateway(docker_client)),
            "ANTHROPIC_API_KEY": api.api_key,
        }
        command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = f"cd {shlex.quote(workspace)} && env {command} claude-docker up --trust; sleep 60"  # the test wrote the config
        subprocess.run(["tmux", "new-session", "-d", "-s", pane, "-x", "160", "-y", "45", command], check=True)
        try:
            screen = wait_for_screen(
                pane, lambda s: PROMPT_READY in s or any(o in s for o in OBSTACLES), timeout=240
            )
            assert PROMPT_READY in screen, screen
            assert not [o for o in OBSTACLES if o in screen], screen
            subprocess.run(["tmux", "send-keys", "-t", pane, "-l", "say hello"], check=True)
            time.sleep(0.5)
            subprocess.run(["tmux", "send-keys", "-t", pane, "Enter"], check=True)
            screen = wait_for_screen(pane, lambda s: reply in s, timeout=60)
            assert reply in screen, screen
            subprocess.run(["tmux", "send-keys", "-t", pane, "-l", "/exit"], check=True)
            subprocess.run(["tmux", "send-keys", "-t", pane, "Enter"], check=True)
            screen = wait_for_screen(pane, lambda s: "--resume" in s, timeout=30)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", pane], capture_output=True)
            for container in docker_client.containers.list(all=True, filters={"label": f"{LABEL_WORKSPACE}={workspace}"}):
                container.remove(force=True)
    # Claude Code wrote its own state into the persisted dir: the next session starts from it.
    [state_file] = list(cd_home.glob("projects/*/claude/.claude.json"))
    assert "firstStartTime" in state_file.read_text()
    assert api.api_key not in state_file.read_text()
    assert os.stat(state_file).st_uid == 1000 or os.getuid() != 0
