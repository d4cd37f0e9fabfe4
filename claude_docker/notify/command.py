"""Command backend: a host program (e.g. notify-send) started without a shell, event JSON on stdin."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass

from ..config.model import CommandNotifierConfig
from ..errors import NotifyError

TIMEOUT_SECONDS = 60


@dataclass
class Command:
    config: CommandNotifierConfig

    @property
    def key(self) -> str:
        return "command:" + hashlib.sha256("\0".join(self.config.argv).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return f"command {os.path.basename(self.config.argv[0])}"

    def send(self, text: str, payload: dict) -> str:
        env = dict(os.environ, CLAUDE_DOCKER_MESSAGE=text, CLAUDE_DOCKER_EVENT=str(payload.get("event", "")))
        try:
            result = subprocess.run(
                list(self.config.argv),
                input=json.dumps(payload).encode(),
                capture_output=True,
                timeout=TIMEOUT_SECONDS,
                env=env,
                check=False,
            )
        except FileNotFoundError:
            raise NotifyError(
                f"{self.label}: program not found: {self.config.argv[0]}",
                "give the full path in notifier.commands[].argv, or install the program",
            ) from None
        except subprocess.TimeoutExpired:
            raise NotifyError(f"{self.label} did not finish within {TIMEOUT_SECONDS}s") from None
        except OSError as error:
            raise NotifyError(f"{self.label} could not start: {error.strerror or error}") from None
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()[-300:]
            raise NotifyError(f"{self.label} exited with {result.returncode}" + (f": {stderr}" if stderr else ""))
        return "accepted (exit 0)"
