#!/usr/bin/env bash
# Prepare a machine to run the test suite: Debian packages, a running Docker
# engine and a local Debian base image (there may be no registry to pull from).
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

TEST_BASE_IMAGE="${CLAUDE_DOCKER_TEST_BASE:-claude-docker-test/debian:bookworm}"
# Podman's Docker-compatible service for the Podman stage of the tests (scripts/test.sh).
PODMAN_DIR="${CLAUDE_DOCKER_TEST_PODMAN_DIR:-/run/claude-docker-test-podman}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf '[test-env] %s\n' "$*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

install_debian_packages() {
    local wanted=(docker.io iptables ipset dnsmasq-base debootstrap shellcheck tmux curl podman catatonit)
    local missing=()
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        log "missing packages (${missing[*]}) and cannot install them (needs root on Debian)"
        return 0
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_engine() {
    engine_answers && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v dockerd >/dev/null; then
        log "no Docker engine answers and dockerd cannot be started here"
        return 1
    fi
    log "starting dockerd"
    mkdir -p /var/log
    nohup dockerd >/var/log/claude-docker-test-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do
        engine_answers && return 0
        sleep 1
    done
    log "dockerd did not answer within 60 s; see /var/log/claude-docker-test-dockerd.log"
    return 1
}

build_base_image() {
    if docker image inspect "$TEST_BASE_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    log "building $TEST_BASE_IMAGE with debootstrap (a few minutes, once)"
    local root
    root="$(mktemp -d /var/tmp/claude-docker-rootfs.XXXXXX)"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$DEBIAN_MIRROR" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$TEST_BASE_IMAGE" >/dev/null
    rm -rf "$root"
    log "built $TEST_BASE_IMAGE"
}

podman_answers() { DOCKER_HOST="unix://$PODMAN_DIR/podman.sock" docker version >/dev/null 2>&1; }

# Rootful Podman on its own socket, with ulimits that fit this host's hard limits (its
# defaults exceed them on some machines, and then every container fails to start), and the
# test base image copied into its store (it appears there as localhost/<name>).
start_podman() {
    command -v podman >/dev/null || { log "podman is not installed"; return 1; }
    mkdir -p "$PODMAN_DIR"
    if ! podman_answers; then
        local nproc=4096
        [ "$(ulimit -Hu)" != unlimited ] && [ "$(ulimit -Hu)" -lt "$nproc" ] && nproc="$(ulimit -Hu)"
        printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
            "$(ulimit -Hn)" "$(ulimit -Hn)" "$nproc" "$nproc" >"$PODMAN_DIR/containers.conf"
        log "starting podman system service on $PODMAN_DIR/podman.sock"
        CONTAINERS_CONF="$PODMAN_DIR/containers.conf" nohup podman system service --time=0 \
            "unix://$PODMAN_DIR/podman.sock" >"$PODMAN_DIR/service.log" 2>&1 &
        for _ in $(seq 1 30); do
            podman_answers && break
            sleep 1
        done
        podman_answers || { log "podman did not answer; see $PODMAN_DIR/service.log"; return 1; }
    fi
    if ! podman image exists "localhost/$TEST_BASE_IMAGE"; then
        log "copying $TEST_BASE_IMAGE into Podman's store"
        docker save "$TEST_BASE_IMAGE" | podman load >/dev/null
    fi
}

install_debian_packages
if start_engine; then
    build_base_image
else
    exit 3
fi
if [ "${1:-}" = "--podman" ]; then
    start_podman || exit 4
fi
