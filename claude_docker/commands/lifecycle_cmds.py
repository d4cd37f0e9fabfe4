"""`build`, `up`, `down`, `ps`, `logs`, `shell`, `doctor`: the container lifecycle.

The Docker SDK and the lifecycle are imported inside each command: other commands (validate,
config...) should not pay for loading them.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

import click

from ..config.model import Config, PublishedPort
from ..config.pipeline import load_config
from ..errors import ClaudeDockerError, EngineError
from .options import file_option

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


class BuildProgress:
    """Build output as whole lines: every line with --verbose; else one line per step with its
    number, name and elapsed time (the running step shown in place on a terminal). Every line
    also goes to a log file, which a failed build names."""

    def __init__(self, verbose: bool, tty: bool | None = None, log_path: Path | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.verbose = verbose
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.started = False
        self.log_path = log_path
        self.clock = clock
        self._log: TextIO | None = None
        self._step: tuple[str, str, float] | None = None  # ("2/9", "RUN ...", started at)

    def __call__(self, line: str) -> None:
        line = _ANSI.sub("", line).rstrip()
        if not self.started:
            self.started = True
            click.echo("building the image...", err=True)
        self._write_log(line)
        if self.verbose:
            click.echo(line, err=True)
            return
        match = _STEP.match(line)
        if match:
            self._end_step()
            step, total, instruction = match.groups()
            self._step = (f"{step}/{total}", instruction, self.clock())
            if self.tty:
                click.echo(f"\r\x1b[K  step {step}/{total}: {self._fit(instruction)}", nl=False, err=True)

    def _fit(self, instruction: str) -> str:
        width = max(shutil.get_terminal_size().columns - 30, 20)
        return instruction if len(instruction) <= width else instruction[: width - 3] + "..."

    def _end_step(self) -> None:
        if self._step is None:
            return
        step, instruction, began = self._step
        self._step = None
        text = f"  step {step}: {self._fit(instruction)} ({self.clock() - began:.1f}s)"
        click.echo(("\r\x1b[K" if self.tty else "") + text, err=True)

    def _write_log(self, line: str) -> None:
        if self.log_path is None:
            return
        if self._log is None:
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._log = self.log_path.open("w", encoding="utf-8")
            except OSError:
                self.log_path = None
                return
        self._log.write(line + "\n")
        self._log.flush()

    def finish(self) -> None:
        self._end_step()
        if self._log is not None:
            self._log.close()
            self._log = None

    def failed(self, error: ClaudeDockerError) -> ClaudeDockerError:
        """The error of a failed build, naming the file that holds its whole log."""
        if not self.started or self.log_path is None or not isinstance(error, EngineError):
            return error
        hint = f"{error.hint}; the full build log is in {self.log_path}" if error.hint else f"the full build log is in {self.log_path}"
        return EngineError(error.message, hint)


def build_log_path() -> Path:
    """The newest build's whole output (each build replaces it)."""
    from .. import paths

    return paths.claude_docker_home() / "build.log"


def _load(config_file: str | None) -> Config:
    return load_config(config_file).config


trust_option = click.option(
    "--trust", "approve", is_flag=True,
    help="Approve the config files in the workspace as they are now (see `claude-docker trust`).",
)


def _load_trusted(config_file: str | None, approve: bool, run: bool = False) -> Config:
    """The config, once every file of it the agent could have written is approved. With `run`,
    also what a session of it would refuse in this environment (the checks `validate` runs)."""
    from ..features import require_runnable, trust

    loaded = load_config(config_file)
    if run:
        require_runnable(loaded)
    cfg = loaded.config
    if approve:
        pending = trust.untrusted(cfg, loaded.digests)
        for entry in pending:
            _echo_err(f"trusting {entry.display} ({'new' if entry.state == trust.NEW else 'changed'})")
        trust.record(cfg, pending)
    trust.require(cfg, loaded.digests)
    return cfg


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@file_option
@click.option("--no-cache", is_flag=True, help="Rebuild every layer (e.g. to pick up a newer `latest` Claude Code).")
@click.option("--pull", is_flag=True, help="Pull a newer base image and, for `latest`, the newest Claude Code "
              "(rebuilt when the registry names another version than the image has).")
