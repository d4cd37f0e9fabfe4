"""How many examples a property test draws.

The full run (scripts/test.sh, which sets CLAUDE_DOCKER_TEST_THOROUGH=1) draws every example a
test asks for; a quick `python3 -m pytest tests/unit` draws a third of them (at least five), new
ones each run, so that the unit loop stays fast and the full run keeps its breadth.
"""

from __future__ import annotations

import os

THOROUGH = os.environ.get("CLAUDE_DOCKER_TEST_THOROUGH") == "1"


def examples(full: int) -> int:
    return full if THOROUGH else max(5, full // 3)
