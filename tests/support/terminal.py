"""A command on a pseudo-terminal, driven as a person at a keyboard would (for `attach`)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time


class Terminal:
    """A command on a pseudo-terminal of 45 x 160, with everything it printed kept."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            os.execvpe(argv[0], argv, {**os.environ, **env, "TERM": "xterm-256color"})
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
        self.output = b""
        self.code: int | None = None

    def read_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.text):
                return True
            ready, _, _ = select.select([self.fd], [], [], 0.3)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child ended and the pty closed
                    chunk = b""
                if not chunk:
                    return predicate(self.text)
                self.output += chunk
        return predicate(self.text)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def type(self, keys: str) -> None:
        for char in keys:  # one key at a time, as a person types
            os.write(self.fd, char.encode())
            time.sleep(0.03)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_until(lambda _: False, 0.3)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                return self.code
        raise AssertionError(f"still running after {timeout}s:\n{self.text[-3000:]}")

    def close(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        os.close(self.fd)
