#!/bin/bash
# Rendered by claude-docker: the container's egress firewall. Runs as root from the entrypoint,
# before the agent exists. Fails closed: any failed step or self-test exits non-zero, and the
# entrypoint then stops the container before Claude starts.
#
#  1. dnsmasq becomes the only resolver: it forwards allowlisted names to the upstream the
#     engine gave us and refuses the rest, adding every answer to the ipset `cd-dns`.
#  2. The filter table (never nat: Docker's embedded DNS lives there) drops all output except
#     loopback, replies, the ipsets and dnsmasq's own queries to the upstream. IPv6 is closed.
#  3. A self-test proves an allowlisted name is admitted and anything else is refused.
set -euo pipefail
umask 022

readonly RUNTIME=/opt/claude-docker/runtime
readonly LOG_DIR=/run/claude-docker/log
readonly DNS_LOG=/run/claude-docker/log/dns.log
readonly STATE_DIR=/run/claude-docker-firewall
readonly SERVERS_TEMPLATE="$RUNTIME"/dnsmasq-servers.tmpl
readonly DNSMASQ_CONF="$RUNTIME"/dnsmasq.conf
readonly UPSTREAM_PLACEHOLDER=@UPSTREAM@
readonly SELFTEST_NAMES=(api.anthropic.com claude.ai platform.claude.com )
readonly ALLOW_HOST_NETWORK=0
readonly DNSMASQ_USER=dnsmasq
readonly SELFTEST_REFUSED=claude-docker-selftest.invalid
readonly EMBEDDED_DNS=127.0.0.11
# The model endpoint and host ports: one address and TCP port each (firewall.exact_openings).
readonly ENDPOINT_HOST=''
readonly ENDPOINT_PORT=0
readonly HOST_PORTS=()
HOST_ADDRESSES="${CLAUDE_DOCKER_HOST_ADDRESSES:-}"  # set by the host: its own addresses
UNRESOLVED_SEEN="${CLAUDE_DOCKER_UNRESOLVED_SEEN:-0}"  # set by the host: the warning below was shown once

step="start"
fail() {
    printf 'claude-docker firewall: %s\n' "$*" >&2
    exit 1
}
trap 'fail "step \"$step\" failed (exit $?); no egress is allowed"' ERR

is_ipv4() {
    [[ "$1" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]
}

step="check the tools"
for tool in iptables-restore ip6tables-restore ipset dnsmasq ip getent; do
    tool_path="$(command -v "$tool" || true)"
    if [ ! -f "$tool_path" ] || [ ! -x "$tool_path" ]; then
        fail "'$tool' is missing from the image; the firewall cannot start"
    fi
done
getent passwd "$DNSMASQ_USER" >/dev/null || fail "the image has no '$DNSMASQ_USER' user for the DNS forwarder"
dnsmasq_uid="$(id -u "$DNSMASQ_USER")"
if [ -n "${AGENT_UID:-}" ] && [ "$AGENT_UID" = "$dnsmasq_uid" ]; then
    fail "the agent's uid $AGENT_UID is the DNS forwarder's uid; choose another claude.uid"
fi

step="read the upstream resolver"
upstreams=()
embedded=0
while read -r keyword address _; do
    [ "$keyword" = "nameserver" ] || continue
    if [ "$address" = "$EMBEDDED_DNS" ]; then
        embedded=1
    fi
    # IPv6 resolvers are unreachable by design; 127.0.0.1 would be ourselves (a restart).
    if is_ipv4 "$address" && [ "$address" != "127.0.0.1" ]; then
        upstreams+=("$address")
    fi
done </etc/resolv.conf
[ -n "${upstreams[*]}" ] || fail "/etc/resolv.conf names no IPv4 resolver to forward allowlisted names to"

step="find the host gateway"
gateway="$(ip -4 route show default | awk '{ print $3; exit }')"
host_targets=()
if [ -n "$gateway" ] && is_ipv4 "$gateway"; then
    host_targets+=("$gateway")
fi
for address in $HOST_ADDRESSES; do
    if is_ipv4 "$address"; then
        host_targets+=("$address")
    fi
done

step="load the ipsets"
ipset restore -exist <<'IPSETS'
create cd-dns hash:ip family inet
create cd-net hash:net family inet
create cd-netport hash:net,port family inet
create cd-private hash:net family inet
create cd-exact hash:ip,port family inet
add cd-private 0.0.0.0/8
add cd-private 127.0.0.0/8
add cd-private 169.254.0.0/16
add cd-private 10.0.0.0/8
add cd-private 100.64.0.0/10
add cd-private 172.16.0.0/12
add cd-private 192.168.0.0/16
IPSETS

step="open the model endpoint and host ports"
# Exactly one address and TCP port each, accepted before the host and private-range refusals.
# An endpoint name that resolves (now, through the engine's resolver) to the Docker host or a
# private address is pinned to that answer in dnsmasq: the rebinding refusal stays on for every
# other name, and this one opens its own port only. Loopback and link-local answers never count.
endpoint_pins=()
if [ -n "$ENDPOINT_HOST" ]; then
    if is_ipv4 "$ENDPOINT_HOST"; then
        ipset add -exist cd-exact "$ENDPOINT_HOST,tcp:$ENDPOINT_PORT"
    else
        for address in $(timeout 5 getent ahostsv4 "$ENDPOINT_HOST" | awk '{ print $1 }' | sort -u || true); do
            is_ipv4 "$address" || continue
            case "$address" in 0.* | 127.* | 169.254.*) continue ;; esac
            pinned=0
            for target in "${host_targets[@]}"; do
                [ "$address" = "$target" ] && pinned=1
            done
            ipset test cd-private "$address" 2>/dev/null && pinned=1
            if [ "$pinned" = 1 ]; then
                ipset add -exist cd-exact "$address,tcp:$ENDPOINT_PORT"
                endpoint_pins+=("--address=/$ENDPOINT_HOST/$address")
            fi
        done
    fi
