"""A stand-in for `claude_docker.engine.Engine`: the same class (a subclass, so mypy checks every
method against the real signature), with an engine in memory behind it.

Images are a dict; a container "runs" when started: `behaviour(plan)` says what it prints and
with which code it exits (default: nothing, 0). A method can be told to fail once with either an
`EngineError` or one of docker-py's own exceptions; the latter pass through the real
`translate_errors` boundary, so the user-facing message is the one the product would show.
Every call is recorded in `calls`, in order.

It complements the engine tests (tests/engine/), which hold the product to a real engine; this
lets `up`, `doctor` and the watcher be tested in milliseconds, on any machine.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterator

from claude_docker.artifacts import Artifact
from claude_docker.engine import ContainerInfo, Engine, translate_errors
from claude_docker.errors import EngineError
from claude_docker.features.image import VERSION_FILE
from claude_docker.runspec import ContainerPlan

FAKE_CREATED = "2026-01-02T03:04:05.000000000Z"


@dataclass
class FakeImage:
    labels: dict[str, str] = field(default_factory=dict)
    created: str = FAKE_CREATED
    size: int = 500 * 1024**2
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    """What a started container does: its output, then its exit."""

    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    keeps_running: bool = False  # until stopped or removed (an interactive session someone detached from)


@dataclass
class FakeContainer:
    id: str
    name: str
    plan: ContainerPlan
    created: str = FAKE_CREATED
    status: str = "created"  # created → running → exited; "removed" once gone
    exit_code: int | None = None
    finished: str = ""  # when it ended, as the engine says it (RFC 3339); "" while it runs
    run: Run | None = None
    stdin: bytes = b""
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def short_id(self) -> str:
        return self.id[:12]


class _NoClient:
    """Stands where the SDK client would: any use of it is a method the fake does not cover yet."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the fake engine has no SDK client (.{name}): give FakeEngine the method that needs it")


