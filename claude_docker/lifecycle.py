"""Session lifecycle: up (interactive, headless, detached), down, ps, logs, shell.

This module decides *what* happens; output goes through the callables the CLI passes in, so
the CLI stays the only place that talks to the terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Mapping, Sequence

from . import filesystem, notify, paths, runplan
from .engine import ContainerInfo, Engine
from .errors import ClaudeDockerError, EngineError
from .image import ImageResult, ensure_image
from .model import Config
from .session import LABEL_MANAGED, LABEL_PROJECT, LABEL_SESSION, Session

Echo = Callable[[str], None]

# The privilege drop of the entrypoint, for `shell` (docker exec starts as root with the
# container's capabilities; this leaves none to the agent).
def drop_privileges(uid: str, gid: str) -> list[str]:
    return [
        "setpriv", "--reuid", uid, "--regid", gid, "--init-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]


def is_headless(extra_args: Sequence[str], stdin_is_tty: bool) -> bool:
    """Headless when Claude is asked to print (-p/--print) or nobody is at a terminal."""
    return not stdin_is_tty or any(arg in ("-p", "--print") or arg.startswith("--print=") for arg in extra_args)


@dataclass
class UpOptions:
    extra_args: tuple[str, ...] = ()
    detach: bool = False
    keep: bool = False
    headless: bool = True
    command: list[str] | None = None  # replaces Claude's arguments (e.g. ["--exec", "id"])
    stdin: BinaryIO | None = None  # headless: piped into the container (`echo task | up -- -p`)
    on_build_output: Callable[[str], None] | None = None


def prepare_image(engine: Engine, cfg: Config, on_output: Callable[[str], None] | None = None, **flags: bool) -> ImageResult:
    return ensure_image(engine, cfg.image, cfg.network.proxy, on_output=on_output, **flags)


def up(
    cfg: Config,
    options: UpOptions,
    *,
    echo: Echo,
    stdout: BinaryIO | None = None,
    stderr: BinaryIO | None = None,
    engine: Engine | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Build if needed, create the session's container and run it; return its exit code."""
    engine = engine or Engine.connect()
    if not (options.headless or options.detach):
        docker_cli()  # fail before building or creating anything
    result = prepare_image(engine, cfg, options.on_build_output)
    echo(f"image {result.tag} ({'built' if result.built else 'current'}, Claude Code {result.claude_code_version})")

    session = Session.new(cfg.project_name)
    container_plan = runplan.plan(
        cfg,
        session,
        result.tag,
        options.extra_args,
        interactive=not (options.headless or options.detach),
        forward_stdin=options.headless and not options.detach and options.stdin is not None,
        detach=options.detach,
        keep=options.keep,
        environ=environ,
        command=options.command,
    )
    for warning in container_plan.warnings:
        echo(f"warning: {warning}")

    container = engine.create(container_plan)
    if options.detach:
        try:
            engine.start(container)
        except EngineError:
            engine.remove(container)
            raise
        echo(f"started session {session.session_id} ({session.container_name}) in the background")
        notify.start_detached_watcher(cfg, session, session.container_name)
        return 0

    keep = options.keep
    # A watcher stands by outside this terminal: should this process end before the session
    # does (a closed terminal, a dropped connection, SIGKILL), it delivers in its place.
    with notify.session_notifier(cfg, session, standby_for=session.container_name, remove_when_done=not keep) as notifier:
        detached = False
        try:
            if options.headless:
                code = _run_headless(engine, container, stdout or sys.stdout.buffer, stderr or sys.stderr.buffer, options.stdin)
            else:
                code = _run_interactive(engine, container, session)
                if code is None:  # the user detached (Ctrl-P Ctrl-Q): the session goes on
                    echo(f"detached; session {session.session_id} keeps running (`claude-docker ps`, `down`)")
                    keep, code, detached = True, 0, True
        except KeyboardInterrupt:
            engine.stop(container, timeout=5)
            code = 130
        finally:
            if not keep:
                engine.remove(container)
        if notifier is not None:
            if detached:
                notifier.hand_over()  # the standby watcher delivers until the container ends
            else:
                notifier.set_exit_code(code)
    if not keep:
        tidy_session(session)
    if cfg.workspace.protect_git:  # what the agent planted must not wait for the next `up`
        for warning in filesystem.disarm_git(filesystem.real(cfg.workspace.path)):
            echo(f"warning: {warning}")
    if code == paths.EXIT_FIREWALL_FAILED:
        echo("the firewall could not be set up; the session did not start (see the container output above)")
    elif code == paths.EXIT_SETUP_FAILED:
        echo("the container setup failed before Claude Code started (see the output above)")
    if options.keep:
        echo(f"kept container {session.container_name}; remove it with `claude-docker down`")
    return code


