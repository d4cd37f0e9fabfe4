"""Benchmark: `claude-docker validate` on a three-file profile chain vs `python -c pass`.

Both run as fresh processes, interleaved, in the same run, so machine load affects them alike.
Every command runs this checkout's package with this interpreter (`python -m claude_docker`,
PYTHONPATH = the checkout), never a console script that may resolve to another installed copy.
Target: validate under 250 ms. Writes the "## validate" section of docs/benchmarks.md.

    python3 bench/bench_validate.py [--runs N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "docs" / "benchmarks.md"
TARGET_MS = 250.0

CHAIN = {
    "base.yaml": "description: team base\nnetwork:\n  allowed_domains: [pypi.org]\nimage:\n  apt_packages: [jq]\n",
    "team.yaml": "extends: [./base.yaml, python]\nfilesystem:\n  blocked_paths: [~/.netrc]\n",
    "claude-docker.yaml": (
        "version: 1\nextends: [./team.yaml, github]\n"
        "image:\n  apt_packages: [ripgrep]\n"
        "notifier:\n  on: [stop]\n  webhooks: [{url: \"https://hooks.example/x\"}]\n"
        "claude:\n  mcp_servers:\n    docs: {command: npx, args: [-y, docs], env: {T: \"${T}\"}}\n"
    ),
}


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    validate = [sys.executable, "-m", "claude_docker"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name, text in CHAIN.items():
            (project / name).write_text(text)
        pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "CLAUDE_DOCKER_HOME": str(project / "cd-home"), "PYTHONPATH": pythonpath, "T": "token"}  # the MCP variable the chain references
        checkout = [sys.executable, "-c", "import claude_docker, sys; print(claude_docker.__file__)"]
        where = subprocess.run(checkout, cwd=project, env=env, capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(REPO_ROOT)):
            raise SystemExit(f"the benchmark would time {where}, not this checkout ({REPO_ROOT})")
        command = [*validate, "validate", "-f", "claude-docker.yaml"]
        timed(command, project, env)  # warm the file cache and .pyc files
        # The config pipeline alone, without the CLI's other commands being imported.
        pipeline = [sys.executable, "-c", "from claude_docker.config.pipeline import load_config; load_config('claude-docker.yaml')"]
        cli_import = [sys.executable, "-c", "import claude_docker.cli"]
        validate_ms, python_ms, pipeline_ms, import_ms = [], [], [], []
        for _ in range(args.runs):
            import_ms.append(timed(cli_import, project, env))
            python_ms.append(timed([sys.executable, "-c", "pass"], project, env))
            validate_ms.append(timed(command, project, env))
            pipeline_ms.append(timed(pipeline, project, env))

    v_med, p_med = statistics.median(validate_ms), statistics.median(python_ms)
    v_min, p_min = min(validate_ms), min(python_ms)
    verdict = "meets" if v_med < TARGET_MS else "misses"
    section = (
        "## validate\n\n"
        "`python -m claude_docker validate` on a three-file profile chain (project file -> team.yaml -> base.yaml,\n"
        "plus the built-in default, python and github profiles), each run a fresh process,\n"
        f"interleaved with `python -c pass`; {args.runs} runs each (`python3 bench/bench_validate.py`).\n\n"
        "| command | median ms | min ms | median / `python -c pass` |\n|---|---:|---:|---:|\n"
        f"| `python -c pass` | {p_med:.0f} | {p_min:.0f} | 1.0x |\n"
        f"| `python -m claude_docker validate` | {v_med:.0f} | {v_min:.0f} | {v_med / p_med:.1f}x |\n"
        f"| `load_config()` alone (no CLI) | {statistics.median(pipeline_ms):.0f} | {min(pipeline_ms):.0f} "
        f"| {statistics.median(pipeline_ms) / p_med:.1f}x |\n"
        f"| `import claude_docker.cli` (commands load on first use) | {statistics.median(import_ms):.0f} "
        f"| {min(import_ms):.0f} | {statistics.median(import_ms) / p_med:.1f}x |\n\n"
        f"Ratio (median): {v_med / p_med:.1f}x `python -c pass`; overhead over the interpreter start:\n"
        f"{v_med - p_med:.0f} ms. Target < {TARGET_MS:.0f} ms: {verdict} it. "
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs.\n\n"
        "The config pipeline itself (YAML, interpolation, profile chain, jsonschema validation, model) is\n"
        "the `load_config()` row. Every command runs this checkout with this interpreter.\n"
        "The CLI imports a command's module only when that command runs, so `validate` does not pay\n"
        "for the Docker SDK, Jinja or the notifier backends.\n"
    )
    print(section)
    if not args.no_write:
        write_section(section)


def write_section(section: str) -> None:
    """Replace only the "## validate" section; other sections belong to other benchmarks."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## validate\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
