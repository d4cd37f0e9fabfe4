"""The Docker engine, through the Docker SDK. The only module that imports `docker`.

Everything the engine can refuse (daemon down, socket permission, pull refused, build failed,
name clash) comes back as an EngineError with a hint, never as an SDK traceback.
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
import os
import re
import socket
import tarfile
import threading
from collections import deque
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, TypeVar

import docker
import docker.errors
import requests.exceptions
from docker.types import DeviceRequest, LogConfig, Mount

from .artifacts import Artifact
from .config.model import AUTO_MEMORY
from .errors import EngineError
from .runspec import BindMount, ContainerPlan

BUILD_TAIL_LINES = 25
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # the legacy builder colours RUN steps' stderr
F = TypeVar("F", bound=Callable)


def _translate(error: Exception) -> EngineError:
    """Map docker-py's typed errors (and the transport errors they wrap) to one EngineError.

    The type decides, never the wording: an OCI runtime's "no such file or directory" is a
    refusal by a running engine, not a missing socket.
    """
    chain = list(_causes(error))
    text = str(getattr(error, "explanation", None) or error)
    runtime_problem = _runtime_refusal(text)
    if runtime_problem is not None:
        return runtime_problem
    if any(isinstance(cause, PermissionError) for cause in chain):
        return EngineError(
            f"permission denied talking to the Docker engine: {text}",
            "add your user to the `docker` group (then log in again), or use rootless Docker / Podman via DOCKER_HOST",
        )
    if isinstance(error, FileNotFoundError) or any(isinstance(c, requests.exceptions.ConnectionError) for c in chain):
        return EngineError(
            f"cannot reach the Docker engine ({engine_address()})",
            "start Docker (e.g. `sudo systemctl start docker`), or point DOCKER_HOST / `docker context use` at a running engine",
        )
    # docker-py types a 404 as ImageNotFound by its wording, except a registry's "manifest unknown".
    if isinstance(error, docker.errors.ImageNotFound) or (
        isinstance(error, docker.errors.NotFound) and "manifest unknown" in text.lower()
    ):
        return EngineError(
            f"the image could not be found or pulled: {_short(text)}",
            "check image.base; without a registry, build or `docker load` the base image locally first",
        )
    if isinstance(error, docker.errors.NotFound):
        return EngineError(f"the Docker engine has no such object: {_short(text)}", "`claude-docker ps` lists the sessions")
    if isinstance(error, docker.errors.APIError):
        if error.status_code == 409:
            return EngineError(f"the engine refused: {_short(text)}", "remove the old container with `claude-docker down`")
        if "device driver" in text.lower() and "gpu" in text.lower():  # the daemon's only signal for this
            return EngineError(
                f"the engine cannot give the container a GPU: {_short(text)}",
                "resources.gpus needs the NVIDIA Container Toolkit on the Docker host; remove it to run without a GPU",
            )
        status = f" (HTTP {error.status_code})" if error.status_code else ""
        return EngineError(f"the Docker engine refused{status}: {_short(text)}", "run `claude-docker doctor` to check the engine")
    if isinstance(error, requests.exceptions.RequestException):
        return EngineError(f"talking to the Docker engine failed: {_short(text)}", "run `claude-docker doctor` to check the engine")
    return EngineError(f"the Docker engine refused: {_short(text)}", "run `claude-docker doctor` to check the engine")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what it was raised from, and the exceptions transport errors carry in their args."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__, *(a for a in current.args if isinstance(a, BaseException))]


def _runtime_refusal(text: str) -> EngineError | None:
    """The container runtime's own refusals, which would otherwise read like engine outages.

    Podman reports both through a 500 on create/start: its `--init` binary (catatonit) is a
    separate package, and its default ulimits can exceed the host's hard limits ("error setting
    rlimit ... OCI permission denied", which is not a socket permission problem).
    """
    lowered = text.lower()
    if "error setting rlimit" in lowered:
        nofile, nproc = _hard_limits()
        return EngineError(
            f"the container runtime could not apply the engine's default ulimits: {_short(text)}",
            "the engine's default nofile/nproc limits exceed this host's hard limits; for Podman, set lower ones in "
            f'containers.conf: [containers] default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"], '
            "then restart the Podman service (see docs/engine.md)",
        )
    if "container-init" in lowered or "catatonit" in lowered:
        return EngineError(
            f"the engine has no init binary for the container: {_short(text)}",
            "Podman needs catatonit for --init: install it (`apt install catatonit`, `dnf install catatonit`) "
            "or set init_path in containers.conf, then restart the Podman service",
        )
    return None


def _hard_limits() -> tuple[int, int]:
    """Limits a local engine's containers can be given: nofile up to this host's hard limit, and
    4096 processes (enough for an agent's tools; the engine's own process may have a lower
    nproc ceiling than this shell)."""
    import resource

    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    ceiling = 1 << 20
    return (
        ceiling if nofile == resource.RLIM_INFINITY else min(nofile, ceiling),
        4096 if nproc == resource.RLIM_INFINITY else min(nproc, 4096),
    )


# What npm, pip, curl and apt print when a TLS-inspecting proxy's certificate is not trusted.
_TLS_FAILURE = re.compile(
    r"SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|"
    r"unable to get local issuer certificate|certificate verify failed|self[- ]signed certificate in certificate chain|"
    r"server certificate verification failed",
    re.I,
)


def build_failure_hint(output: str) -> str:
    """The hint for a failed build: a TLS failure is the network's, not the `image:` section's."""
    if _TLS_FAILURE.search(output):
        return (
            "a TLS certificate was not trusted during the build (a TLS-inspecting proxy?): list its CA file in "
            "image.extra_ca_certificates, and set network.proxy if only a proxy reaches the internet"
        )
    return "fix the `image:` section (package names, base image), or run `claude-docker build --verbose` for the full log"


def _short(text: str) -> str:
    return text.strip().splitlines()[-1][:500] if text.strip() else text


def translate_errors(function: F) -> F:
    """Turn SDK and transport exceptions into EngineError at the module boundary."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except EngineError:
            raise
        except (docker.errors.DockerException, requests.exceptions.RequestException, PermissionError, FileNotFoundError) as error:
            raise _translate(error) from None

    return wrapper  # type: ignore[return-value]


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket / docker context"