def tidy_session(session: Session) -> None:
    """Once its container is gone, a session keeps only what is still of use on the host: events
    not yet delivered, the notifier log and the firewall's log of refused names."""
    shutil.rmtree(session.runtime_dir, ignore_errors=True)
    shutil.rmtree(session.session_dir / "claude", ignore_errors=True)  # the throwaway login of `auth: false`
    (session.session_dir / "empty").unlink(missing_ok=True)  # filesystem.empty_file's mask
    for directory in (session.outbox_dir, session.session_dir):
        try:
            directory.rmdir()  # only when nothing is left in it
        except OSError:
            pass


def _interrupt_on_sigterm() -> None:
    """A terminated `up` (CI timeout, systemd stop) stops its container like Ctrl-C does."""
    import signal
    import threading

    def interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _run_headless(engine: Engine, container, stdout: BinaryIO, stderr: BinaryIO, stdin: BinaryIO | None = None) -> int:
    """Stream stdout/stderr as they come (and stdin in, if piped); the exit code is the container's."""
    _interrupt_on_sigterm()
    stream = engine.attach(container)  # attach before start: no output is lost
    if stdin is not None:
        engine.feed_stdin(container, stdin)
    engine.start(container)
    for out, err in stream:
        if out:
            stdout.write(out)
            stdout.flush()
        if err:
            stderr.write(err)
            stderr.flush()
    return engine.wait(container)


def docker_cli() -> str:
    cli = shutil.which("docker")
    if cli is None:
        raise EngineError(
            "interactive sessions need the `docker` command line tool, and it is not on PATH",
            "install the Docker CLI (e.g. `apt-get install docker.io` or docker-ce-cli), or run headless: claude-docker up -- -p 'task'",
        )
    return cli


def _cli_env(engine: Engine) -> dict[str, str]:
    """The CLI must talk to the daemon the SDK talks to."""
    env = dict(os.environ)
    base_url = engine.base_url
    if not env.get("DOCKER_HOST") and base_url.startswith(("tcp://", "ssh://", "https://")):
        env["DOCKER_HOST"] = base_url.replace("https://", "tcp://")
    return env


def _run_interactive(engine: Engine, container, session: Session) -> int | None:
    """Hand the terminal to `docker start --attach --interactive` (resize and Ctrl-C just work).

    Returns the exit code, or None when the user detached and the container still runs.
    """
    cli = docker_cli()
    subprocess.run([cli, "start", "--attach", "--interactive", session.container_name], env=_cli_env(engine))
    if engine.status(container) == "running":
        return None
    return engine.wait(container)


# --- down / ps / logs / shell ----------------------------------------------------------------


def sessions(engine: Engine, project: str | None = None) -> list[ContainerInfo]:
    labels = {LABEL_MANAGED: "1"}
    if project:
        labels[LABEL_PROJECT] = project
    return engine.list(labels)


# Labels name host directories: only the shapes claude-docker itself writes are trusted.
_SAFE_LABEL = re.compile(r"[a-z0-9][a-z0-9-]{0,80}")


