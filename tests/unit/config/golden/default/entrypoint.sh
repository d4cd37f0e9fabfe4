#!/bin/bash
# claude-docker entrypoint. Runs as root only long enough to set the container up, then
# becomes the unprivileged agent user for good: no capabilities (effective, inheritable,
# bounding), no-new-privileges, so nothing the agent runs can widen the sandbox again.
#
#   entrypoint.sh [claude args...]     start Claude Code
#   entrypoint.sh --exec CMD [ARGS...]  run CMD as the agent instead (diagnostics and tests)
set -euo pipefail

RUNTIME=/opt/claude-docker/runtime
BIN=/opt/claude-docker/bin
AGENT_USER=agent
AGENT_HOME=/home/agent
EXIT_FIREWALL_FAILED=70
EXIT_SETUP_FAILED=71
EXIT_ENDPOINT_UNREACHABLE=72

fail() { # exit-code message
    local code="$1"
    shift
    printf 'claude-docker: %s\n' "$*" >&2
    exit "$code"
}

[ "$(id -u)" -eq 0 ] || fail "$EXIT_SETUP_FAILED" "the entrypoint must start as root (it drops to the agent user itself)"

# 0. The credentials the sandbox proxy adds on the way out (CLAUDE_DOCKER_SECRET_*): out of the
#    environment before anything else runs. The firewall script gets them (exported by the shell,
#    never on a command line) for the proxy alone; nothing else, the agent least, ever has them.
proxy_secrets=()
for secret in ${!CLAUDE_DOCKER_SECRET_@}; do
    proxy_secrets+=("$secret=${!secret}")
    unset "$secret"
done

# 1. The agent user, with the uid/gid of the host user so workspace files stay theirs.
AGENT_UID="${AGENT_UID:-1000}"
AGENT_GID="${AGENT_GID:-$AGENT_UID}"
case "$AGENT_UID$AGENT_GID" in
    *[!0-9]*) fail "$EXIT_SETUP_FAILED" "AGENT_UID and AGENT_GID must be numbers (got '$AGENT_UID' and '$AGENT_GID')" ;;
esac
[ "$AGENT_UID" -ne 0 ] && [ "$AGENT_GID" -ne 0 ] || fail "$EXIT_SETUP_FAILED" "the agent must not run as root (uid/gid 0); set claude.uid/claude.gid"
for reserved in dnsmasq haproxy ulog; do
    if [ "$(id -u "$reserved" 2>/dev/null || echo none)" = "$AGENT_UID" ]; then
        fail "$EXIT_SETUP_FAILED" "uid $AGENT_UID is reserved for the firewall's $reserved; set claude.uid to another uid"
    fi
done

ensure_agent_user() {
    local existing
    # Whoever holds the uid or the name already (e.g. the `node` user of node images) makes way.
    existing="$(getent passwd "$AGENT_UID" | cut -d: -f1 || true)"
    if [ -n "$existing" ] && [ "$existing" != "$AGENT_USER" ]; then
        userdel "$existing" >/dev/null 2>&1 || fail "$EXIT_SETUP_FAILED" "cannot free uid $AGENT_UID from user $existing"
    fi
    if getent passwd "$AGENT_USER" >/dev/null && [ "$(id -u "$AGENT_USER")" != "$AGENT_UID" ]; then
        userdel "$AGENT_USER" >/dev/null 2>&1 || return 1
    fi
    local group
    group="$(getent group "$AGENT_GID" | cut -d: -f1 || true)"
    if [ -z "$group" ]; then
        if getent group "$AGENT_USER" >/dev/null; then
            groupmod -g "$AGENT_GID" "$AGENT_USER" || return 1
        else
            groupadd -g "$AGENT_GID" "$AGENT_USER" || return 1
        fi
    fi
    if ! getent passwd "$AGENT_USER" >/dev/null; then
        useradd -u "$AGENT_UID" -g "$AGENT_GID" -d "$AGENT_HOME" -M -s /bin/bash "$AGENT_USER" || return 1
    else
        usermod -g "$AGENT_GID" -d "$AGENT_HOME" "$AGENT_USER" >/dev/null || return 1
    fi
    mkdir -p "$AGENT_HOME" || return 1
    chown "$AGENT_UID:$AGENT_GID" "$AGENT_HOME" || return 1
}
# Created while the firewall is set up (it touches only /etc/passwd, /etc/group and the home;
# the firewall names no user but its own), and waited for before anything runs as the agent.
ensure_agent_user &
agent_user_pid=$!