@click.option("-v", "--verbose", is_flag=True, help="Show the full build log.")
@trust_option
def build(config_file: str | None, no_cache: bool, pull: bool, verbose: bool, approve: bool) -> None:
    """Build the image for this project's `image:` section (skipped when it is current).

    The image tag is a hash of the build context, so only a change to `image:` rebuilds;
    `up` builds on its own when needed.

    \b
    Examples:
      claude-docker build
      claude-docker build --pull            # newest base image and `latest` Claude Code
      claude-docker build -f ci.yaml -v     # full build log
    """
    from .. import lifecycle
    from ..engine import Engine

    cfg = _load_trusted(config_file, approve)
    progress = BuildProgress(verbose, log_path=build_log_path())
    try:
        result = lifecycle.prepare_image(Engine.connect(), cfg, progress, no_cache=no_cache, pull=pull)
    except ClaudeDockerError as error:
        progress.finish()
        raise progress.failed(error) from None
    finally:
        progress.finish()
    state = "built" if result.built else "current, nothing to build"
    version = result.claude_code_version
    if result.previous_version and result.previous_version != version:
        version = f"{result.previous_version} -> {version}"
    click.echo(f"{result.tag}: {state} (Claude Code {version})")


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@file_option
@click.option("-d", "--detach", is_flag=True, help="Start in the background: with a task (-p), follow it with "
              "`logs --follow`; without one, an interactive session you `attach` to. Kept after it ends (`ps`, "
              "`logs`) until `down`, or the first `up` or `down` 7 days later.")
@click.option("--keep", is_flag=True, help="Keep the container after it exits (default: removed when a foreground "
              "session ends; a detached one is kept until `down` or pruned 7 days after its end, with --keep only by `down`).")
@click.option("-v", "--verbose", is_flag=True, help="Show the full build log if the image is built.")
@click.option("--dry-run", is_flag=True, help="Show what the container would get (image, capabilities, mounts, "
              "environment names, limits); start nothing.")
@click.option("-p", "--publish", "published", multiple=True, metavar="[ADDRESS:]HOST:CONTAINER",
              help="Publish a container port on the host (127.0.0.1 unless an address is given) and let the "
              "firewall admit it; repeatable. Adds to the config's `ports:`.")
@trust_option
@click.argument("claude_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def up(
    ctx: click.Context, config_file: str | None, detach: bool, keep: bool, verbose: bool, dry_run: bool,
    published: tuple[str, ...], approve: bool, claude_args: tuple[str, ...],
) -> None:
    """Start Claude Code in a new session container (builds the image if needed).

    Arguments after `--` go to Claude Code. With -p/--print, or when stdin is not a terminal,
    the session runs headless: output is streamed and the exit code is Claude's.

    With --detach the session runs in the background. A task (-p) runs headless: `logs
    --follow` shows its progress (each tool it runs, its answers) and its output, `ps` its exit
    code once it ended. Without a task, Claude Code runs in a terminal of its own: `attach` to
    it, detach again with Ctrl-P Ctrl-Q. An ended detached session stays listed by `ps` and
    readable by `logs` until `down` removes it, or the first `up` or `down` 7 days after its end.

    \b
      claude-docker up                                  # interactive
      claude-docker up -- -p "fix the failing test"     # headless
      claude-docker up --detach -- -p "long task"       # background task: logs --follow, ps
      claude-docker up --detach                         # background interactive session: attach
      claude-docker up --trust                          # approve the config files first
      claude-docker up --dry-run                        # what the container would get
      claude-docker up -p 3000 -p 8080:80               # dev servers on the host's 127.0.0.1

    Config files in the workspace (claude-docker.yaml, profiles it extends) must be approved
    once, and again after each change: `claude-docker trust` shows them, `--trust` approves.
    """
    from .. import lifecycle

    if detach:
        # Without a task Claude Code gets a terminal of its own (for `attach`), whoever runs `up`:
        # without one it would start and end at once.
        headless = lifecycle.is_headless(claude_args, True) or claude_args[:1] == ("--exec",)
    else:
        headless = lifecycle.is_headless(claude_args, sys.stdin.isatty())
    extra_ports = _parse_published(published)
    cfg = _with_published(_load_trusted(config_file, approve, run=True), extra_ports)
    if dry_run:
        from ..planview import describe, preview

        for line in describe(preview(cfg, tuple(claude_args), interactive=not headless)):
            click.echo(line)
        return
    progress = BuildProgress(verbose, log_path=build_log_path())
    options = lifecycle.UpOptions(
        extra_args=tuple(claude_args),
        detach=detach,
        keep=keep,
        headless=headless,
        stdin=None if sys.stdin.isatty() or detach else sys.stdin.buffer,
        on_build_output=progress,
    )
    def echo(message: str) -> None:
        progress.finish()
        progress.started = False
        _echo_err(message)

    try:
        code = lifecycle.up(cfg, options, echo=echo)
    except ClaudeDockerError as error:
        progress.finish()
        raise progress.failed(error) from None
    finally:
        progress.finish()
    ctx.exit(code)


