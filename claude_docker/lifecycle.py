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
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Mapping, Sequence

from . import contract, notify, paths, runplan
from .config.model import AUTO_MEMORY, Config
from .contract import LABEL_DETACHED, LABEL_MANAGED, LABEL_PROJECT, LABEL_PROTECT_GIT, LABEL_SESSION, LABEL_WORKSPACE
from .engine import ContainerInfo, Engine
from .errors import ClaudeDockerError, EngineError
from .features import FEATURES, EndedSession, credentials, persistence
from .features.firewall import log as firewall_log
from .imagebuild import ImageResult, age_warning, ensure_image
from .session import Session

Echo = Callable[[str], None]

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
    if cfg.resources.memory == AUTO_MEMORY:
        engine.prefetch_auto_memory()  # answered while the image is checked and the run planned
    interactive = not options.headless  # a terminal: here, or for `attach` to a detached session
    result = prepare_image(engine, cfg, options.on_build_output)
    echo(f"image {result.tag} ({'built' if result.built else 'current'}, Claude Code {result.claude_code_version})")
    stale = age_warning(result, cfg.image.max_age_days)
    if stale:
        echo(f"warning: {stale}")

    prune_sessions(engine, cfg.project_name, report=echo)
    session = Session.new(cfg.project_name)
    container_plan = runplan.plan(
        cfg,
        session,
        result.tag,
        options.extra_args,
        interactive=interactive,
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
            if interactive:  # the size of this terminal, until `attach` brings its own
                size = shutil.get_terminal_size(DETACHED_TERMINAL_SIZE)
                engine.resize_tty(container, size.lines, size.columns)
        except EngineError:
            engine.remove(container)
            raise
        echo(f"started session {session.session_id} ({session.container_name}) in the background")
        if interactive:
            echo(f"attach to it with `claude-docker attach {session.session_id}` (detach again with Ctrl-P Ctrl-Q)")
        else:
            echo(f"follow it with `claude-docker logs --follow {session.session_id}`")
        if not options.keep:
            echo(f"once it ends, `ps` and `logs` show it until `claude-docker down {session.session_id}` "
                 f"(or an `up` or `down` {SESSION_KEEP_DAYS} days later)")
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
                started = time.time()
                exit_code = _run_interactive(engine, container, session)
                if exit_code is None:  # the user detached (Ctrl-P Ctrl-Q): the session goes on
                    echo(f"detached; session {session.session_id} keeps running "
                         f"(`claude-docker attach {session.session_id}` returns to it, `down {session.session_id}` ends it)")
                    keep, exit_code, detached = True, 0, True
                else:  # Claude's own hint names the command inside the container
                    conversation = persistence.latest_conversation(cfg, session, started)
                    if conversation:
                        echo(f"resume this conversation with: claude-docker up -- --resume {conversation}")
                code = exit_code
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
    ended = EndedSession(session, cfg.workspace.path, cfg.workspace.protect_git, container_gone=not keep)
    for warning in clean_up([ended]):  # what the agent planted must not wait for the next `up`
        echo(f"warning: {warning}")
    if code == contract.EXIT_FIREWALL_FAILED:
        echo("the firewall could not be set up; the session did not start (see the container output above)")
    elif code == contract.EXIT_SETUP_FAILED:
        echo("the container setup failed before Claude Code started (see the output above)")
    elif code == contract.EXIT_ENDPOINT_UNREACHABLE:
        echo("the model endpoint did not accept a connection; Claude Code did not start (see the reason above)")
    if code not in (0, 130) and cfg.network.firewall:
        for line in refusals_block(session):
            echo(line)
    if options.keep:
        echo(f"kept container {session.container_name}; remove it with `claude-docker down`")
    return code


def refusals_block(session: Session) -> list[str]:
    """What the firewall refused in a session that ended with an error, in one short block
    (Claude Code's own start-up traffic left out): often the reason it failed."""
    try:
        lines = firewall_log.refusal_summary(session.log_dir)
    except ClaudeDockerError:
        return []  # an unreadable log must not hide the session's own exit
    if not lines:
        return []
    return [
        f"the firewall refused in session {session.session_id}:",
        *(f"  {line}" for line in lines),
        f"  (`claude-docker blocked --session {session.session_id}` shows them all, `--suggest` what to allow)",
    ]


def clean_up(ended: Sequence[EndedSession]) -> list[str]:
    """Each feature clears what the ended sessions left on the host (features.FEATURES, `cleanup`);
    then the rendered runtime files go, and the session dir when nothing is left in it. A session
    keeps only what is still of use: events not yet delivered, the notifier log and the
    firewall's log of refused names. Returns the features' warnings."""
    warnings: list[str] = []
    for feature in FEATURES:
        warnings.extend(feature.cleanup(ended))
    for entry in ended:
        if entry.session is not None and entry.container_gone:
            shutil.rmtree(entry.session.runtime_dir, ignore_errors=True)
            try:
                entry.session.session_dir.rmdir()  # only when nothing is left in it
            except OSError:
                pass
    return warnings


DETACHED_TERMINAL_SIZE = (120, 40)  # columns, lines: the terminal of `up --detach` without one


def tidy_session(session: Session) -> None:
    """Once its container is gone, what the session left on the host (its workspace aside)."""
    clean_up([EndedSession(session, workspace=None, protect_git=False)])


SESSION_KEEP_DAYS = 7  # session dirs of ended sessions are removed after this long


def prune_sessions(engine: Engine, project: str | None, now: float | None = None, report: Echo | None = None) -> list[str]:
    """Remove what ended sessions left once SESSION_KEEP_DAYS have passed (`up` and `down` call
    this): the containers of detached sessions that ended that long ago (kept until then for
    `logs` and `ps`), and session dirs untouched that long, with the undelivered events, logs
    and firewall logs in them.

    A session dir is left alone while a container of it exists or its notifier runs. Its age is
    that of the files only the host writes (the session dir, notify.log, the delivery state):
    the agent can set any time on what it wrote.
    """
    from .notify.delivery import LOG_FILE, STATE_FILE, is_live

    cutoff = (time.time() if now is None else now) - SESSION_KEEP_DAYS * 86400
    projects_dir = paths.claude_docker_home() / "projects"
    names = [project] if project else sorted(p.name for p in _subdirs(projects_dir))
    # Listed without inspecting each container (the project's other running sessions), unless
    # an ended detached session is among them: only then is its end time needed.
    found = sessions(engine, project, brief=True)
    if any(info.labels.get(LABEL_DETACHED) == "1" and info.status in ("exited", "dead") for info in found):
        found = sessions(engine, project)
    expired = [info for info in found if info.labels.get(LABEL_DETACHED) == "1" and _ended_before(info, cutoff)]
    pruned: list[str] = [info.labels.get(LABEL_SESSION, "?") for info in expired]
    remove_sessions(engine, expired, report)
    existing = {(info.labels.get(LABEL_PROJECT), info.labels.get(LABEL_SESSION)) for info in found if info not in expired}
    for name in names:
        for session_dir in _subdirs(projects_dir / name / "sessions"):
            if (name, session_dir.name) in existing or is_live(session_dir):
                continue
            stamps = []
            for path in (session_dir, session_dir / LOG_FILE, session_dir / STATE_FILE):
                try:
                    stamps.append(path.lstat().st_mtime)
                except OSError:
                    pass
            if stamps and max(stamps) < cutoff:
                shutil.rmtree(session_dir, ignore_errors=True)  # root-owned firewall logs may stay
                pruned.append(session_dir.name)
    return list(dict.fromkeys(pruned))


def _ended_before(info: ContainerInfo, cutoff: float) -> bool:
    if info.status not in ("exited", "dead") or not info.finished:
        return False
    ended = _parse_time(info.finished)
    return ended is not None and ended.timestamp() < cutoff


def _parse_time(stamp: str) -> datetime | None:
    """The engine's RFC 3339 timestamp (nanoseconds and zone ignored: engines report UTC)."""
    try:
        return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _subdirs(directory) -> list:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []


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


DETACH_KEYS = "ctrl-p,ctrl-q"  # the engine's default, named so a user's ~/.docker/config.json cannot change it


def _run_interactive(engine: Engine, container, session: Session) -> int | None:
    """Hand the terminal to `docker start --attach --interactive` (resize and Ctrl-C just work).

    Returns the exit code, or None when the user detached and the container still runs.
    """
    cli = docker_cli()
    subprocess.run(
        [cli, "start", "--attach", "--interactive", "--detach-keys", DETACH_KEYS, session.container_name], env=_cli_env(engine),
    )
    if engine.status(container) == "running":
        return None
    return engine.wait(container)


# --- down / ps / logs / shell ----------------------------------------------------------------


def sessions(engine: Engine, project: str | None = None, brief: bool = False) -> list[ContainerInfo]:
    labels = {LABEL_MANAGED: "1"}
    if project:
        labels[LABEL_PROJECT] = project
    return engine.list(labels, brief=brief)


# Labels name host directories: only the shapes claude-docker itself writes are trusted.
_SAFE_LABEL = re.compile(r"[a-z0-9][a-z0-9-]{0,80}")


def down(engine: Engine, project: str | None, session_ids: Sequence[str] = (), report: Echo | None = None) -> list[str]:
    """Stop and remove the project's sessions (all projects when `project` is None). With the
    containers gone, what the agent left in their workspaces' git dirs is disarmed (`report`
    gets one warning per change)."""
    found = sessions(engine, project)
    if session_ids:
        found = list({info.name: info for info in (match_session(found, wanted, project) for wanted in session_ids)}.values())
    return remove_sessions(engine, found, report)


def remove_sessions(engine: Engine, found: Sequence[ContainerInfo], report: Echo | None = None) -> list[str]:
    """Remove these sessions' containers, tidy their dirs, disarm their workspaces' git dirs."""
    removed = []
    ended: list[EndedSession] = []
    for info in found:
        container = engine.get(info.name)
        if container is not None:
            project_label, session_label = info.labels.get(LABEL_PROJECT, ""), info.labels.get(LABEL_SESSION, "")
            session = Session(project_label, session_label)
            trusted = _SAFE_LABEL.fullmatch(project_label) and _SAFE_LABEL.fullmatch(session_label)
            if trusted and notify.is_live(session.session_dir):
                # its notifier sees the killed container's 137: the user's doing, not a failure
                (session.session_dir / notify.ENDED_BY_DOWN).touch()
            engine.remove(container, force=True)
            removed.append(info.name)
            ended.append(EndedSession(
                session if trusted else None,
                workspace=info.labels.get(LABEL_WORKSPACE, ""),
                protect_git=info.labels.get(LABEL_PROTECT_GIT) != "0",
            ))
    for warning in clean_up(ended):
        if report is not None:
            report(f"warning: {warning}")
    return removed


def age(created: str, now: datetime | None = None) -> str:
    """'30s', '5m', '3h', '2d' from the engine's RFC 3339 timestamp (nanoseconds ignored)."""
    stamp = _parse_time(created)
    if stamp is None:
        return "?"
    seconds = int(((now or datetime.now(timezone.utc)) - stamp).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def status_text(info: ContainerInfo) -> str:
    """The engine's status, with the exit code of a session that ended: `exited (1)`."""
    if info.status == "exited" and info.exit_code is not None:
        return f"exited ({info.exit_code})"
    return info.status


def ended_text(info: ContainerInfo, now: datetime | None = None) -> str:
    """'5m ago' for a session that ended, '-' for one that has not."""
    return f"{age(info.finished, now)} ago" if info.finished else "-"


def ps_rows(engine: Engine, project: str | None = None) -> list[tuple[str, str, str, str, str, str]]:
    """(project, session, status, age, ended, image) for every managed container, ended ones
    included (a detached session is kept after it ends until `down` or pruning)."""
    return [
        (
            info.labels.get(LABEL_PROJECT, "?"),
            info.labels.get(LABEL_SESSION, "?"),
            status_text(info),
            age(info.created),
            ended_text(info),
            info.labels.get(contract.LABEL_IMAGE, info.image),
        )
        for info in sessions(engine, project)
    ]


def session_list(infos: Sequence[ContainerInfo]) -> str:
    """`3f9a1c2e (running), 77b0d1aa (exited (1))`: what to choose from."""
    return ", ".join(f"{info.labels.get(LABEL_SESSION, '?')} ({status_text(info)})" for info in infos) or "none"


def match_session(infos: Sequence[ContainerInfo], wanted: str, project: str | None) -> ContainerInfo:
    """The session whose id is `wanted` or starts with it (as Docker matches id prefixes)."""
    exact = [info for info in infos if info.labels.get(LABEL_SESSION) == wanted]
    matches = exact or [info for info in infos if wanted and info.labels.get(LABEL_SESSION, "").startswith(wanted)]
    where = f"project {project}" if project else "this engine"
    if not matches:
        raise ClaudeDockerError(f"no session {wanted} in {where}", f"sessions: {session_list(infos)}")
    if len(matches) > 1:
        raise ClaudeDockerError(
            f"{wanted} matches several sessions in {where}: {session_list(matches)}",
            "give more of the id (`claude-docker ps` lists them)",
        )
    return matches[0]


def find_session(engine: Engine, project: str, session_id: str | None, running: bool = False) -> ContainerInfo:
    """The one session meant: by id or unambiguous id prefix, or the only one of the project."""
    infos = sessions(engine, project)
    if session_id is not None:
        info = match_session(infos, session_id, project)
        if running and info.status != "running":
            raise ClaudeDockerError(
                f"session {info.labels.get(LABEL_SESSION, '?')} is not running ({status_text(info)})",
                "`claude-docker logs` shows what it did; start a new one with `claude-docker up`",
            )
        return info
    candidates = [info for info in infos if not running or info.status == "running"]
    if not candidates:
        what = "running session" if running else "session"
        raise ClaudeDockerError(f"no {what} for project {project}", "list sessions with `claude-docker ps`; start one with `claude-docker up`")
    if len(candidates) > 1:
        raise ClaudeDockerError(
            f"project {project} has several sessions: {session_list(candidates)}",
            "name one by its id or a prefix of it, e.g. `claude-docker logs 3f9a`",
        )
    return candidates[0]


def _session_of(info: ContainerInfo) -> Session | None:
    """The session a container's labels name, when they have the shapes claude-docker writes."""
    project_label, session_label = info.labels.get(LABEL_PROJECT, ""), info.labels.get(LABEL_SESSION, "")
    if _SAFE_LABEL.fullmatch(project_label) and _SAFE_LABEL.fullmatch(session_label):
        return Session(project_label, session_label)
    return None


def _current(engine: Engine, info: ContainerInfo) -> ContainerInfo | None:
    project = info.labels.get(LABEL_PROJECT)
    return next((found for found in sessions(engine, project) if found.name == info.name), None)


def ended_summary(info: ContainerInfo) -> str | None:
    """One line about a session that ended: when, its exit code, how long it stays."""
    if info.status not in ("exited", "dead"):
        return None
    session_id = info.labels.get(LABEL_SESSION, "?")
    code = "unknown" if info.exit_code is None else str(info.exit_code)
    kept = f"kept until `claude-docker down {session_id}`"
    if info.labels.get(LABEL_DETACHED) == "1":
        kept += f" (or the first `up` or `down` {SESSION_KEEP_DAYS} days after its end)"
    return f"session {session_id} ended {ended_text(info)}, exit code {code}; {kept}"


PROGRESS_POLL_SECONDS = 0.3


def logs(
    engine: Engine, info: ContainerInfo, follow: bool, out: BinaryIO,
    *, progress: Echo | None = None, report: Echo | None = None,
) -> None:
    """The session's output as the engine kept it, ended sessions included. Following, the
    agent's progress records (see features.progress) go to `progress` as they are written,
    cleaned of anything a terminal would act on; `report` gets one line when the session ended."""
    from .features.progress import ProgressReader

    container = engine.get(info.name)
    if container is None:
        raise ClaudeDockerError(f"session container {info.name} is gone", "list sessions with `claude-docker ps`")
    session = _session_of(info)
    reader = ProgressReader(session.session_dir) if follow and progress is not None and session is not None else None
    stop = threading.Event()
    tail: threading.Thread | None = None
    if reader is not None and progress is not None:
        emit = progress
        for line in reader.backlog():
            emit(line)

        def follow_progress() -> None:
            while not stop.wait(PROGRESS_POLL_SECONDS):
                for line in reader.poll():
                    emit(line)

        tail = threading.Thread(target=follow_progress, name="claude-docker-progress", daemon=True)
        tail.start()
    try:
        for chunk in engine.logs(container, follow=follow):
            out.write(chunk)
            out.flush()
    finally:
        if tail is not None and reader is not None and progress is not None:
            stop.set()
            tail.join(timeout=5)
            for line in reader.poll():  # what the last hooks wrote before the container ended
                progress(line)
            reader.close()
    if report is not None:
        current = _current(engine, info)
        summary = ended_summary(current) if current is not None else None
        if summary:
            report(summary)


def attach(engine: Engine, cfg: Config, info: ContainerInfo, echo: Echo) -> int:
    """Hand the terminal to a running interactive session (`docker attach`; Ctrl-P Ctrl-Q
    detaches again). Returns 0 after a detach, else the session's exit code."""
    session_id = info.labels.get(LABEL_SESSION, "?")
    if not info.tty:
        raise ClaudeDockerError(
            f"session {session_id} runs a task without a terminal: there is nothing to attach to",
            f"follow its output with `claude-docker logs --follow {session_id}`",
        )
    if not sys.stdin.isatty():
        raise ClaudeDockerError(
            "attach needs a terminal on stdin",
            f"run it in a terminal; `claude-docker logs --follow {session_id}` shows the output without one",
        )
    cli = docker_cli()
    container = engine.get(info.name)
    if container is None:
        raise ClaudeDockerError(f"session container {info.name} is gone", "list sessions with `claude-docker ps`")
    attached = subprocess.run([cli, "attach", "--detach-keys", DETACH_KEYS, info.name], env=_cli_env(engine))
    status = engine.status(container)
    if status == "running":
        echo(f"detached; session {session_id} keeps running "
             f"(`claude-docker attach {session_id}` returns to it, `down {session_id}` ends it)")
        return 0
    code = engine.wait(container) if status != "removed" else attached.returncode
    session = _session_of(info)
    created = _parse_time(info.created)
    if session is not None and created is not None:
        conversation = persistence.latest_conversation(cfg, session, created.timestamp())
        if conversation:
            echo(f"resume this conversation with: claude-docker up -- --resume {conversation}")
    current = _current(engine, info)
    summary = ended_summary(current) if current is not None else None
    if summary:
        echo(summary)
    # as `up` does when its session ends; the container stays until it is pruned or removed
    ended_session = EndedSession(
        None, workspace=info.labels.get(LABEL_WORKSPACE, ""), protect_git=info.labels.get(LABEL_PROTECT_GIT) != "0", container_gone=False
    )
    for warning in clean_up([ended_session]):
        echo(f"warning: {warning}")
    return code


def shell_argv(info: ContainerInfo, command: Sequence[str] = ()) -> list[str]:
    """`docker exec` argv for a shell as the agent, with no capabilities, like the entrypoint's drop."""
    uid = info.env.get("AGENT_UID", "1000")
    gid = info.env.get("AGENT_GID", uid)
    interactive = ["-it"] if sys.stdin.isatty() and not command else ["-i"]
    # claude.env's PATH and loader variables, for the agent only (see contract.AGENT_ONLY_VARIABLES)
    prefix = contract.AGENT_ONLY_PREFIX
    agent_env = [f"{name[len(prefix):]}={value}" for name, value in info.env.items() if name.startswith(prefix)]
    # The credentials only the sandbox proxy holds (credentials.SECRET_VARIABLES) are in the
    # container's environment, which `docker exec` hands to every process it starts: emptied here,
    # so no process of the shell (the agent's uid) ever has them, then removed.
    secrets = [name for name in info.env if name.startswith(credentials.SECRET_PREFIX)]
    return [
        "exec", *interactive,
        "-e", f"HOME={contract.AGENT_HOME}", "-e", f"USER={contract.AGENT_USER}", "-e", f"LOGNAME={contract.AGENT_USER}",
        *[option for name in secrets for option in ("-e", f"{name}=")],
        info.name, *contract.drop_privileges(uid, gid), "/usr/bin/env", *[f"--unset={name}" for name in secrets],
        *agent_env, *(command or ["bash", "-l"]),
    ]


def shell(engine: Engine, info: ContainerInfo, command: Sequence[str] = ()) -> int:
    cli = docker_cli()
    return subprocess.run([cli, *shell_argv(info, command)], env=_cli_env(engine)).returncode
