"""The features stage: what each part of the sandbox adds to a run, one module each, behind one
small protocol (features/base.py: `check`, `runtime_artifacts`, `contribute`, `cleanup`).

`FEATURES` is the registry, in the order the run plan asks them (later ones see what earlier
ones added to the spec): the run plan, `render` and session clean-up iterate it and know no
feature by name. The image (image.py) and the approval of workspace config (trust.py) live in
this stage too but are not per-run features: the image is built before a run, approval is asked
before the config is acted on.
"""

from __future__ import annotations

from typing import Mapping

from ..config.pipeline import LoadedConfig
from ..errors import ConfigError, ConfigProblem
from . import claude_settings, credentials, endpoint, filesystem, firewall, git, notifier, persistence, progress
from .base import EndedSession, Feature, RunContext, merged_environment

FEATURES: tuple[Feature, ...] = (
    filesystem,  # the workspace, masks over blocked paths in it, config files read-only, user mounts
    git,  # the repository's hooks and config read-only; nested repositories disarmed
    persistence,  # CLAUDE_CONFIG_DIR (before claude_settings seeds it), shell history, caches, git config, dotfiles
    firewall,  # capabilities, sysctls, the log dir; init-firewall.sh, dnsmasq.conf, haproxy.cfg, ulogd.conf
    notifier,  # the session outbox
    progress,  # the session's progress dir (hook records `logs --follow` shows)
    claude_settings,  # the seeded .claude.json and user settings; settings.json (hooks), mcp.json; MCP, credential, provider variables
    credentials,  # placeholders for the agent, the real credentials for the sandbox proxy alone
    endpoint,  # the model endpoint the entrypoint checks, the provider's credentials file
)



def check(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> list[ConfigProblem]:
    """Every feature's `check` over a loaded config, with the environment over the env file."""
    environment = merged_environment(loaded.config, environ)
    return [problem for feature in FEATURES for problem in feature.check(loaded.config, environment, loaded.locate)]


def require_runnable(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> None:
    """Raise what `up` would refuse about this config in this environment: `validate` and `up`
    both call this after loading the config, so they refuse the same things the same way."""
    problems = check(loaded, environ)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise ConfigError(problems, f"{len(problems)} {noun} found; fix them where the lines above point")


__all__ = ["FEATURES", "EndedSession", "Feature", "RunContext", "check", "require_runnable"]