fi
for address in "${host_targets[@]}"; do
    for port in "${HOST_PORTS[@]}"; do
        ipset add -exist cd-exact "$address,tcp:$port"
    done
done

step="build the IPv4 rules"
rules="$(
    echo '*filter'
    echo ':INPUT DROP [0:0]'
    echo ':FORWARD DROP [0:0]'
    echo ':OUTPUT DROP [0:0]'
    echo '-A INPUT -i lo -j ACCEPT'
    echo '-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'
    # Docker's embedded DNS listens on loopback: only dnsmasq may use it, before the lo accept.
    echo "-A OUTPUT -d $EMBEDDED_DNS/32 -m owner --uid-owner $dnsmasq_uid -j ACCEPT"
    echo "-A OUTPUT -d $EMBEDDED_DNS/32 -p tcp -j REJECT --reject-with tcp-reset"
    echo "-A OUTPUT -d $EMBEDDED_DNS/32 -j REJECT --reject-with icmp-admin-prohibited"
    echo '-A OUTPUT -o lo -j ACCEPT'
    # DNS (53) and DNS over TLS (853) leave from dnsmasq's user only, decided before the
    # established accept: conntrack keeps a finished lookup's flow for ~30 s, and whoever binds
    # its source port after dnsmasq let go would otherwise inherit it (a tunnel to the upstream).
    for upstream in "${upstreams[@]}"; do
        for proto in udp tcp; do
            echo "-A OUTPUT -d $upstream/32 -p $proto --dport 53 -m owner --uid-owner $dnsmasq_uid -j ACCEPT"
        done
    done
    if [ "$embedded" = 1 ]; then
        # The engine forwards dnsmasq's lookups from inside this namespace, as uid 0.
        for proto in udp tcp; do
            echo "-A OUTPUT -p $proto --dport 53 -m owner --uid-owner 0 -j ACCEPT"
        done
    fi
    echo '-A OUTPUT -p tcp -m multiport --dports 53,853 -j REJECT --reject-with tcp-reset'
    echo '-A OUTPUT -p udp -m multiport --dports 53,853 -j REJECT --reject-with icmp-admin-prohibited'
    # ICMP echo from root only (diagnostics by `docker exec`); the container also closes ping
    # sockets (net.ipv4.ping_group_range), this holds where an engine leaves them open.
    echo '-A OUTPUT -p icmp --icmp-type echo-request -m owner ! --uid-owner 0 -j REJECT --reject-with icmp-admin-prohibited'
    echo '-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'
    echo '-A OUTPUT -m set --match-set cd-exact dst,dst -j ACCEPT'  # the model endpoint, host ports
    for address in "${host_targets[@]}"; do
        if [ "$ALLOW_HOST_NETWORK" = 1 ]; then
            echo "-A OUTPUT -d $address/32 -j ACCEPT"
        else
            echo "-A OUTPUT -d $address/32 -p tcp -j REJECT --reject-with tcp-reset"
            echo "-A OUTPUT -d $address/32 -j REJECT --reject-with icmp-admin-prohibited"
        fi
    done
    echo '-A OUTPUT -m set --match-set cd-net dst -j ACCEPT'
    echo '-A OUTPUT -m set --match-set cd-netport dst,dst -j ACCEPT'
    # Loopback-, link-local and (unless allow_private_answers) private ranges are reached through
    # allowed_cidrs only, never because DNS said so; dnsmasq already refuses such answers.
    echo '-A OUTPUT -m set --match-set cd-private dst -p tcp -j REJECT --reject-with tcp-reset'
    echo '-A OUTPUT -m set --match-set cd-private dst -j REJECT --reject-with icmp-admin-prohibited'
    echo '-A OUTPUT -m set --match-set cd-dns dst -j ACCEPT'
    # Reject rather than drop, so tools fail at once instead of hanging.
    echo '-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset'
    echo '-A OUTPUT -j REJECT --reject-with icmp-admin-prohibited'
    echo 'COMMIT'
)"