def down(engine: Engine, project: str | None, session_ids: Sequence[str] = ()) -> list[str]:
    """Stop and remove the project's sessions (all projects when `project` is None)."""
    removed = []
    for info in sessions(engine, project):
        if session_ids and info.labels.get(LABEL_SESSION) not in session_ids:
            continue
        container = engine.get(info.name)
        if container is not None:
            engine.remove(container, force=True)
            removed.append(info.name)
            project_label, session_label = info.labels.get(LABEL_PROJECT, ""), info.labels.get(LABEL_SESSION, "")
            if _SAFE_LABEL.fullmatch(project_label) and _SAFE_LABEL.fullmatch(session_label):
                tidy_session(Session(project_label, session_label))
    return removed


def age(created: str, now: datetime | None = None) -> str:
    """'30s', '5m', '3h', '2d' from the engine's RFC 3339 timestamp (nanoseconds ignored)."""
    try:
        stamp = datetime.strptime(created[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return "?"
    seconds = int(((now or datetime.now(timezone.utc)) - stamp).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def ps_rows(engine: Engine, project: str | None = None) -> list[tuple[str, str, str, str, str]]:
    """(project, session, status, age, image) for every managed container."""
    return [
        (
            info.labels.get(LABEL_PROJECT, "?"),
            info.labels.get(LABEL_SESSION, "?"),
            info.status,
            age(info.created),
            info.labels.get(runplan.LABEL_IMAGE, info.image),
        )
        for info in sessions(engine, project)
    ]


def find_session(engine: Engine, project: str, session_id: str | None, running: bool = False) -> ContainerInfo:
    """The one session meant: by id, or the only one of the project."""
    candidates = [
        info
        for info in sessions(engine, project)
        if (session_id is None or info.labels.get(LABEL_SESSION) == session_id) and (not running or info.status == "running")
    ]
    if not candidates:
        what = f"session {session_id}" if session_id else ("running session" if running else "session")
        raise ClaudeDockerError(f"no {what} for project {project}", "list sessions with `claude-docker ps`; start one with `claude-docker up`")
    if len(candidates) > 1:
        ids = ", ".join(info.labels.get(LABEL_SESSION, "?") for info in candidates)
        raise ClaudeDockerError(f"project {project} has several sessions ({ids})", "name one: e.g. `claude-docker logs SESSION`")
    return candidates[0]


def logs(engine: Engine, info: ContainerInfo, follow: bool, out: BinaryIO) -> None:
    container = engine.get(info.name)
    if container is None:
        raise ClaudeDockerError(f"session container {info.name} is gone", "list sessions with `claude-docker ps`")
    for chunk in engine.logs(container, follow=follow):
        out.write(chunk)
        out.flush()


def shell_argv(info: ContainerInfo, command: Sequence[str] = ()) -> list[str]:
    """`docker exec` argv for a shell as the agent, with no capabilities, like the entrypoint's drop."""
    uid = info.env.get("AGENT_UID", "1000")
    gid = info.env.get("AGENT_GID", uid)
    interactive = ["-it"] if sys.stdin.isatty() and not command else ["-i"]
    # claude.env's PATH and loader variables, for the agent only (see runplan.AGENT_ONLY_VARIABLES)
    prefix = runplan.AGENT_ONLY_PREFIX
    agent_env = [f"{name[len(prefix):]}={value}" for name, value in info.env.items() if name.startswith(prefix)]
    return [
        "exec", *interactive,
        "-e", f"HOME={paths.AGENT_HOME}", "-e", f"USER={paths.AGENT_USER}", "-e", f"LOGNAME={paths.AGENT_USER}",
        info.name, *drop_privileges(uid, gid), "/usr/bin/env", *agent_env, *(command or ["bash", "-l"]),
    ]


def shell(engine: Engine, info: ContainerInfo, command: Sequence[str] = ()) -> int:
    cli = docker_cli()
    return subprocess.run([cli, *shell_argv(info, command)], env=_cli_env(engine)).returncode
