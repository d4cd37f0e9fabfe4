"""The features stage: what each part of the sandbox adds to a run, one module each, behind one
small protocol (features/base.py: `check`, `runtime_artifacts`, `contribute`, `cleanup`).

`FEATURES` is the registry, in the order the run plan asks them (later ones see what earlier
ones added to the spec): the run plan, `render` and session clean-up iterate it and know no
feature by name. The image (image.py) and the approval of workspace config (trust.py) live in
this stage too but are not per-run features: the image is built before a run, approval is asked
before the config is acted on.
"""

from __future__ import annotations

from . import claude_settings, endpoint, filesystem, firewall, git, notifier, persistence
from .base import EndedSession, Feature, RunContext

FEATURES: tuple[Feature, ...] = (
    filesystem,  # the workspace, masks over blocked paths in it, config files read-only, user mounts
    git,  # the repository's hooks and config read-only; nested repositories disarmed
    persistence,  # CLAUDE_CONFIG_DIR, shell history, caches, git config, dotfiles
    firewall,  # capabilities, sysctls, the log dir; init-firewall.sh, dnsmasq.conf, haproxy.cfg
    notifier,  # the session outbox
    claude_settings,  # settings.json (hooks), mcp.json, MCP variables, credentials and provider variables
    endpoint,  # the model endpoint the entrypoint checks, the provider's credentials file
)

__all__ = ["FEATURES", "EndedSession", "Feature", "RunContext"]
