"""A hostile agent against what the host trusts in the workspace: the project's own config
files and the repository's git metadata. Real engine, real image, the product's run plan and
entrypoint; the agent's commands run as the agent (the entrypoint's `--exec`).

Each attack is something the agent can write inside the container that the host would later
read or execute outside it: the next `claude-docker up` reads claude-docker.yaml (firewall,
mounts, notifier commands that run on the host), and the user's `git` reads `.git`.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from claude_docker import runplan
from claude_docker.config.pipeline import load_config
from claude_docker.engine import Engine
from claude_docker.imagebuild import ensure_image
from claude_docker.session import Session
from tests.fakes.projects import run_cli
from tests.support.testbed import TEST_LABEL, base_image_yaml
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker

AGENT_UID = 1000  # the agent takes the workspace owner's uid when `up` runs as root


@pytest.fixture(scope="module")
def engine(docker_client) -> Engine:
    return Engine.connect()


def hand_to_agent(path: Path) -> None:
    """The agent runs as the host user (uid 1000 when the tests run as root): it owns the files,
    as it would own a user's checkout."""
    if os.getuid() != 0:
        return
    for item in [path, *path.rglob("*")]:
        os.lchown(item, AGENT_UID, AGENT_UID)


def make_project(tmp_path: Path, extra_yaml: str = "") -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml() + "network:\n  firewall: false\npersistence:\n  git_config: false\n" + extra_yaml
    )
    hand_to_agent(project)
    return project


@pytest.fixture(scope="module")
def agent_image(engine, tmp_path_factory) -> str:
    project = make_project(tmp_path_factory.mktemp("image"))
    return ensure_image(engine, load_config(str(project / "claude-docker.yaml")).config.image).tag


def run_as_agent(engine: Engine, image: str, project: Path, script: str) -> str:
    """One session of `project`, planned exactly as `up` plans it, running `script` as the agent."""
    cfg = load_config(str(project / "claude-docker.yaml")).config
    plan = runplan.plan(cfg, Session.new(cfg.project_name), image, command=["--exec", "bash", "-c", script], environ={})
    plan = dataclasses.replace(plan, labels={**plan.labels, TEST_LABEL: "security"})
    container = engine.create(plan)
    try:
        engine.start(container)
        code = engine.wait(container)
        output = b"".join(engine.logs(container)).decode(errors="replace")
    finally:
        engine.remove(container)
    assert code == 0, output
    return output


# --- the config the next `up` trusts ------------------------------------------------------------


def test_agent_cannot_rewrite_the_config_files_the_next_up_reads(engine, agent_image, cd_home, tmp_path):
    """claude-docker.yaml and a profile it extends live in the workspace by default. An agent
    that could edit them would turn off the firewall, mount more of the host, or add a
    `notifier.commands` entry that the next `up` runs on the host. (An env file there is refused:
    see test_security_trust.)"""
    project = make_project(tmp_path, "extends: [./team.yaml]\n")
    (project / "team.yaml").write_text("network:\n  allowed_domains: [example.com]\n")
    hand_to_agent(project)
    files = ["claude-docker.yaml", "team.yaml"]
    before = {name: (project / name).read_bytes() for name in files}
    attack = "notifier:\\n  commands: [[sh, -c, \\\"touch /tmp/pwned\\\"]]\\n"
    script = "; ".join(
        f"(printf '{attack}' >> {name}) 2>/dev/null && echo WROTE-{name}; "
        f"(mv {name} {name}.away && printf '{attack}' > {name}) 2>/dev/null && echo REPLACED-{name}; "
        f"(rm -f {name} && test ! -e {name}) 2>/dev/null && echo REMOVED-{name}"
        for name in files
    ) + "; echo done"
    output = run_as_agent(engine, agent_image, project, script)
    assert "done" in output
    for word in ("WROTE", "REPLACED", "REMOVED"):
        assert word not in output, output
    assert {name: (project / name).read_bytes() for name in files} == before
    assert "commands" not in load_config(str(project / "claude-docker.yaml")).merged.get("notifier", {})


