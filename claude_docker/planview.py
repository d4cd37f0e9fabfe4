"""`up --dry-run`: what the next session's container would get, without creating it.

The plan is the one `up` builds (runplan.plan), so the view cannot drift from what runs:
capabilities, every mount with its mode, published ports, the names of the environment variables (never their
values: API keys are among them), resource limits, the image tag and whether a build is needed.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass
from typing import Mapping

from . import runplan
from .config.model import Config
from .contract import LABEL_CLAUDE_CODE_VERSION
from .errors import ClaudeDockerError
from .features.image import build_context, image_tag
from .runspec import ContainerPlan
from .session import Session

# What each capability the container starts with is for; the agent's process has none.
CAPABILITY_USES = {
    "NET_ADMIN": "the firewall (iptables, ipset)",
    "NET_RAW": "the firewall (iptables, ipset)",
    "NET_BIND_SERVICE": "the firewall (dnsmasq on port 53)",
    "SETUID": "the switch to the agent user",
    "SETGID": "the switch to the agent user",
    "SETPCAP": "emptying the bounding set",
    "CHOWN": "preparing the agent's home and persisted dirs",
    "DAC_OVERRIDE": "preparing the agent's home and persisted dirs",
    "FOWNER": "preparing the agent's home and persisted dirs",
}


@dataclass(frozen=True)
class Preview:
    plan: ContainerPlan
    image_tag: str
    image_state: str  # "present (Claude Code 2.1.3)", "to be built", or why it is not known


def preview(
    cfg: Config,
    extra_args: tuple[str, ...] = (),
    *,
    interactive: bool = True,
    environ: Mapping[str, str] | None = None,
    engine=None,
) -> Preview:
    """The plan `up` would create. The persisted state dirs are prepared as `up` would (they
    are what gets mounted); the throw-away session dir is removed again."""
    tag = image_tag(build_context(cfg.image))
    session = Session(cfg.project_name, "dry-run")
    try:
        plan = runplan.plan(
            cfg, session, tag, extra_args, interactive=interactive, environ=os.environ if environ is None else environ,
        )
    finally:
        shutil.rmtree(session.session_dir, ignore_errors=True)
    return Preview(plan, tag, _image_state(tag, engine))


def _image_state(tag: str, engine) -> str:
    try:
        if engine is None:
            from .engine import Engine

            engine = Engine.connect()
        labels = engine.image_labels(tag)
    except ClaudeDockerError as error:
        return f"unknown: {error.message.splitlines()[0]}"
    if labels is None:
        return "to be built"
    return f"present (Claude Code {labels.get(LABEL_CLAUDE_CODE_VERSION, 'unknown')})"


def describe(view: Preview) -> list[str]:
    """The plan as lines for a terminal, grouped the way `docker inspect` would show them."""
    plan = view.plan
    lines = [f"image: {view.image_tag} ({view.image_state})", f"command: claude {' '.join(plan.command)}".rstrip()]
    uses: dict[str, list[str]] = {}
    for capability in plan.cap_add:
        uses.setdefault(CAPABILITY_USES.get(capability, "entrypoint"), []).append(capability)
    lines.append("capabilities (the entrypoint's; Claude Code runs with none):")
    lines += [f"  {', '.join(names)}: {use}" for use, names in uses.items()]
    lines.append("mounts:")
    for mount in plan.mounts:
        mode = "ro" if mount.read_only else "rw"
        lines.append(f"  {mode}  {mount.source} -> {mount.target}")
    lines.append("environment (names only):")
    lines += textwrap.wrap(" ".join(sorted(plan.env)), width=98, initial_indent="  ", subsequent_indent="  ")
    unset = {"memory": "no limit", "cpus": "no limit", "gpus": "none", "shm_size": "engine default (64m)"}
    limits = {"memory": plan.memory, "cpus": plan.cpus, "gpus": plan.gpus, "shm_size": plan.shm_size}
    lines.append("resources: " + ", ".join(
        f"{name} {unset[name] if value is None else value}" for name, value in limits.items()
    ))
    if plan.ports:
        lines.append("published ports (TCP; the firewall admits inbound connections to these only):")
        lines += [f"  {address}:{host_port} -> {container_port}" for address, host_port, container_port in plan.ports]
    else:
        lines.append("published ports: none (inbound connections are dropped)")
    if plan.sysctls:
        lines.append("sysctls: " + ", ".join(f"{name}={value}" for name, value in sorted(plan.sysctls.items())))
    lines += [f"warning: {warning}" for warning in plan.warnings]
    return lines