class FakeEngine(Engine):
    def __init__(
        self,
        images: dict[str, FakeImage] | None = None,
        *,
        pullable: tuple[str, ...] = (),
        behaviour: Callable[[ContainerPlan], Run] | None = None,
        product: str = "Docker",
        claude_code_version: str = "2.1.32",
        root_dir: str | None = None,
        memory_total: int = 8 * 1024**3,
    ) -> None:
        # No super().__init__: there is no client; _NoClient makes a forgotten override loud.
        self.client = _NoClient()
        self.api = _NoClient()
        self._product = product
        self.images: dict[str, FakeImage] = dict(images or {})
        self.pullable = set(pullable)
        self.behaviour = behaviour or (lambda plan: Run())
        self.claude_code_version = claude_code_version
        self._root_dir = root_dir
        self.memory_total = memory_total
        self.containers: dict[str, FakeContainer] = {}  # by name, while they exist
        self.created: list[FakeContainer] = []  # every container ever created, removed ones too
        self.builds: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []  # (method, its main argument)
        self._failures: dict[str, list[BaseException]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # --- test controls -------------------------------------------------------------------

    def fail(self, method: str, error: BaseException, times: int = 1) -> None:
        """Make the next `times` calls of `method` raise `error` (docker-py errors are translated)."""
        self._failures.setdefault(method, []).extend([error] * times)

    def add_container(
        self, name: str, labels: dict[str, str], *, status: str = "exited", exit_code: int | None = 0, finished: str = FAKE_CREATED
    ) -> FakeContainer:
        """A container that exists already (an earlier session's), without the calls that made it."""
        plan = ContainerPlan(name=name, image="claude-docker:earlier", command=[], env={}, labels=labels, mounts=[], cap_add=[], working_dir="/")
        container = FakeContainer(
            id=f"{next(self._ids):064x}", name=name, plan=plan, status=status, exit_code=exit_code,
            finished=finished if status != "running" else "",
        )
        if status != "running":
            container.ended.set()
        self.containers[name] = container
        self.created.append(container)
        return container

    def finish(self, name: str, exit_code: int) -> None:
        """A running container ends on its own (the agent finished, or crashed)."""
        self._end(self.containers[name], exit_code)

    def called(self, method: str) -> list[str]:
        return [argument for name, argument in self.calls if name == method]

    def _enter(self, method: str, argument: str = "") -> None:
        with self._lock:
            self.calls.append((method, argument))
            queued = self._failures.get(method)
            error = queued.pop(0) if queued else None
        if error is not None:
            raise error

    def _container(self, container: Any) -> FakeContainer:
        assert isinstance(container, FakeContainer), f"not a container of this engine: {container!r}"
        return container

    # --- the engine ----------------------------------------------------------------------

    @translate_errors
    def version(self) -> dict:
        self._enter("version")
        name = "Podman Engine" if self._product == "Podman" else "Engine"
        return {"Version": "27.0.0-fake", "ApiVersion": "1.47", "Components": [{"Name": name}]}

    @property
    def base_url(self) -> str:
        return "http+docker://localhost"

    @translate_errors
    def image_labels(self, reference: str) -> dict[str, str] | None:
        self._enter("image_labels", reference)
        image = self.images.get(reference)
        return dict(image.labels) if image is not None else None

    @translate_errors
    def image_created(self, reference: str) -> str | None:
        self._enter("image_created", reference)
        image = self.images.get(reference)
        return image.created if image is not None else None

    @translate_errors
    def image_size(self, reference: str) -> int | None:
        self._enter("image_size", reference)
        image = self.images.get(reference)
        return image.size if image is not None else None

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
        self._enter("build", tag or "")
        dockerfile = artifacts["Dockerfile"].content.decode()
        stages: set[str] = set()
        for line in dockerfile.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0].upper() == "FROM":
                base = words[1]
                if len(words) >= 4 and words[2].upper() == "AS":
                    stages.add(words[3])
                if base not in stages and base not in self.images and base not in self.pullable:
                    raise EngineError(
                        f"image build failed: pull access denied for {base}, repository does not exist",
                        "fix the `image:` section (package names, base image), or run `claude-docker build --verbose` for the full log",
                    )
        self.builds.append({"tag": tag, "artifacts": artifacts, "buildargs": buildargs, "no_cache": no_cache, "pull": pull})
        if on_output:
            on_output(f"Step 1/1 : FROM {dockerfile.split()[1] if dockerfile.split() else '?'}")
        image_id = "sha256:" + hashlib.sha256(repr(sorted((k, v.content) for k, v in artifacts.items())).encode()).hexdigest()
        previous = self.images.get(tag) if tag else None
        image = FakeImage(
            labels={**(previous.labels if previous else {}), **(labels or {})},
            files={VERSION_FILE: self.claude_code_version + "\n"},
        )
        self.images[image_id] = image
        if tag:
            self.images[tag] = image
        return image_id

    def pull_problem(self, reference: str) -> str | None:
        self._enter("pull_problem", reference)
        return None if reference in self.pullable else f"pull access denied for {reference}"

    def root_dir(self) -> str | None:
        self._enter("root_dir")
        return self._root_dir

    @translate_errors
    def read_file(self, image: str, path: str) -> str:
        self._enter("read_file", f"{image}:{path}")
        found = self.images.get(image)
        if found is None or path not in found.files:
            raise EngineError(f"the Docker engine refused: cat: {path}: No such file or directory", "run `claude-docker doctor` to check the engine")
        return found.files[path]

    def label_image(self, tag: str, labels: dict[str, str]) -> None:
        self._enter("label_image", tag)
        self.images[tag].labels.update(labels)

    @translate_errors
    def remove_image(self, reference: str) -> None:
        self._enter("remove_image", reference)
        self.images.pop(reference, None)

    # --- containers ----------------------------------------------------------------------

    @translate_errors
    def create(self, plan: ContainerPlan) -> FakeContainer:
        self._enter("create", plan.name)
        if plan.image not in self.images:
            raise EngineError(f"the image could not be found or pulled: No such image: {plan.image}", "check image.base")
        if plan.name in self.containers:
            raise EngineError(f'the engine refused: Conflict. The container name "/{plan.name}" is already in use', "remove the old container with `claude-docker down`")
        container = FakeContainer(id=f"{next(self._ids):064x}", name=plan.name, plan=plan)
        self.containers[plan.name] = container
        self.created.append(container)
        return container

    def prefetch_auto_memory(self) -> None:
        self._enter("prefetch_auto_memory")

    @translate_errors
    def auto_memory(self) -> int:
        self._enter("auto_memory")
        return self.memory_total // 2

    @translate_errors
    def start(self, container: Any) -> None:
        box = self._container(container)
        self._enter("start", box.name)
        if box.status == "removed":
            raise EngineError(f"the Docker engine has no such object: No such container: {box.name}", "`claude-docker ps` lists the sessions")
        box.run = self.behaviour(box.plan)
        box.status = "running"
        if not box.run.keeps_running:
            self._end(box, box.run.exit_code)

    def _end(self, box: FakeContainer, code: int) -> None:
        box.exit_code = code
        box.finished = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        if box.status != "removed":
            box.status = "exited"
        box.ended.set()
        if box.plan.auto_remove:
            self._forget(box)

    def _forget(self, box: FakeContainer) -> None:
        box.status = "removed"
        self.containers.pop(box.name, None)
        box.ended.set()

    @translate_errors
    def attach(self, container: Any) -> Iterator[tuple[bytes | None, bytes | None]]:
        box = self._container(container)
        self._enter("attach", box.name)

        def stream() -> Iterator[tuple[bytes | None, bytes | None]]:
            box.ended.wait()
            if box.run is not None:
                if box.run.stdout:
                    yield box.run.stdout, None
                if box.run.stderr:
                    yield None, box.run.stderr

        return stream()

    @translate_errors
    def status(self, container: Any) -> str:
        box = self._container(container)
        self._enter("status", box.name)
        return box.status

    @translate_errors
    def feed_stdin(self, container: Any, source: BinaryIO) -> threading.Thread:
        box = self._container(container)
        self._enter("feed_stdin", box.name)

        def pump() -> None:
            box.stdin += source.read()

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        thread.join()  # before start: the container reads all of it
        return thread

    @translate_errors
    def wait(self, container: Any) -> int:
        box = self._container(container)
        self._enter("wait", box.name)
        box.ended.wait()
        return box.exit_code if box.exit_code is not None else 1

    @translate_errors
    def stop(self, container: Any, timeout: int = 10) -> None:
        box = self._container(container)
        self._enter("stop", box.name)
        if box.status == "running":
            self._end(box, 137)

    @translate_errors
    def remove(self, container: Any, force: bool = True) -> None:
        box = self._container(container)
        self._enter("remove", box.name)
        if box.status == "running":
            self._end(box, 137)
        self._forget(box)

    @translate_errors
    def get(self, name: str) -> FakeContainer | None:
        self._enter("get", name)
        return self.containers.get(name)

    @translate_errors
    def list(self, labels: dict[str, str], brief: bool = False) -> list[ContainerInfo]:
        self._enter("list brief" if brief else "list", ",".join(f"{k}={v}" for k, v in labels.items()))
        return [
            ContainerInfo(
                name=box.name,
                short_id=box.short_id,
                status=box.status,
                created="" if brief else box.created,
                image=box.plan.image,
                labels=dict(box.plan.labels),
                env={} if brief else dict(box.plan.env),
                exit_code=None if brief else box.exit_code,
                finished="" if brief else box.finished,
                tty=False if brief else box.plan.tty,
            )
            for box in self.containers.values()
            if all(box.plan.labels.get(key) == value for key, value in labels.items())
        ]

    @translate_errors
    def logs(self, container: Any, follow: bool = False) -> Iterator[bytes]:
        box = self._container(container)
        self._enter("logs", box.name)
        if follow:
            box.ended.wait()
        if box.run is not None:
            yield box.run.stdout + box.run.stderr
