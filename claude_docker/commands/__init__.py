"""Every CLI command, grouped by area, loaded only when it is used.

`claude-docker validate` should not pay for importing the Docker SDK, Jinja or the notifier, so
the main group knows each command's module by name and imports it on first use.
"""

from __future__ import annotations

import importlib

import click

# command name → module under claude_docker.commands that defines it in `COMMANDS`
COMMAND_MODULES: dict[str, str] = {
    "validate": "config_cmds",
    "trust": "config_cmds",
    "config": "config_cmds",
    "render": "config_cmds",
    "schema": "config_cmds",
    "init": "config_cmds",
    "profiles": "config_cmds",
    "completion": "config_cmds",
    "build": "lifecycle_cmds",
    "up": "lifecycle_cmds",
    "down": "lifecycle_cmds",
    "ps": "lifecycle_cmds",
    "logs": "lifecycle_cmds",
    "attach": "lifecycle_cmds",
    "shell": "lifecycle_cmds",
    "doctor": "lifecycle_cmds",
    "notify": "notify_cmds",
    "reset": "state_cmds",
    "blocked": "firewall_cmds",
    "kube": "kube_cmds",
}


def load_command(name: str) -> click.Command | None:
    module_name = COMMAND_MODULES.get(name)
    if module_name is None:
        return None
    module = importlib.import_module(f"{__name__}.{module_name}")
    for command in module.COMMANDS:
        if command.name == name:
            return command
    raise LookupError(f"{module.__name__} does not define the command {name!r}")