# 2. The egress firewall, before anything can open a connection as the agent. Fail closed.
if [ "${CLAUDE_DOCKER_FIREWALL:-0}" = "1" ]; then
    if [ ! -x "$RUNTIME/init-firewall.sh" ]; then
        fail "$EXIT_FIREWALL_FAILED" "firewall requested but $RUNTIME/init-firewall.sh is missing; the session did not start"
    fi
    # shellcheck disable=SC2163 # each entry is NAME=value
    if ! (for secret in "${proxy_secrets[@]}"; do export "$secret"; done; exec "$RUNTIME/init-firewall.sh"); then
        fail "$EXIT_FIREWALL_FAILED" "the firewall could not be set up; the session did not start (see the messages above)"
    fi
fi

proxy_secrets=()

wait "$agent_user_pid" || fail "$EXIT_SETUP_FAILED" "could not create the agent user (uid $AGENT_UID, gid $AGENT_GID)"

# 3. Setup steps contributed by features (persistence, notifications...), as root, in order.
export AGENT_UID AGENT_GID AGENT_HOME AGENT_USER
if [ -d "$BIN/setup.d" ]; then
    for step in "$BIN"/setup.d/*.sh; do
        [ -e "$step" ] || continue
        if ! bash "$step"; then
            fail "$EXIT_SETUP_FAILED" "setup step $(basename "$step") failed; the session did not start"
        fi
    done
fi

# 4. Become the agent for good.
export HOME="$AGENT_HOME" USER="$AGENT_USER" LOGNAME="$AGENT_USER" SHELL=/bin/bash
unset CLAUDE_DOCKER_FIREWALL
# claude.env's PATH and loader variables arrive prefixed (contract.AGENT_ONLY_VARIABLES): they
# must not steer anything root runs, so `env` sets them only once the agent has taken over.
agent_env=()
for name in PATH LD_PRELOAD LD_LIBRARY_PATH LD_AUDIT BASH_ENV ENV; do
    carried=CLAUDE_DOCKER_AGENT_"$name"
    if [ -n "${!carried+x}" ]; then
        agent_env+=("$name=${!carried}")
        unset "$carried"
    fi
done
drop=(setpriv --reuid "$AGENT_UID" --regid "$AGENT_GID" --init-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- /usr/bin/env "${agent_env[@]}")

if [ "${1:-}" = "--exec" ]; then
    shift
    [ "$#" -gt 0 ] || fail "$EXIT_SETUP_FAILED" "--exec needs a command"
    exec "${drop[@]}" "$@"
fi

# 5. The model endpoint must accept a connection through the firewall before Claude starts, so
#    a blocked endpoint stops the session in seconds (see bin/check-endpoint). Asking Claude Code
#    only for its version or its help talks to no endpoint.
needs_endpoint=1
case " $* " in
    *" --version "* | *" -v "* | *" --help "* | *" -h "*) needs_endpoint=0 ;;
esac
if [ "$needs_endpoint" = 1 ] && [ -n "${CLAUDE_DOCKER_ENDPOINT_HOST:-}" ] && ! "$BIN/check-endpoint"; then
    fail "$EXIT_ENDPOINT_UNREACHABLE" "the model endpoint is not reachable; the session did not start"
fi

claude=(claude)
[ "${CLAUDE_DOCKER_SKIP_PERMISSIONS:-0}" = "1" ] && claude+=(--dangerously-skip-permissions)
[ -f "$RUNTIME/settings.json" ] && claude+=(--settings "$RUNTIME/settings.json")
[ -f "$RUNTIME/mcp.json" ] && claude+=(--mcp-config "$RUNTIME/mcp.json")
exec "${drop[@]}" "${claude[@]}" "$@"