step="load the IPv4 rules"
printf '%s\n' "$rules" | iptables-restore

step="close IPv6"
if [ -d /proc/sys/net/ipv6 ]; then
    ip6tables-restore <<'RULES6'
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
-A INPUT -i lo -j ACCEPT
-A OUTPUT -o lo -j ACCEPT
COMMIT
RULES6
fi

step="prepare the log"
mkdir -p "$LOG_DIR" "$STATE_DIR"
# The log dir is a host bind mount owned by the host user, who is also the agent's uid.
chown root:root "$LOG_DIR" "$STATE_DIR"
chmod 0755 "$LOG_DIR" "$STATE_DIR"
touch "$DNS_LOG"  # dnsmasq opens it as root, before it drops to its own user
chmod 0644 "$DNS_LOG"

step="start dnsmasq"
: >"$STATE_DIR/servers.conf"
for upstream in "${upstreams[@]}"; do
    sed "s/$UPSTREAM_PLACEHOLDER/$upstream/" "$SERVERS_TEMPLATE" >>"$STATE_DIR/servers.conf"
done
dnsmasq --conf-file="$DNSMASQ_CONF" --servers-file="$STATE_DIR/servers.conf" \
    --pid-file="$STATE_DIR/dnsmasq.pid" --log-facility="$DNS_LOG" "${endpoint_pins[@]}"
# dnsmasq hands its open log to its own user, mode 0660; give it back so the host user can read
# it (dnsmasq keeps writing through its open descriptor).
chown root:root "$DNS_LOG"
chmod 0644 "$DNS_LOG"

step="cap the log"
# dnsmasq logs every query, as often as the agent asks, into a directory on the host's disk.
# Past 1048576 bytes the end of the log moves to dns.log.1 and dns.log starts
# empty again (dnsmasq appends, so it writes on at the new end). Root-owned: the agent cannot stop it.
(
    set +e
    while sleep 5; do
        size="$(stat -c %s "$DNS_LOG" 2>/dev/null)" || continue
        if [ "$size" -gt 1048576 ]; then
            tail -c 262144 "$DNS_LOG" >"$DNS_LOG.1.tmp" && chmod 0644 "$DNS_LOG.1.tmp" \
                && mv -f "$DNS_LOG.1.tmp" "$DNS_LOG.1"
            : >"$DNS_LOG"
        fi
    done
) </dev/null >/dev/null 2>&1 &

step="point the resolver at dnsmasq"
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >/etc/resolv.conf
chown root:root /etc/resolv.conf
chmod 0644 /etc/resolv.conf

step="self-test"
iptables -S OUTPUT | head -n 1 | grep -qx -- '-P OUTPUT DROP' || fail "self-test: the OUTPUT policy is not DROP"
[ -d "/proc/$(cat "$STATE_DIR/dnsmasq.pid")" ] || fail "self-test: dnsmasq is not running"
if getent ahostsv4 "$SELFTEST_REFUSED" >/dev/null 2>&1; then
    fail "self-test: a name outside the allowlist resolved; refusing to start"
fi
# The allow path: the first allowlisted name that resolves must have entered the allow set.
# A name the upstream does not know (e.g. behind a proxy-only network) is not our failure.
resolved=""
for name in "${SELFTEST_NAMES[@]}"; do
    answer="$(timeout 5 getent ahostsv4 "$name" | awk '{ print $1; exit }' || true)"
    [ -n "$answer" ] || continue
    ipset test cd-dns "$answer" 2>/dev/null \
        || fail "self-test: $name resolved to $answer but was not admitted to the allow set"
    resolved="$name"
    break
done
if [ -z "$resolved" ] && [ -n "${SELFTEST_NAMES[*]}" ]; then
    # Once per project: on a network where only a proxy reaches the internet this is expected.
    : >"$LOG_DIR/unresolved"
    if [ "$UNRESOLVED_SEEN" != 1 ]; then
        printf 'claude-docker firewall: warning: none of %s resolved through upstream %s; allowlisted names may not work (shown once per project)\n' \
            "${SELFTEST_NAMES[*]}" "${upstreams[*]}" >&2
    fi
fi
trap - ERR