@dataclass(frozen=True)
class ContainerInfo:
    name: str
    short_id: str
    status: str
    created: str  # ISO timestamp from the engine
    image: str
    labels: dict[str, str]
    env: dict[str, str]
    exit_code: int | None = None  # of a container that ran and ended
    finished: str = ""  # when it ended (the engine's RFC 3339 timestamp); "" while it runs
    tty: bool = False  # it has a terminal (an interactive session one can attach to)


class Engine:
    """A connected Docker client plus the handful of operations claude-docker needs."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.api = client.api
        self._product: str | None = None
        self._inspected: dict[str, dict] = {}  # the last inspect of an image, for image_created
        self._memory_total: concurrent.futures.Future[int] | None = None

    @classmethod
    @translate_errors
    def connect(cls) -> Engine:
        """Honour DOCKER_HOST, then the current `docker context`, then the default socket
        (docker-py's `from_env` does all three since 7.2). Connecting asks the engine for its API
        version, which proves it answers: no separate ping."""
        return cls(docker.from_env(version="auto"))

    @translate_errors
    def version(self) -> dict:
        return self.client.version()

    @property
    def base_url(self) -> str:
        return self.api.base_url

    # --- images ---------------------------------------------------------------------------

    @translate_errors
    def image_labels(self, reference: str) -> dict[str, str] | None:
        """The image's labels, or None when it is not present locally."""
        try:
            attrs = self.api.inspect_image(reference)
        except docker.errors.ImageNotFound:
            return None
        self._inspected[reference] = attrs
        return dict((attrs.get("Config") or {}).get("Labels") or {})

    @translate_errors
    def image_created(self, reference: str) -> str | None:
        """When the image was built (the engine's RFC 3339 timestamp), or None when it is absent.
        Right after `image_labels` of the same reference, from that inspect (one round trip less)."""
        try:
            attrs = self._inspected.pop(reference, None) or self.api.inspect_image(reference)
            return str(attrs.get("Created") or "") or None
        except docker.errors.ImageNotFound:
            return None

    @translate_errors
    def image_size(self, reference: str) -> int | None:
        try:
            return int(self.api.inspect_image(reference)["Size"])
        except docker.errors.ImageNotFound:
            return None

    @translate_errors
    def build(
        self,
        artifacts: dict[str, Artifact],
        *,
        tag: str | None = None,
        buildargs: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        on_output: Callable[[str], None] | None = None,
        no_cache: bool = False,
        pull: bool = False,
    ) -> str:
        """Build from an in-memory tar; stream each output line to `on_output`; return the image id."""
        tail: deque[str] = deque(maxlen=BUILD_TAIL_LINES)
        image_id = None
        stream = self.api.build(
            fileobj=context_tar(artifacts),
            custom_context=True,
            tag=tag,
            buildargs=buildargs or {},
            labels=labels,
            nocache=no_cache,
            pull=pull,
            rm=True,
            forcerm=True,
            decode=True,
        )
        pending = ""  # the engine cuts RUN output anywhere, even inside a line: emit whole lines

        def emit(lines: list[str]) -> None:
            for line in lines:
                line = _ANSI.sub("", line.rstrip("\r"))
                tail.append(line)
                if on_output:
                    on_output(line)

        for chunk in stream:
            if "error" in chunk:
                emit([pending] if pending else [])
                message = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                last = "\n".join(line for line in tail if line.strip())
                raise EngineError(
                    f"image build failed: {message.strip()}" + (f"\n--- last build output ---\n{last}" if last else ""),
                    build_failure_hint(message + "\n" + last),
                )
            if chunk.get("stream"):
                *complete, pending = (pending + chunk["stream"]).split("\n")
                emit(complete)
            elif chunk.get("status"):  # pull progress: one whole message per chunk
                emit([chunk["status"]])
            aux = chunk.get("aux") or {}
            if "ID" in aux:
                image_id = aux["ID"]
        emit([pending] if pending else [])
        if image_id is None:
            raise EngineError("image build finished without an image id", "run `claude-docker build --verbose`")
        return image_id

    def pull_problem(self, reference: str) -> str | None:
        """None when a registry would serve `reference`, else why not (nothing is pulled)."""
        try:
            self.client.images.get_registry_data(reference)
        except Exception as error:  # any registry failure means: cannot pull
            text = str(getattr(error, "explanation", None) or error)
            return text.strip().splitlines()[0][:160] if text.strip() else type(error).__name__
        return None

    def root_dir(self) -> str | None:
        """Where the engine keeps its data (for the free-disk check); None when it does not say."""
        try:
            return self.client.info().get("DockerRootDir")
        except Exception:  # info is best effort; the caller falls back to the default root
            return None

    @translate_errors
    def read_file(self, image: str, path: str) -> str:
        """Read one small file out of an image (no network, removed at once)."""
        output = self.client.containers.run(
            image, entrypoint=["cat", path], network_disabled=True, remove=True, stdout=True, stderr=False
        )
        return output.decode(errors="replace")

    def label_image(self, tag: str, labels: dict[str, str]) -> None:
        """Add labels to the image `tag` (a layer-less build on top of it, re-using the tag)."""
        self.build({"Dockerfile": Artifact(f"FROM {tag}\n".encode())}, tag=tag, labels=labels)

    @translate_errors
    def remove_image(self, reference: str) -> None:
        try:
            self.api.remove_image(reference, force=True)
        except docker.errors.ImageNotFound:
            pass

    # --- containers -----------------------------------------------------------------------

    @translate_errors
    def create(self, plan: ContainerPlan):
        """Create (not start) the container: no capabilities but the listed ones, no new privileges."""
        host_options: dict = dict(
            mounts=[_mount(m) for m in plan.mounts],
            cap_drop=["ALL"],
            cap_add=sorted(plan.cap_add),
            security_opt=["no-new-privileges"],
            init=True,  # reap the zombies of the agent's tool processes
            auto_remove=plan.auto_remove,
        )
        if plan.memory:
            memory = self.auto_memory() if plan.memory == AUTO_MEMORY else plan.memory
            host_options["mem_limit"] = memory
            host_options["memswap_limit"] = memory  # swap counts: the limit is the limit
        if plan.pids_limit:
            host_options["pids_limit"] = plan.pids_limit
        if plan.log_max_size:
            host_options["log_config"] = LogConfig(
                type="json-file",
                config={"max-size": plan.log_max_size, "max-file": str(plan.log_max_files or 1)},
            )
        if plan.cpus:
            host_options["nano_cpus"] = int(plan.cpus * 1e9)
        if plan.shm_size:
            host_options["shm_size"] = plan.shm_size
        if plan.sysctls:
            host_options["sysctls"] = dict(plan.sysctls)
        bindings: dict[int, list[tuple[str, int]]] = {}
        for address, host_port, container_port in plan.ports:
            bindings.setdefault(container_port, []).append((address, host_port))
        if bindings:
            host_options["port_bindings"] = bindings
        if plan.gpus is not None:
            if self.product() == "Podman":
                raise EngineError(
                    "resources.gpus cannot be requested through Podman's Docker-compatible API (it would be ignored)",
                    "remove resources.gpus, or use Docker with the NVIDIA Container Toolkit for GPU sessions",
                )
            count = -1 if str(plan.gpus) == "all" else int(plan.gpus)
            host_options["device_requests"] = [DeviceRequest(count=count, capabilities=[["gpu"]])]
        created = self.api.create_container(
            image=plan.image,
            command=plan.command,
            name=plan.name,
            labels=plan.labels,
            environment=plan.env,
            working_dir=plan.working_dir,
            ports=sorted(bindings) or None,
            tty=plan.tty,
            stdin_open=plan.stdin_open,
            # detach=False is how the SDK spells StdinOnce: the container sees EOF when the
            # client closes stdin (piped headless input). Interactive sessions keep stdin open
            # so that detaching (Ctrl-P Ctrl-Q) does not end them.
            detach=not plan.stdin_once,
            host_config=self.api.create_host_config(**host_options),
        )
        return self.client.containers.prepare_model({"Id": created["Id"]})  # no extra inspect

    def prefetch_auto_memory(self) -> None:
        """Ask the engine for its memory now, in the background, so that `create` does not wait
        for `info` (the engine's slowest answer on the way to a session) after the image check."""
        if self._memory_total is None:
            self._memory_total = concurrent.futures.Future()
            threading.Thread(target=self._fetch_memory_total, args=(self._memory_total,), daemon=True).start()

    def _fetch_memory_total(self, future: concurrent.futures.Future[int]) -> None:
        try:
            future.set_result(int(self.client.info().get("MemTotal") or 0))
        except BaseException as error:  # re-raised (and translated) by auto_memory
            future.set_exception(error)

    @translate_errors
    def auto_memory(self) -> int:
        """`resources.memory: auto`: half the memory of the machine the engine runs on (which
        is a VM under Docker Desktop), so one runaway session cannot take it all."""
        if self._memory_total is not None:
            total = self._memory_total.result()
        else:
            total = int(self.client.info().get("MemTotal") or 0)
        if total <= 0:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total // 2

    @translate_errors
    def start(self, container) -> None:
        container.start()

    @translate_errors
    def resize_tty(self, container, rows: int, columns: int) -> None:
        """Give a container's terminal a size: one nobody attached to has none (0 x 0), and a
        full-screen program such as Claude Code draws nothing into it."""
        container.resize(height=rows, width=columns)

    @translate_errors
    def attach(self, container) -> Iterator[tuple[bytes | None, bytes | None]]:
        """(stdout, stderr) chunks until the container exits; call before `start` to miss nothing."""
        return self.api.attach(container.id, stream=True, logs=True, demux=True)

    @translate_errors
    def status(self, container) -> str:
        try:
            container.reload()
        except docker.errors.NotFound:
            return "removed"
        return container.status

    @translate_errors
    def feed_stdin(self, container, source: BinaryIO) -> threading.Thread:
        """Copy `source` to the container's stdin in the background, then close it (EOF)."""
        sock = self.api.attach_socket(container.id, params={"stdin": 1, "stream": 1})
        raw = getattr(sock, "_sock", sock)

        def pump() -> None:
            try:
                while chunk := source.read1(65536) if hasattr(source, "read1") else source.read(65536):
                    raw.sendall(chunk)
            except OSError:
                pass  # the container went away: nothing left to feed
            finally:
                try:
                    raw.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        thread = threading.Thread(target=pump, name="claude-docker-stdin", daemon=True)
        thread.start()
        return thread

    @translate_errors
    def wait(self, container) -> int:
        return int(container.wait().get("StatusCode", 1))

    @translate_errors
    def stop(self, container, timeout: int = 10) -> None:
        try:
            container.stop(timeout=timeout)
        except docker.errors.NotFound:
            pass

    @translate_errors
    def remove(self, container, force: bool = True) -> None:
        try:
            container.remove(force=force)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            if error.status_code != 409:  # with force, a conflict means the engine is removing it already
                raise

    @translate_errors
    def get(self, name: str):
        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None

    @translate_errors
    def list(self, labels: dict[str, str], brief: bool = False) -> list[ContainerInfo]:
        """The containers with these labels. `brief`: from the list alone, without inspecting
        each (one round trip in all): name, id, status and labels; the rest left empty."""
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        if brief:
            return [
                ContainerInfo(
                    name=(attrs.get("Names") or ["/"])[0].lstrip("/"),
                    short_id=container.short_id,
                    status=container.status,
                    created="",
                    image=attrs.get("Image", ""),
                    labels=dict(attrs.get("Labels") or {}),
                    env={},
                )
                for container in self.client.containers.list(all=True, filters=filters, sparse=True)
                for attrs in [container.attrs]
            ]
        infos = []
        # A container removed between the list and its inspect (another session's `down`, an
        # ended foreground `up`) is simply not listed, rather than failing `ps` for every session.
        for container in self.client.containers.list(all=True, filters=filters, ignore_removed=True):
            attrs = container.attrs
            config = attrs.get("Config") or {}
            env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
            infos.append(
                ContainerInfo(
                    name=container.name,
                    short_id=container.short_id,
                    status=container.status,
                    created=attrs.get("Created", ""),
                    image=config.get("Image", ""),
                    labels=dict(config.get("Labels") or {}),
                    env=env,
                    exit_code=_exit_code(attrs.get("State")),
                    finished=_finished(attrs.get("State"), container.status),
                    tty=bool(config.get("Tty")),
                )
            )
        return sorted(infos, key=lambda info: info.created)

    @translate_errors
    def logs(self, container, follow: bool = False) -> Iterator[bytes]:
        if follow:
            yield from container.logs(stream=True, follow=True)
        else:
            yield container.logs()

    def trial_run(self, image: str) -> int:
        """Create, start and remove a throw-away container with the options every session gets.

        Proves what `version` cannot: that the runtime can start a container at all (an init
        binary, ulimits that fit the host). Returns its exit code; refusals raise EngineError.
        """
        import secrets

        plan = ContainerPlan(
            name=f"claude-docker-doctor-{secrets.token_hex(4)}",
            image=image,
            command=["true"],
            env={},
            labels={"dev.claude-docker.doctor": "1"},
            mounts=[],
            cap_add=[],
            working_dir="/",
        )
        container = self.create(plan)
        try:
            self.start(container)
            return self.wait(container)
        finally:
            self.remove(container)

    def product(self) -> str:
        """'Podman' or 'Docker', from the engine's own version report (asked once)."""
        if self._product is None:
            components = self.version().get("Components") or []
            names = " ".join(str(component.get("Name", "")) for component in components)
            self._product = "Podman" if "podman" in names.lower() else "Docker"
        return self._product


def _exit_code(state: object) -> int | None:
    code = state.get("ExitCode") if isinstance(state, dict) else None
    return code if isinstance(code, int) else None


def _finished(state: object, status: str) -> str:
    """FinishedAt of an ended container; engines report a zero time (0001-01-01) for one that
    never ended, and Podman a time for a running one it restarted."""
    stamp = state.get("FinishedAt") if isinstance(state, dict) else None
    if status in ("running", "created", "paused", "restarting") or not isinstance(stamp, str) or stamp.startswith("0001"):
        return ""
    return stamp


def _mount(mount: BindMount) -> Mount:
    return Mount(target=mount.target, source=mount.source, type="bind", read_only=mount.read_only)


def context_tar(artifacts: dict[str, Artifact]) -> io.BytesIO:
    """An uncompressed tar of the build context, with fixed owners and times (reproducible)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories: set[str] = set()
        for name in sorted(artifacts):
            parts = name.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/".join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            artifact = artifacts[name]
            info = tarfile.TarInfo(name)
            info.size = len(artifact.content)
            info.mode = artifact.mode
            tar.addfile(info, io.BytesIO(artifact.content))
    buffer.seek(0)
    return buffer
