"""The one family of errors the CLI turns into a message and an exit code.

Anything raised that is *not* a ClaudeDockerError is a bug and is allowed to show a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class ClaudeDockerError(Exception):
    """A problem the user can fix: one line of what is wrong, one line of hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, located as precisely as we can."""

    file: str
    key_path: str  # e.g. "network.allowed_domains[2]"; "" for the whole document
    line: int | None
    message: str

    def format(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.message}"


class ConfigError(ClaudeDockerError):
    """One or more problems in the configuration files, all reported at once."""

    def __init__(self, problems: list[ConfigProblem], hint: str | None = None) -> None:
        self.problems = list(problems)
        summary = "\n".join(p.format() for p in self.problems)
        super().__init__(summary, hint)


class EngineError(ClaudeDockerError):
    """The Docker engine is unreachable or refused what we asked."""


class FirewallError(ClaudeDockerError):
    """The in-container firewall could not be set up; the session did not start."""


class NotifyError(ClaudeDockerError):
    """A notification backend failed."""
