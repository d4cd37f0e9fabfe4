"""What a container needs at run time, assembled from every feature before `create`.

Each feature of the registry (features.FEATURES) gets the run's context and this spec,
`contribute(ctx, spec)`, and adds its mounts, env and capabilities here: the context is what a
run starts from, the spec what it has gathered. The run plan turns the finished spec into a
ContainerPlan, the engine that into Docker SDK arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BindMount:
    source: str  # absolute host path
    target: str  # absolute container path
    read_only: bool = True


@dataclass
class RunSpec:
    mounts: list[BindMount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cap_add: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)  # the container's namespaced kernel settings
    warnings: list[str] = field(default_factory=list)  # printed by the CLI before start

    def bind(self, source: str, target: str, read_only: bool = True) -> None:
        self.mounts.append(BindMount(source, target, read_only))


@dataclass(frozen=True)
class ContainerPlan:
    """Everything `create` needs, in plain data (built by runplan, consumed by the engine)."""

    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    mounts: list[BindMount]
    cap_add: list[str]
    working_dir: str
    tty: bool = False
    stdin_open: bool = False
    stdin_once: bool = False  # close the container's stdin when the client closes it
    auto_remove: bool = False
    memory: str | None = None  # docker syntax, "auto" (half the engine host's memory) or None
    cpus: float | None = None
    gpus: str | int | None = None
    shm_size: str | None = None
    pids_limit: int | None = None
    log_max_size: str | None = None  # json-file rotation; None = the engine's logging default
    log_max_files: int | None = None
    sysctls: dict[str, str] = field(default_factory=dict)
    # Published ports: (host address, host port, container port), TCP; the firewall admits them.
    ports: list[tuple[str, int, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
