"""`up --detach` needs a task: a detached Claude Code without one would start and end at once."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from claude_docker.cli import main


@pytest.mark.parametrize("args", [["up", "--detach"], ["up", "-d", "--", "--model", "opus"]])
def test_detach_without_a_task_is_refused_with_what_to_do(tmp_path, monkeypatch, cd_home, args):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "up --detach needs a task" in result.output
    assert 'claude-docker up --detach -- -p "your task"' in result.output
