#!/usr/bin/env bash
# The one command that runs every test on a fresh machine:
#   installs the Python package with its test extras, runs ruff and mypy, prepares a Docker
#   engine and the local test base image (scripts/test-env.sh), runs pytest against Docker, then
#   runs the engine, firewall and end-to-end tests again against Podman's Docker-compatible service.
# --require-engine: a missing engine (Docker, or Podman for its stage) fails the run instead of
#                   skipping engine tests.
# --podman:         run the Podman stage even when pytest arguments are given (by default it runs
#                   only in a full run); --no-podman skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

require_engine=0
podman_stage=auto
pytest_args=()
for arg in "$@"; do
    case "$arg" in
        --require-engine) require_engine=1 ;;
        --podman) podman_stage=yes ;;
        --no-podman) podman_stage=no ;;
        *) pytest_args+=("$arg") ;;
    esac
done
if [ "$podman_stage" = auto ]; then
    if [ "${#pytest_args[@]}" -eq 0 ]; then podman_stage=yes; else podman_stage=no; fi
fi

# The tests that say something about the engine: run a second time against Podman.
PODMAN_TESTS=(tests/engine/test_image.py tests/engine/test_lifecycle.py
    tests/engine/test_firewall_container.py tests/engine/test_security_firewall.py tests/engine/test_proxy_config.py
    tests/engine/test_security_local_services.py tests/engine/test_security_keys.py tests/engine/test_security_workspace.py
    tests/engine/test_filesystem_persistence_docker.py tests/engine/test_packet_log_ports.py
    tests/e2e/test_firewall_container.py tests/e2e/test_e2e.py)
PODMAN_DIR="${CLAUDE_DOCKER_TEST_PODMAN_DIR:-/run/claude-docker-test-podman}"
TEST_BASE_IMAGE="${CLAUDE_DOCKER_TEST_BASE:-claude-docker-test/debian:bookworm}"

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# The gates: lint and types first (configured in pyproject.toml); either failing fails the run.
python3 -m ruff check claude_docker tests bench
python3 -m mypy
env_args=()
[ "$podman_stage" = yes ] && env_args+=(--podman)
if ! scripts/test-env.sh "${env_args[@]}"; then
    if [ "$require_engine" -eq 1 ]; then
        echo "test.sh: an engine could not be prepared, and --require-engine was given" >&2
        exit 1
    fi
    echo "test.sh: no engine; engine tests will be skipped" >&2
    podman_stage=no
fi
export CLAUDE_DOCKER_REQUIRE_ENGINE="$require_engine"
export CLAUDE_DOCKER_TEST_THOROUGH=1  # property tests draw all their examples (tests/support/examples.py)

status=0
echo "test.sh: Docker stage" >&2
python3 -m pytest -p no:cacheprovider "${pytest_args[@]}" || status=$?
if [ "$podman_stage" = yes ]; then
    echo "test.sh: Podman stage (DOCKER_HOST=unix://$PODMAN_DIR/podman.sock)" >&2
    DOCKER_HOST="unix://$PODMAN_DIR/podman.sock" CLAUDE_DOCKER_TEST_BASE="localhost/$TEST_BASE_IMAGE" \
        CLAUDE_DOCKER_TEST_ENGINE=podman \
        python3 -m pytest -p no:cacheprovider "${pytest_args[@]}" "${PODMAN_TESTS[@]}" || status=$?
fi
exit "$status"
