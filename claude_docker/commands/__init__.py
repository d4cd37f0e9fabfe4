"""Every CLI command, grouped by area; cli.py adds ALL_COMMANDS to the main group."""

from __future__ import annotations

import importlib

import click

# One module per area; each defines `COMMANDS: list[click.Command]`.
_MODULES = ("config_cmds", "lifecycle_cmds", "notify_cmds", "state_cmds", "firewall_cmds")


def _collect() -> list[click.Command]:
    commands: list[click.Command] = []
    for name in _MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        commands.extend(module.COMMANDS)
    return commands


ALL_COMMANDS = _collect()