def test_config_files_outside_the_workspace_are_not_mounted(engine, agent_image, cd_home, tmp_path):
    """Protecting the config must not bring a file from outside the workspace into the container."""
    project = make_project(tmp_path, "workspace:\n  path: ./ws\n")
    (project / "ws").mkdir()
    hand_to_agent(project)
    output = run_as_agent(engine, agent_image, project, "ls -a /workspace; cat /workspace/claude-docker.yaml 2>&1; echo done")
    assert "done" in output
    assert "base:" not in output  # the config (outside ./ws) stays on the host


# --- git metadata the host's git reads ------------------------------------------------------------


def git(project: Path, *args: str) -> subprocess.CompletedProcess:
    """The user's git on the host. The tests run as root and the repo belongs to the agent's uid,
    which git would refuse as dubious ownership; the user owns their repo, so trust it here."""
    return subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(project), *args], capture_output=True, text=True, timeout=60
    )


def make_repo(tmp_path: Path) -> Path:
    project = make_project(tmp_path)
    assert git(project, "init", "-q").returncode == 0
    git(project, "-c", "user.name=u", "-c", "user.email=u@example.com", "commit", "-q", "--allow-empty", "-m", "start")
    hand_to_agent(project)
    return project


def test_a_planted_commondir_never_redirects_the_hosts_git(engine, agent_image, cd_home, tmp_path):
    """`.git/commondir` makes git read its config (and hooks) from another directory: a config
    with `core.fsmonitor` there runs a command at the user's next `git status` on the host.
    A main repository never has this file; the host disables it before git sees it."""
    project = make_repo(tmp_path)
    marker = tmp_path / "host-command-ran"
    evil_config = f'[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = "touch {marker}; false"\\n'
    script = (
        "mkdir -p .evil && cp -r .git/objects .git/refs .evil/ "
        f"&& printf '{evil_config}' > .evil/config && echo ../.evil > .git/commondir && echo PLANTED"
    )
    output = run_as_agent(engine, agent_image, project, script)
    assert "PLANTED" in output  # the agent can write it: the defence is on the host
    result = run_cli("up", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ".git/commondir" in result.stderr  # said out loud
    git(project, "status")
    assert not marker.exists(), "the host's git ran a command the agent planted"
    assert not (project / ".git" / "commondir").exists()


def test_commondir_planted_during_a_session_is_disabled_when_it_ends(engine, agent_image, cd_home, tmp_path):
    project = make_repo(tmp_path)
    marker = tmp_path / "host-command-ran"
    evil_config = f'[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = "touch {marker}; false"\\n'
    script = (
        "mkdir -p .evil && cp -r .git/objects .git/refs .evil/ "
        f"&& printf '{evil_config}' > .evil/config && echo ../.evil > .git/commondir && echo PLANTED"
    )
    result = run_cli("up", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "bash", "-c", script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PLANTED" in result.stdout
    assert ".git/commondir" in result.stderr
    git(project, "status")
    assert not marker.exists(), "the host's git ran a command the agent planted"
    assert git(project, "log", "--format=%s").stdout.split() == ["start"]  # the repository still works


# --- the persisted login dir the host rewrites before each start -----------------------------------


@pytest.mark.parametrize("name", [".claude.json", "settings.json"])
def test_a_planted_deeply_nested_state_file_gives_a_plain_error_not_a_traceback(engine, agent_image, cd_home, tmp_path, name):
    """The host merges its keys into these agent-writable files before every `up`: a planted one
    is set aside (kept for inspection) and the session starts from a fresh file, without a traceback."""
    project = make_project(tmp_path)
    run_as_agent(engine, agent_image, project, f"printf '%*s' 200000 '' | tr ' ' '[' > $CLAUDE_CONFIG_DIR/{name}")
    result = run_cli("up", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "true")
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name} is not valid JSON" in result.stderr and "kept the damaged copy" in result.stderr


def test_a_config_planted_in_a_subdirectory_is_not_picked_up_by_the_host(engine, agent_image, cd_home, tmp_path):
    """Commands look for claude-docker.yaml from the current directory upwards. A file the agent
    planted in a subdirectory would win for a user working there, and `notify test` would run its
    notifier command on the host (`up` would also take its firewall and mounts)."""
    project = make_project(tmp_path)
    marker = tmp_path / "host-command-ran"
    planted = (
        "mkdir -p src && cp claude-docker.yaml src/ && "
        f"printf 'notifier:\\n  commands: [[touch, {marker}]]\\n' >> src/claude-docker.yaml && echo PLANTED"
    )
    assert "PLANTED" in run_as_agent(engine, agent_image, project, planted)
    result = run_cli("notify", "test", cwd=str(project / "src"))
    assert not marker.exists(), "the host ran a notifier command the agent planted"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(project / "claude-docker.yaml") in result.stderr
    # naming the file is how a nested config is used on purpose
    assert run_cli("validate", "-f", str(project / "src" / "claude-docker.yaml")).returncode == 0


def test_a_huge_planted_state_file_is_refused_without_reading_it(engine, agent_image, cd_home, tmp_path):
    """A 4 GiB `.claude.json` (sparse: it costs the agent nothing) must not be read into the
    host's memory; `up` runs here under a 1.5 GB address-space limit."""
    project = make_project(tmp_path)
    run_as_agent(engine, agent_image, project, "truncate -s 4G $CLAUDE_CONFIG_DIR/.claude.json")
    result = subprocess.run(
        ["prlimit", "--as=1500000000", "claude-docker", "up", "--trust", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "true"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0, result.stdout + result.stderr  # set aside unread, started afresh
    assert ".claude.json is too large" in result.stderr and "kept the damaged copy" in result.stderr


def test_a_linked_worktree_outside_the_workspace_cannot_be_redirected(engine, agent_image, cd_home, tmp_path):
    """A linked worktree's `.git` file points into `.git/worktrees/<name>/`, whose `commondir`
    says where config and hooks live. Rewritten by the agent, git run by the user in that other
    checkout (outside the workspace) would read a config the agent wrote."""
    project = make_repo(tmp_path)
    worktree = tmp_path / "linked"
    assert git(project, "worktree", "add", "-q", str(worktree)).returncode == 0
    hand_to_agent(project)
    marker = tmp_path / "host-command-ran"
    evil_config = f'[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = "touch {marker}; false"\\n'
    script = (
        "mkdir -p .evil && cp -r .git/objects .git/refs .evil/ "
        f"&& printf '{evil_config}' > .evil/config "
        "&& (echo ../../../.evil > .git/worktrees/linked/commondir) 2>/dev/null && echo REDIRECTED; "
        "(mv .git/worktrees/linked .git/worktrees/away) 2>/dev/null && echo MOVED; "
        "(mv .git/worktrees .git/worktrees-away) 2>/dev/null && echo MOVED; echo done"
    )
    output = run_as_agent(engine, agent_image, project, script)
    assert "done" in output
    git(worktree, "status")
    assert not marker.exists(), "the host's git ran a command the agent planted"
    assert "REDIRECTED" not in output and "MOVED" not in output


def test_renaming_the_directory_of_a_protected_file_does_not_unprotect_it(engine, agent_image, cd_home, tmp_path):
    """A read-only file mounted over itself cannot be renamed, but its directory could be moved
    aside and rebuilt; the host would then read the agent's file in its place."""
    project = make_project(tmp_path, "extends: [./profiles/team.yaml]\n")
    (project / "profiles").mkdir()
    (project / "profiles" / "team.yaml").write_text("network:\n  allowed_domains: [example.com]\n")
    hand_to_agent(project)
    before = (project / "profiles" / "team.yaml").read_bytes()
    script = (
        "(mv profiles profiles.away && mkdir profiles "
        "&& printf 'notifier:\\n  commands: [[touch, /tmp/x]]\\n' > profiles/team.yaml) 2>/dev/null && echo REBUILT; echo done"
    )
    output = run_as_agent(engine, agent_image, project, script)
    assert "done" in output
    assert "REBUILT" not in output
    assert (project / "profiles" / "team.yaml").read_bytes() == before


# --- blocked paths inside the workspace ------------------------------------------------------------


def test_a_masked_path_cannot_be_moved_out_from_under_its_mask(engine, agent_image, cd_home, tmp_path):
    """A blocked path inside the workspace (e.g. ~/.config/gcloud with `workspace.path: ~`) is
    hidden by a mask. Moving its parent aside in one session would take it out of the blocked
    list's reach, and the next session would show it unmasked under the new name."""
    project = tmp_path / "project"
    secret_dir = project / "nest" / "secret"
    project.mkdir()
    (project / "claude-docker.yaml").write_text(
        base_image_yaml()
        + "network:\n  firewall: false\npersistence:\n  git_config: false\n"
        + f"filesystem:\n  blocked_paths: [{secret_dir}]\n"
    )
    secret_dir.mkdir(parents=True)
    (secret_dir / "key").write_text("TOP-SECRET-KEY\n")
    hand_to_agent(project)
    first = run_as_agent(engine, agent_image, project, "(mv nest nest.away) 2>/dev/null && echo MOVED; cat nest/secret/key; echo done")
    assert "done" in first and "TOP-SECRET-KEY" not in first
    second = run_as_agent(engine, agent_image, project, "cat nest.away/secret/key nest/secret/key 2>&1; echo done")
    assert "TOP-SECRET-KEY" not in second, "a blocked path was read after its parent was moved"
    assert "MOVED" not in first
    assert (secret_dir / "key").exists()


def test_per_worktree_config_is_as_read_only_as_the_main_config(engine, agent_image, cd_home, tmp_path):
    """`git sparse-checkout init` turns on extensions.worktreeConfig and writes
    `.git/config.worktree`, which git then reads like `.git/config`: a `core.fsmonitor` planted
    there would run at the user's next `git status` on the host."""
    project = make_repo(tmp_path)
    assert git(project, "sparse-checkout", "init", "--cone").returncode == 0
    assert (project / ".git" / "config.worktree").exists()
    hand_to_agent(project)
    marker = tmp_path / "host-command-ran"
    script = f"(printf '[core]\\n\\tfsmonitor = \"touch {marker}; false\"\\n' >> .git/config.worktree) 2>/dev/null && echo PLANTED; echo done"
    output = run_as_agent(engine, agent_image, project, script)
    assert "done" in output
    git(project, "status")
    assert not marker.exists(), "the host's git ran a command the agent planted"
    assert "PLANTED" not in output


# --- repositories the agent nests inside the workspace ---------------------------------------------


def plant_nested_repositories(marker: Path) -> str:
    """A script for the agent: a nested repository with a gitlink in the top-level index, its own
    fsmonitor, clean filter and pre-commit hook; and a second one behind a gitfile whose git dir
    includes a config file the agent wrote. Each command touches `marker-<what>` on the host."""
    hook = f"#!/bin/sh\\ntouch {marker}-hook\\n"
    return (
        "git init -q sub && cd sub "
        "&& git -c user.name=a -c user.email=a@example.com commit -q --allow-empty -m start "
        f"&& git config core.fsmonitor 'touch {marker}-fsmonitor; false' "
        f"&& git config filter.evil.clean 'touch {marker}-filter; cat' "
        "&& echo '* filter=evil' > .gitattributes && echo data > file "
        f"&& printf '{hook}' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit "
        "&& cd .. && git add sub "
        "&& mkdir -p sub2 && cp -r sub/.git .hidden-gitdir && echo 'gitdir: ../.hidden-gitdir' > sub2/.git "
        "&& git config -f .hidden-gitdir/config --unset core.fsmonitor "
        f"&& printf '[core]\\n\\tfsmonitor = \"touch {marker}-include; false\"\\n' > evil.cfg "
        "&& git config -f .hidden-gitdir/config include.path ../evil.cfg "
        "&& echo data > sub2/file && echo PLANTED"
    )


def host_git_everywhere(project: Path) -> None:
    """What a user does next on the host: status at the top (it descends into the gitlink), and
    status, add and commit inside each nested repository."""
    git(project, "status")
    for nested in ("sub", "sub2"):
        git(project / nested, "status")
        git(project / nested, "add", "-A")
        git(project / nested, "-c", "user.name=u", "-c", "user.email=u@example.com", "commit", "-q", "-m", "host")


def test_nested_repositories_run_nothing_on_the_host_after_a_session(engine, agent_image, cd_home, tmp_path):
    project = make_repo(tmp_path)
    marker = tmp_path / "ran"
    result = run_cli("up", "-f", str(project / "claude-docker.yaml"), "--", "--exec", "bash", "-c", plant_nested_repositories(marker))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PLANTED" in result.stdout
    assert git(project, "ls-files", "-s", "sub").stdout.startswith("160000")  # a gitlink in the top index
    host_git_everywhere(project)
    ran = sorted(path.name for path in tmp_path.glob("ran-*"))
    assert ran == [], f"the host's git ran what the agent planted: {ran}"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: disarmed")]
    assert any("sub/.git/config: removed core.fsmonitor" in line for line in warnings), result.stderr
    assert any("sub/.git/config: removed filter.evil.clean" in line for line in warnings), result.stderr
    assert any("sub/.git/hooks" in line for line in warnings), result.stderr
    assert any(".hidden-gitdir/config: removed include.path" in line for line in warnings), result.stderr
    assert git(project / "sub", "log", "--format=%s").stdout.split()[-1] == "start"  # still a working repository


def test_nested_repositories_of_a_detached_session_are_disarmed_by_down(engine, agent_image, cd_home, tmp_path):
    project = make_repo(tmp_path)
    marker = tmp_path / "ran"
    config = str(project / "claude-docker.yaml")
    script = plant_nested_repositories(marker) + " && touch /workspace/DONE; sleep 120"
    started = run_cli("up", "-f", config, "--detach", "--", "--exec", "bash", "-c", script)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        assert wait_for((project / "DONE").exists, 60, interval=0.5), "the agent did not finish planting"
    finally:
        stopped = run_cli("down", "-f", config)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "sub/.git/config: removed core.fsmonitor" in stopped.stdout + stopped.stderr
    host_git_everywhere(project)
    ran = sorted(path.name for path in tmp_path.glob("ran-*"))
    assert ran == [], f"the host's git ran what the agent planted: {ran}"


def test_nested_repositories_of_a_session_that_ended_alone_are_disarmed_by_the_next_up(engine, agent_image, cd_home, tmp_path):
    project = make_repo(tmp_path)
    marker = tmp_path / "ran"
    config = str(project / "claude-docker.yaml")
    started = run_cli("up", "-f", config, "--detach", "--", "--exec", "bash", "-c", plant_nested_repositories(marker))
    assert started.returncode == 0, started.stdout + started.stderr
    # the container removes itself once the script is done
    wait_for(lambda: not engine.list({"dev.claude-docker.workspace": str(project)}), 60, interval=0.5)
    assert (project / "sub" / ".git").is_dir(), "the agent did not plant"
    following = run_cli("up", "-f", config, "--", "--exec", "true")
    assert following.returncode == 0, following.stdout + following.stderr
    assert "sub/.git/config: removed core.fsmonitor" in following.stderr
    host_git_everywhere(project)
    ran = sorted(path.name for path in tmp_path.glob("ran-*"))
    assert ran == [], f"the host's git ran what the agent planted: {ran}"


def test_info_and_alternates_of_the_top_level_repository_are_read_only(engine, agent_image, cd_home, tmp_path):
    """`.git/info/attributes` names the filters and diff drivers git runs; `objects/info/alternates`
    makes git read objects from other directories."""
    project = make_repo(tmp_path)
    script = (
        "(echo '* filter=x' >> .git/info/attributes) 2>/dev/null && echo WROTE-info; "
        "(mv .git/info .git/info.away && mkdir .git/info) 2>/dev/null && echo MOVED-info; "
        "(echo /tmp >> .git/objects/info/alternates) 2>/dev/null && echo WROTE-alternates; "
        "git -c user.name=a -c user.email=a@example.com commit -q --allow-empty -m agent && echo COMMITTED; echo done"
    )
    output = run_as_agent(engine, agent_image, project, script)
    assert "done" in output
    assert "WROTE" not in output and "MOVED" not in output, output
    assert "COMMITTED" in output  # the agent can still work with the repository
    assert (project / ".git" / "objects" / "info" / "alternates").read_text() == ""