def _parse_published(published: tuple[str, ...]) -> list[PublishedPort]:
    """The ports of `up -p`, checked before anything else (a usage error)."""
    from ..config.config_values import ValueProblem, parse_port_mapping

    ports: list[PublishedPort] = []
    for entry in published:
        try:
            ports.append(parse_port_mapping(entry))
        except ValueProblem as problem:
            raise click.BadParameter(
                f"{problem}; to give Claude Code a task, put it after `--`: claude-docker up -- -p 'task'",
                param_hint="-p/--publish",
            ) from None
    return ports


def _with_published(cfg: Config, published: list[PublishedPort]) -> Config:
    """The config with the ports of `up -p` added to its `ports:`; a host port is published once."""
    from dataclasses import replace

    ports = list(cfg.ports)
    for mapping in published:
        taken = [port for port in ports if port.host_port == mapping.host_port and port != mapping]
        if taken:
            raise click.BadParameter(f"host port {mapping.host_port} is already published ({taken[0]})", param_hint="-p/--publish")
        if mapping not in ports:
            ports.append(mapping)
    return replace(cfg, ports=tuple(ports))


def _project_or_all(config_file: str | None, all_projects: bool) -> str | None:
    return None if all_projects else _load(config_file).project_name


@click.command()
@file_option
@click.option("--all", "all_projects", is_flag=True, help="Every claude-docker session on this engine.")
@click.argument("session_ids", nargs=-1)
def down(config_file: str | None, all_projects: bool, session_ids: tuple[str, ...]) -> None:
    """Stop and remove this project's sessions (or only the SESSION_IDS given), running or ended.

    A SESSION_ID may be a prefix of the id, as long as only one session starts with it; an
    unknown or ambiguous one is an error and nothing is removed. Ended detached sessions are
    kept for `ps` and `logs` until this removes them; `down` and `up` also prune what sessions
    that ended 7 days ago left (their containers, unless started with --keep, and their dirs).

    \b
    Examples:
      claude-docker down                # every session of this project
      claude-docker down 3f9a           # one session (ids from `claude-docker ps`)
      claude-docker down --all          # every claude-docker session on this engine
    """
    from .. import lifecycle
    from ..engine import Engine

    engine = Engine.connect()
    project = _project_or_all(config_file, all_projects)
    removed = lifecycle.down(engine, project, session_ids, report=_echo_err)
    for name in removed:
        click.echo(f"removed {name}")
    if not removed:
        click.echo("no sessions to remove")
    pruned = lifecycle.prune_sessions(engine, project, report=_echo_err)
    if pruned:
        click.echo(f"pruned {len(pruned)} session(s) that ended more than {lifecycle.SESSION_KEEP_DAYS} days ago")


@click.command()
@file_option
@click.option("--all", "all_projects", is_flag=True, help="Sessions of every project (default when no config is found).")
def ps(config_file: str | None, all_projects: bool) -> None:
    """List sessions: project, session, status (with the exit code of ended ones), age, when
    it ended, image.

    Ended sessions are listed too: a detached one is kept until `down` removes it, or the first
    `up` or `down` 7 days after its end (a foreground one only with `up --keep`).

    \b
    Examples:
      claude-docker ps
      claude-docker ps --all            # every project's sessions
    """
    from .. import lifecycle
    from ..engine import Engine

    project = None
    if not all_projects:
        try:
            project = _load(config_file).project_name
        except ClaudeDockerError:
            if config_file:
                raise
    rows = lifecycle.ps_rows(Engine.connect(), project)
    header = ("PROJECT", "SESSION", "STATUS", "AGE", "ENDED", "IMAGE")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@click.command()
