#!/bin/sh
# The agent owns its home. Docker creates mount points under it (e.g. ~/.claude, ~/.gitconfig)
# as root before the user exists; without this the agent could not write its own dotfiles.
# Runs as root, non-recursively: bind-mounted host files keep their owner.
# Written to work whether it is executed or sourced (no `exit`, no `set`).
if [ -n "${AGENT_HOME:-}" ] && [ -d "$AGENT_HOME" ] && [ ! -L "$AGENT_HOME" ]; then
    chown "${AGENT_UID:?}:${AGENT_GID:?}" "$AGENT_HOME"
    chmod 0750 "$AGENT_HOME"
fi
