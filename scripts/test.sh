#!/usr/bin/env bash
# The one command that runs every test on a fresh machine:
#   installs the Python package with its test extras, runs ruff and mypy, prepares a Docker
#   engine and the local test base image (scripts/test-env.sh), then runs pytest.
# --require-engine: a missing Docker engine fails the run instead of skipping engine tests.
set -euo pipefail
cd "$(dirname "$0")/.."

require_engine=0
pytest_args=()
for arg in "$@"; do
    case "$arg" in
        --require-engine) require_engine=1 ;;
        *) pytest_args+=("$arg") ;;
    esac
done

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# The gates: lint and types first (configured in pyproject.toml); either failing fails the run.
python3 -m ruff check claude_docker tests bench
python3 -m mypy
if ! scripts/test-env.sh; then
    if [ "$require_engine" -eq 1 ]; then
        echo "test.sh: no Docker engine, and --require-engine was given" >&2
        exit 1
    fi
    echo "test.sh: no Docker engine; engine tests will be skipped" >&2
fi
export CLAUDE_DOCKER_REQUIRE_ENGINE="$require_engine"
exec python3 -m pytest -p no:cacheprovider "${pytest_args[@]}"
