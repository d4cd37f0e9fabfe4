"""The import direction: every module belongs to one stage and imports only from its own stage or
lower ones, and no modules import each other in a circle. Imports inside functions count too (a
lazy import is still a dependency). docs/architecture.md describes the same table.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.testbed import REPO_ROOT

PACKAGE = REPO_ROOT / "claude_docker"

# Lowest first. A module may import modules of its own stage or of the stages before it.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("base", (
        "claude_docker", "claude_docker.errors", "claude_docker.paths", "claude_docker.resources", "claude_docker.atomicfile",
        "claude_docker.artifacts", "claude_docker.session", "claude_docker.runspec", "claude_docker.contract",
    )),
    ("config", (
        "claude_docker.config", "claude_docker.config.loader", "claude_docker.config.interpolate", "claude_docker.config.merge", "claude_docker.config.profiles",
        "claude_docker.config.validate", "claude_docker.config.model", "claude_docker.config.config_values", "claude_docker.config.build_model",
        "claude_docker.config.pipeline", "claude_docker.config.blocked_paths",
    )),
    ("features", (
        "claude_docker.features", "claude_docker.features.filesystem", "claude_docker.features.persistence",
        "claude_docker.features.firewall", "claude_docker.features.firewall.plan", "claude_docker.features.firewall.log",
        "claude_docker.features.image",
        "claude_docker.features.endpoint", "claude_docker.features.base", "claude_docker.features.git",
        "claude_docker.features.notifier", "claude_docker.features.credentials", "claude_docker.features.progress",
        "claude_docker.features.claude_settings", "claude_docker.features.trust", "claude_docker.notify", "claude_docker.notify.events",
        "claude_docker.notify.message", "claude_docker.notify.delivery", "claude_docker.notify.backends",
        "claude_docker.notify.twilio", "claude_docker.notify.webhook", "claude_docker.notify.command",
        "claude_docker.notify.apprise_backend", "claude_docker.notify.pod",
    )),
    ("plan", ("claude_docker.render", "claude_docker.runplan", "claude_docker.kubernetes")),
    ("engine", ("claude_docker.engine",)),
    ("session", (
        "claude_docker.lifecycle", "claude_docker.doctor", "claude_docker.notify.watch", "claude_docker.planview",
        "claude_docker.imagebuild",
    )),
    ("commands", (
        "claude_docker.commands", "claude_docker.commands.options", "claude_docker.commands.config_cmds",
        "claude_docker.commands.firewall_cmds", "claude_docker.commands.lifecycle_cmds",
        "claude_docker.commands.notify_cmds", "claude_docker.commands.state_cmds", "claude_docker.cli",
        "claude_docker.__main__",
        "claude_docker.commands.kube_cmds",
    )),
]

# Imports that still go against the direction, each with the change that removes it. The test
# fails when one of them disappears, so that this list only ever shrinks.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Package modules `name` imports anywhere in its source (top level, functions, TYPE_CHECKING)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from . import filesystem` imports a module; `from .model import Config` a name.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


@functools.lru_cache(maxsize=1)
def graph() -> dict[str, set[str]]:
    """Read once per run: two tests walk the same graph."""
    modules = all_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def stage_of() -> dict[str, int]:
    return {module: index for index, (_, modules) in enumerate(STAGES) for module in modules}


def test_every_module_has_a_stage():
    stages = stage_of()
    assert sorted(set(all_modules()) - set(stages)) == [], "add the new module to STAGES (and docs/architecture.md)"
    assert sorted(set(stages) - set(all_modules())) == [], "STAGES names a module that does not exist"


def test_no_module_imports_a_later_stage():
    stages = stage_of()
    upward = {
        (module, imported)
        for module, imports in graph().items()
        for imported in imports
        if stages[imported] > stages[module]
    }
    names = [name for name, _ in STAGES]
    unexpected = sorted(upward - set(KNOWN_UPWARD))
    assert not unexpected, "\n".join(
        f"{module} ({names[stages[module]]}) imports {imported} ({names[stages[imported]]})" for module, imported in unexpected
    )
    assert sorted(set(KNOWN_UPWARD) - upward) == [], "an exception is gone: remove it from KNOWN_UPWARD"


def test_no_import_cycle():
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(edges[module]):
            if state.get(imported) == "open":
                cycles.append([*trail[trail.index(imported):], imported])
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "claude_docker" / "x.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from . import engine\n    from .model import Config\n")
    found = imports_of("claude_docker.x", source, {"claude_docker", "claude_docker.engine", "claude_docker.model"})
    assert found == {"claude_docker.engine", "claude_docker.model"}


@pytest.mark.parametrize(
    "module, absent",
    [
        ("claude_docker.engine", "jinja2"),  # the engine takes Artifacts, it does not render them
        ("claude_docker.runplan", "docker"),  # planning does not load the Docker SDK
        ("claude_docker.commands.firewall_cmds", "jinja2"),  # `blocked` only parses a log
    ],
)
def test_a_stage_does_not_load_what_it_does_not_use(module, absent):
    probe = f"import sys, {module}; print({absent!r} in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PACKAGE.parent, timeout=60)
    assert result.stdout.strip() == "False", result.stderr or f"importing {module} loads {absent}"


@pytest.mark.parametrize("module", ["claude_docker.features.firewall.plan", "claude_docker.features.firewall.log"])
def test_the_firewall_plan_and_log_do_not_render(module):
    """The firewall's plan is plain data and its log reader only parses text: neither imports the
    templates' module nor Jinja (rendering is the feature's, firewall/__init__.py)."""
    path = PACKAGE / "features" / "firewall" / f"{module.rsplit('.', 1)[1]}.py"
    assert "claude_docker.artifacts" not in graph()[module]
    tree = ast.parse(path.read_text())
    external = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    external |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    assert not any(name.split(".")[0] == "jinja2" for name in external)


def test_tests_import_helpers_from_support_never_from_conftest_or_other_tests():
    """Shared fixtures live in conftest files and plugins, shared code in tests/support/ and
    tests/fakes/: a test module importing another test module (or a conftest) runs that
    module's tests' set-up twice and hides where a helper lives."""
    statement = re.compile(r"^\s*(?:from\s+(\.*[\w.]*)\s+import|import\s+([\w.]+))", re.M)
    offenders = []
    for path in sorted((REPO_ROOT / "tests").rglob("*.py")):
        for match in statement.finditer(path.read_text()):
            name = match[1] if match[1] is not None else match[2]
            last = name.rsplit(".", 1)[-1]
            if last == "conftest" or last.startswith("test_") or name.startswith(("tests.unit", "tests.engine", "tests.e2e")):
                offenders.append(f"{path.relative_to(REPO_ROOT)}: {name}")
    assert offenders == []
