"""The engine going away during a session: delivery goes on, and `notify status`, `ps`, `logs`
and `down` work again once it answers.

Never the shared engine: the test starts a private dockerd of its own (its own socket,
--data-root, --exec-root and pidfile under a temp dir, no bridge, no iptables rules), copies the
standard test image into it, crashes it (SIGKILL, like an engine that dies or is restarted
under a running session) and starts it again. Every process it ends is one it started, by pid.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.fakes.projects import make_project
from tests.fakes.webhook import WebhookReceiver
from tests.support.testbed import HOST_CA_BUNDLE, TEST_BASE_IMAGE, engine_required
from tests.support.wait import wait_for

pytestmark = pytest.mark.docker


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


class PrivateEngine:
    """A dockerd of our own. Only root can run one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.process: subprocess.Popen | None = None
        # Its own network namespace: a dockerd with --bridge=none deletes the interface named
        # docker0 where it runs, which must never be the shared engine's.
        self.netns = f"cd-engine-{secrets.token_hex(3)}"

    def start(self, attempts: int = 3) -> None:
        """Start dockerd; like a service manager, try again if it gives up while starting (on a
        loaded machine its containerd can miss dockerd's start-up deadline after a crash)."""
        if self.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
        for _ in range(attempts):
            with open(self.root / "dockerd.log", "ab") as log:
                self.process = subprocess.Popen(
                    [
                        # nsenter, not `ip netns exec`: that remounts /sys and hides the cgroups
                        "nsenter", f"--net=/run/netns/{self.netns}", "--",
                        "dockerd", "-H", self.host,
                        "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
                        "--pidfile", str(self.root / "docker.pid"),
                        "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                    ],
                    stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                )
            process = self.process

            def settled(process: subprocess.Popen = process) -> bool:
                return process.poll() is not None or self.docker("info").returncode == 0

            if wait_for(settled, 90, interval=0.3) and process.poll() is None:
                return
            self.stop()
        raise RuntimeError(f"private dockerd did not start: {(self.root / 'dockerd.log').read_text()[-2000:]}")

    def crash(self) -> None:
        assert self.process is not None
        containerd = self._containerd_pid()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None
        if containerd:  # its containerd dies with it (parent-death signal); let it finish dying
            wait_for(lambda: not alive(containerd), 30, interval=0.3)

    def _containerd_pid(self) -> int | None:
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        try:
            return int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        # its own containerd (a child it started under --exec-root), if a crash left it behind
        pid = self._containerd_pid()
        if pid and alive(pid) and str(self.root) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not alive(pid), 30, interval=0.3)

    def tear_down(self) -> None:
        """Remove its containers (after a crash: start it again, it cleans up what it left),
        stop it, unmount its data root and delete the temp dir."""
        try:
            if self.process is None:
                self.start()
            ids = self.docker("ps", "-aq", timeout=60).stdout.decode().split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=120)
        finally:
            self.stop()
            subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)
        data = str(self.root / "data")
        if any(line.split()[4] == data for line in Path("/proc/self/mountinfo").read_text().splitlines()):
            subprocess.run(["umount", "-l", data], check=False)  # dockerd's private bind mount of its root
        shutil.rmtree(self.root, ignore_errors=True)

    def docker(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True, check=False, **kwargs)


@pytest.fixture
def private_engine(docker_client):
    problem = None
    if os.geteuid() != 0:
        problem = "a private dockerd needs root"
    elif shutil.which("dockerd") is None:
        problem = "dockerd is not installed (scripts/test-env.sh installs docker.io)"
    if problem:
        if engine_required():
            pytest.fail(problem)
        pytest.skip(problem)
    from claude_docker.config.model import ImageConfig
    from claude_docker.features.image import build_context, image_tag

    tag = image_tag(build_context(ImageConfig(base=TEST_BASE_IMAGE, extra_ca_certificates=(HOST_CA_BUNDLE,))))
    root = Path(tempfile.mkdtemp(prefix="cd-eng-", dir="/tmp"))  # short: a socket path has a length limit
    engine = PrivateEngine(root)
    try:
        engine.start()
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", engine.host, "load"], stdin=save.stdout, capture_output=True, timeout=600, check=False)
        save.stdout.close()
        assert save.wait() == 0 and loaded.returncode == 0, loaded.stderr
        yield engine
    finally:
        engine.tear_down()


def diagnose(engine: PrivateEngine, hook: WebhookReceiver) -> str:
    from claude_docker.paths import claude_docker_home

    logs = "".join(p.read_text() for p in claude_docker_home().glob("projects/*/sessions/*/notify.log"))
    containers = engine.docker("ps", "-a", timeout=30).stdout.decode(errors="replace")
    dockerd = (engine.root / "dockerd.log").read_text(errors="replace")[-3000:]
    return f"received: {hook.payloads}\nnotify.log:\n{logs}\ncontainers:\n{containers}\ndockerd:\n{dockerd}"


@pytest.fixture(autouse=True)
def no_watcher_left(cd_home):
    """A watcher whose engine never came back (a failed test) would keep asking for an hour:
    end the ones this test's sessions started (found by their CLAUDE_DOCKER_HOME), by pid."""
    yield
    marker = f"CLAUDE_DOCKER_HOME={cd_home}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"claude_docker.notify.watch" in (proc / "cmdline").read_bytes() and marker in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGTERM)
        except OSError:
            continue


