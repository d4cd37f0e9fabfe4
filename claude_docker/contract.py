"""What the host and the container share, written down once.

The host code reads these values directly; the container's shell scripts (the entrypoint and the
helpers in container/bin/) are Jinja templates rendered with `template_context()`, so no list is
kept in step by hand on two sides. Changing a value here changes the image's build context, and
with it the image tag.
"""

from __future__ import annotations

from typing import Mapping

# --- container paths ------------------------------------------------------------------------

CONTAINER_ROOT = "/opt/claude-docker"
CONTAINER_BIN = f"{CONTAINER_ROOT}/bin"  # helper scripts baked into the image
CONTAINER_RUNTIME = f"{CONTAINER_ROOT}/runtime"  # rendered runtime artifacts, mounted read-only
CONTAINER_OUTBOX = "/run/claude-docker/outbox"  # hook events for the host notifier (agent-writable)
CONTAINER_PROGRESS = "/run/claude-docker/progress"  # progress records for `logs --follow` (agent-writable)
PROGRESS_FILE = "progress.jsonl"  # in CONTAINER_PROGRESS; moved to PROGRESS_FILE.1 past PROGRESS_MAX_BYTES
PROGRESS_MAX_BYTES = 1024 * 1024
PROGRESS_RECORD_BYTES = 4096  # the hook cuts each record (the event JSON) here
CONTAINER_LOG_DIR = "/run/claude-docker/log"  # firewall logs read by the host (root-writable only)
DNS_LOG_NAME = "dns.log"  # dnsmasq's query log, in CONTAINER_LOG_DIR
PROXY_LOG_NAME = "proxy.log"  # the name-checking proxy's log, in CONTAINER_LOG_DIR
PACKET_LOG_NAME = "packets.log"  # refused packets (NFLOG through ulogd), in CONTAINER_LOG_DIR
AGENT_USER = "agent"
AGENT_HOME = "/home/agent"
CLAUDE_CONFIG_DIR = "/home/agent/.claude"  # persisted login + .claude.json (CLAUDE_CONFIG_DIR)

# --- exit codes the entrypoint uses before Claude starts (distinct from anything Claude returns)

EXIT_FIREWALL_FAILED = 70
EXIT_SETUP_FAILED = 71
EXIT_ENDPOINT_UNREACHABLE = 72  # the model endpoint refused or did not answer a TCP connection

# --- container labels (`ps`, `down` and `logs` find sessions by them) -----------------------

LABEL_PREFIX = "dev.claude-docker"
LABEL_MANAGED = f"{LABEL_PREFIX}.managed"
LABEL_PROJECT = f"{LABEL_PREFIX}.project"
LABEL_SESSION = f"{LABEL_PREFIX}.session"
LABEL_CONFIG_HASH = f"{LABEL_PREFIX}.config-hash"
LABEL_WORKSPACE = f"{LABEL_PREFIX}.workspace"
LABEL_CONFIG_FILE = f"{LABEL_PREFIX}.config-file"
LABEL_PROTECT_GIT = f"{LABEL_PREFIX}.protect-git"  # "0": `down` leaves the workspace's git dirs alone
LABEL_IMAGE = f"{LABEL_PREFIX}.image"
# "1": started with `up --detach` (without --keep): kept after it ends so `logs` and `ps` can show
# its output and exit code, and removed by the first `up` or `down` SESSION_KEEP_DAYS after its end.
LABEL_DETACHED = f"{LABEL_PREFIX}.detached"
# ... and on images
LABEL_CLAUDE_CODE_VERSION = f"{LABEL_PREFIX}.claude-code-version"
LABEL_CONTEXT_HASH = f"{LABEL_PREFIX}.image-hash"

# --- hook events ------------------------------------------------------------------------------

# Claude Code hook name → the event kind the hook helper writes into the outbox (the names users
# write in `notifier.on`).
HOOK_EVENTS: Mapping[str, str] = {
    "Stop": "stop",
    "Notification": "notification",
    "StopFailure": "failure",
    "SessionEnd": "session_end",
}
EVENT_KINDS = tuple(HOOK_EVENTS.values())
HOOK_HELPER = f"{CONTAINER_BIN}/hook-event"  # `hook-event KIND` < the hook's event JSON
PROGRESS_HOOK_HELPER = f"{CONTAINER_BIN}/hook-progress"  # `hook-progress` < the hook's event JSON

# --- the environment ------------------------------------------------------------------------

# PATH and what the dynamic loader or bash act on before a script's first line runs. Set from
# `claude.env` in the container's environment, they would steer the root phase of the next
# start (the entrypoint, and `docker exec` before its privilege drop) to files the agent wrote,
# e.g. PATH=/workspace/.venv/bin:... and a planted `.venv/bin/id`. So they travel under a prefix
# and the entrypoint sets them for the agent only, after the drop.
AGENT_ONLY_VARIABLES = ("PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV")
AGENT_ONLY_PREFIX = "CLAUDE_DOCKER_AGENT_"

# --- the privilege drop ---------------------------------------------------------------------


def drop_privileges(uid: str, gid: str) -> list[str]:
    """The argv prefix that runs a command as the agent: its uid/gid and groups, no capabilities
    (inheritable and bounding sets emptied), no-new-privileges. The entrypoint, `check-endpoint`
    and `shell` (docker exec) all use this one."""
    return [
        "setpriv", "--reuid", uid, "--regid", gid, "--init-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]


def template_context() -> dict[str, object]:
    """The contract as the container's templates see it (plain, deterministic values)."""
    return {
        "container_root": CONTAINER_ROOT,
        "container_bin": CONTAINER_BIN,
        "container_runtime": CONTAINER_RUNTIME,
        "container_outbox": CONTAINER_OUTBOX,
        "container_progress": CONTAINER_PROGRESS,
        "progress_file": PROGRESS_FILE,
        "progress_max_bytes": PROGRESS_MAX_BYTES,
        "progress_record_bytes": PROGRESS_RECORD_BYTES,
        "container_log_dir": CONTAINER_LOG_DIR,
        "dns_log": f"{CONTAINER_LOG_DIR}/{DNS_LOG_NAME}",
        "agent_user": AGENT_USER,
        "agent_home": AGENT_HOME,
        "exit_firewall_failed": EXIT_FIREWALL_FAILED,
        "exit_setup_failed": EXIT_SETUP_FAILED,
        "exit_endpoint_unreachable": EXIT_ENDPOINT_UNREACHABLE,
        "event_kinds": EVENT_KINDS,
        "agent_only_variables": AGENT_ONLY_VARIABLES,
        "agent_only_prefix": AGENT_ONLY_PREFIX,
        # the drop for the shell side, with the uid/gid taken from the environment at run time
        "drop_privileges": drop_privileges("$AGENT_UID", "$AGENT_GID"),
    }