@file_option
@click.option("--follow", is_flag=True, help="Keep streaming new output until the session ends (Ctrl-C stops), "
              "with the agent's progress on stderr.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="With --follow: show each tool the agent starts and its answers, as they happen, on stderr.")
@click.argument("session_id", required=False)
def logs(config_file: str | None, follow: bool, progress: bool, session_id: str | None) -> None:
    """Show a session's output (the project's only session unless SESSION_ID is given).

    SESSION_ID may be a prefix of the id, as long as only one session starts with it. Ended
    sessions are shown too, with their exit code and when they ended (on stderr): a detached
    session is kept until `down` removes it, or the first `up` or `down` 7 days after its end.

    A headless task (`-p`) prints its answer only at its end; `--follow` also shows its progress
    meanwhile, one line per tool it starts and per answer, on stderr (stdout stays the session's
    output). The agent writes those records, so they are cut short and stripped of control
    characters and escape sequences before they reach your terminal.

    \b
    Examples:
      claude-docker logs
      claude-docker logs --follow 3f9a
      claude-docker logs --follow --no-progress 3f9a > output.txt
      claude-docker logs -f ci.yaml
    """
    from .. import lifecycle
    from ..engine import Engine

    engine = Engine.connect()
    info = lifecycle.find_session(engine, _load(config_file).project_name, session_id)
    try:
        lifecycle.logs(engine, info, follow, sys.stdout.buffer, progress=_echo_err if progress else None, report=_echo_err)
    except KeyboardInterrupt:
        pass


@click.command()
@file_option
@click.argument("session_id", required=False)
@click.pass_context
def attach(ctx: click.Context, config_file: str | None, session_id: str | None) -> None:
    """Attach this terminal to a running interactive session (`up --detach` without a task,
    or one you detached from). Detach again with Ctrl-P Ctrl-Q; the session goes on.

    SESSION_ID may be a prefix of the id (default: the project's only running session). When
    the session ends while attached, the exit code is its own and the command that resumes
    the conversation is printed.

    \b
    Examples:
      claude-docker up --detach && claude-docker attach
      claude-docker attach 3f9a
    """
    from .. import lifecycle
    from ..engine import Engine

    cfg = _load(config_file)
    engine = Engine.connect()
    info = lifecycle.find_session(engine, cfg.project_name, session_id, running=True)
    ctx.exit(lifecycle.attach(engine, cfg, info, _echo_err))


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@file_option
@click.option("-s", "--session", "session_id", help="Session id or a prefix of it (default: the project's only running session).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def shell(ctx: click.Context, config_file: str | None, session_id: str | None, command: tuple[str, ...]) -> None:
    """Open bash as the agent user in a running session (no capabilities, like Claude itself).

    \b
    Examples:
      claude-docker shell
      claude-docker shell -s 3f9a1c2e
      claude-docker shell -- git status
    """
    from .. import lifecycle
    from ..engine import Engine

    engine = Engine.connect()
    info = lifecycle.find_session(engine, _load(config_file).project_name, session_id, running=True)
    ctx.exit(lifecycle.shell(engine, info, command))


@click.command()
@file_option
def doctor(config_file: str | None) -> None:
    """Check the engine, the docker CLI, the base image, CA files, env file, notifier, disk.

    One pass/fail line each; exit code 1 when a check fails.

    \b
    Examples:
      claude-docker doctor
      claude-docker doctor -f ci.yaml
    """
    from ..doctor import run_checks

    failed = 0
    for check in run_checks(config_file):
        if check.ok:
            mark = click.style("ok  ", fg="green")
        elif check.advisory:
            mark = click.style("warn", fg="yellow")
        else:
            mark = click.style("FAIL", fg="red")
            failed += 1
        click.echo(f"{mark} {check.name}: {check.detail}")
    if failed:
        raise ClaudeDockerError(f"{failed} check(s) failed", "fix the lines marked FAIL above")


COMMANDS: list[click.Command] = [build, up, down, ps, logs, attach, shell, doctor]