def cli(engine: PrivateEngine, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["claude-docker", *args], env={**os.environ, "DOCKER_HOST": engine.host},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_engine_crash_and_restart_during_a_detached_session(tmp_path, cd_home, private_engine):
    import json

    from claude_docker.config.pipeline import load_config
    from claude_docker.paths import project_state_dir

    first, second = "before the crash " + secrets.token_hex(3), "while the engine was down " + secrets.token_hex(3)
    with WebhookReceiver() as hook:
        notifier = (
            "persistence:\n  git_config: false\n"
            f"notifier:\n  on: [stop, session_end]\n  min_interval_seconds: 0\n  webhooks:\n    - url: {hook.url}\n"
        )
        config = make_project(tmp_path, notifier)
        workspace = config.parent
        stop = "echo '{\"hook_event_name\":\"Stop\",\"last_assistant_message\":\"%s\"}' | hook-event stop"
        script = (
            f"{stop % first}; "
            "while [ ! -e /workspace/.go ]; do sleep 0.2; done; "
            f"{stop % second}; echo second-written; sleep 600"
        )
        started = cli(private_engine, "up", "--trust", "-f", str(config), "--detach", "--keep", "--", "--exec", "bash", "-c", script)
        assert started.returncode == 0, started.stderr
        assert hook.wait_for(lambda h: h.events("stop"), 60), (hook.payloads, started.stderr)
        [session_dir] = (project_state_dir(load_config(str(config)).config.project_name) / "sessions").iterdir()
        state_file = session_dir / "notify-state.json"

        private_engine.crash()  # the engine dies under the running session
        (workspace / ".go").touch()
        # What the container writes around the crash is delivered with no engine to ask.
        assert hook.wait_for(lambda h: len(h.events("stop")) == 2, 60), diagnose(private_engine, hook)
        down_engine = cli(private_engine, "ps", "-f", str(config))
        assert down_engine.returncode == 1 and "cannot reach the Docker engine" in down_engine.stderr
        assert "Traceback" not in down_engine.stderr
        time.sleep(3)
        assert not json.loads(state_file.read_text()).get("closed"), "the watcher gave up while the engine was away"

        private_engine.start()  # it comes back and reports how the container ended
        closed = wait_for(lambda: json.loads(state_file.read_text()).get("closed"), 120, interval=0.3)
        assert closed, diagnose(private_engine, hook)
        inspected = private_engine.docker("inspect", "-f", "{{.State.ExitCode}}", f"claude-docker-{session_dir.parent.parent.name}-{session_dir.name}")
        assert json.loads(state_file.read_text())["exit_code"] == int(inspected.stdout), inspected
        listing = cli(private_engine, "ps", "-f", str(config))
        assert listing.returncode == 0 and "exited" in listing.stdout, listing.stdout + listing.stderr
        shown = cli(private_engine, "logs", "--file", str(config))
        assert shown.returncode == 0 and "second-written" in shown.stdout, shown.stdout + shown.stderr
        status = cli(private_engine, "notify", "status", "-f", str(config), "-n", "100")
        assert status.returncode == 0 and "no events waiting" in status.stdout, status.stdout + status.stderr
        assert "watcher lost the engine" in status.stdout and "watcher reached the engine again" in status.stdout
        removed = cli(private_engine, "down", "-f", str(config))
        assert removed.returncode == 0 and "removed " in removed.stdout, removed.stdout + removed.stderr
        time.sleep(2)  # a late duplicate would arrive now
    assert [p["last_message"] for p in hook.events("stop")] == [first, second]  # each once


def test_engine_crash_under_a_foreground_session_hands_delivery_to_the_watcher(tmp_path, cd_home, private_engine):
    first, second = "before the crash " + secrets.token_hex(3), "after up gave up " + secrets.token_hex(3)
    with WebhookReceiver() as hook:
        notifier = (
            "persistence:\n  git_config: false\n"
            f"notifier:\n  on: [stop, session_end]\n  min_interval_seconds: 0\n  webhooks:\n    - url: {hook.url}\n"
        )
        config = make_project(tmp_path, notifier)
        stop = "echo '{\"hook_event_name\":\"Stop\",\"last_assistant_message\":\"%s\"}' | hook-event stop"
        script = f"{stop % first}; while [ ! -e /workspace/.go ]; do sleep 0.2; done; {stop % second}; sleep 600"
        up = subprocess.Popen(
            ["claude-docker", "up", "--trust", "-f", str(config), "--", "--exec", "bash", "-c", script],
            env={**os.environ, "DOCKER_HOST": private_engine.host},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            assert hook.wait_for(lambda h: h.events("stop"), 120), diagnose(private_engine, hook)
            private_engine.crash()
            assert up.wait(timeout=60) == 1  # `up` cannot follow its container any more ...
            assert b"Traceback" not in up.stderr.read()
            (config.parent / ".go").touch()
            # ... and the watcher that stood by delivers what the container writes next.
            assert hook.wait_for(lambda h: len(h.events("stop")) == 2, 60), diagnose(private_engine, hook)
            private_engine.start()
            gone = wait_for(lambda: private_engine.docker("ps", "-aq", timeout=30).stdout.strip() == b"", 120, interval=0.3)
            assert gone, diagnose(private_engine, hook)  # removed once it ended, as `up` would have
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
        time.sleep(2)  # a late duplicate would arrive now
    assert [p["last_message"] for p in hook.events("stop")] == [first, second]
