"""The one way tests wait for something to become true."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.02) -> T:
    """Call `predicate` until it returns something true or `timeout` seconds have passed.

    Returns the last value, so `assert wait_for(...)` fails with what was seen last when time ran
    out. The predicate is always called once more at the deadline: a slow poll never loses the
    last chance.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
