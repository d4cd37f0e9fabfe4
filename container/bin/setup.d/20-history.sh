#!/bin/sh
# Shell history in the persisted dir ($CLAUDE_DOCKER_HISTORY_DIR, set when
# persistence.shell_history is on), written after every command so `docker kill` loses nothing:
# bash appends from PROMPT_COMMAND, zsh with INC_APPEND_HISTORY.
# Runs as root, which may lack CAP_DAC_OVERRIDE: it only edits the image's own rc files and
# leaves the persisted (agent-owned) dir alone; the shells create their files there.
# Works whether it is executed or sourced (no `exit`, no `set`).
claude_docker_marker="# claude-docker: persisted shell history"
if [ -n "${CLAUDE_DOCKER_HISTORY_DIR:-}" ]; then
    if [ -f /etc/bash.bashrc ] && ! grep -qF "$claude_docker_marker" /etc/bash.bashrc; then
        cat >>/etc/bash.bashrc <<'BASHRC'

# claude-docker: persisted shell history
if [ -n "${CLAUDE_DOCKER_HISTORY_DIR:-}" ]; then
    HISTFILE="$CLAUDE_DOCKER_HISTORY_DIR/bash_history"
    HISTSIZE=100000
    HISTFILESIZE=100000
    shopt -s histappend
    PROMPT_COMMAND="history -a${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
fi
BASHRC
    fi
    if [ -d /etc/zsh ] && ! grep -qF "$claude_docker_marker" /etc/zsh/zshrc 2>/dev/null; then
        cat >>/etc/zsh/zshrc <<'ZSHRC'

# claude-docker: persisted shell history
if [ -n "${CLAUDE_DOCKER_HISTORY_DIR:-}" ]; then
    HISTFILE="$CLAUDE_DOCKER_HISTORY_DIR/zsh_history"
    HISTSIZE=100000
    SAVEHIST=100000
    setopt INC_APPEND_HISTORY
fi
ZSHRC
    fi
fi
unset claude_docker_marker
