"""`claude-docker kube` run on a throw-away project, and the parts of its manifests tests look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from claude_docker.cli import main


def render(tmp_path: Path, config_yaml: str, *args: str, env: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run `claude-docker kube` on a project holding `config_yaml`; return file name -> documents."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "claude-docker.yaml").write_text(config_yaml)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["kube", "-f", str(project / "claude-docker.yaml"), "-o", str(out), *args], env={"CLAUDE_DOCKER_HOME": str(tmp_path / "home"), **(env or {})}
    )
    assert result.exit_code == 0, result.output
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the same documents, faster
    return {path.name: [doc for doc in yaml.load_all(path.read_text(), Loader=loader) if doc] for path in sorted(out.iterdir())}


def workload(files: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    [document] = files.get("job.yaml") or files["pod.yaml"]
    return document


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"] if document["kind"] == "Job" else document["spec"]


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == name]
    return found
