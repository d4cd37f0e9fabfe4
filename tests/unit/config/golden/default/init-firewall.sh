#!/bin/bash
# Rendered by claude-docker: the container's egress firewall. Runs as root from the entrypoint,
# before the agent exists. Fails closed: any failed step or self-test exits non-zero, and the
# entrypoint then stops the container before Claude starts.
#
#  1. dnsmasq becomes the only resolver: it forwards allowlisted names to the upstream the
#     engine gave us and refuses the rest, adding every answer to the ipset `cd-dns`.
#  2. The filter table (never nat: Docker's embedded DNS lives there) drops all output except
#     loopback, replies, the ipsets and dnsmasq's own queries to the upstream. IPv6 is closed.
#  3. Names, not addresses, decide: the agent's TCP to admitted addresses (ports 80, 443) is
#     redirected (our own nat chain; Docker's nat rules stay) to HAProxy, which checks the TLS SNI
#     or HTTP Host against the allowlist and connects to the address it resolves itself. Only
#     the proxy's user may reach admitted addresses directly.
#  4. Refused packets are logged (rate-limited) through NFLOG to ulogd, which writes the
#     session's packet log; inbound connections are admitted to the published ports only.
#  5. A self-test proves an allowlisted name is admitted and anything else is refused, by DNS
#     and by the proxy.
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
readonly DOMAIN_EXACT=1
readonly PROXY_CONF="$RUNTIME"/haproxy.cfg
readonly PROXY_USER=haproxy
readonly PROXY_LOG=/run/claude-docker/log/proxy.log
readonly PROXY_TLS_PORT=15443
readonly PROXY_HTTP_PORT=15080
# The local endpoints where the proxy adds a credential (the model's, git's), when it holds one.
readonly LOCAL_ENDPOINTS=()
# TLS ClientHellos naming the refused self-test name and each self-test name (printf %b escapes).
readonly SELFTEST_REFUSED_HELLO='\x16\x03\x01\x00\x84\x01\x00\x00\x80\x03\x03\xe9\xcf\xc0\x81\xed\xde\x2a\x0a\x3f\xd5\x82\xa5\x00\xf5\xc1\x53\x2a\x25\xa7\xa9\xb0\xf8\x19\xf3\x5c\x88\xa5\x63\xe8\xca\x4f\x00\x00\x00\x0c\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30\x00\x9c\x00\x9d\x01\x00\x00\x4b\x00\x00\x00\x23\x00\x21\x00\x00\x1e\x63\x6c\x61\x75\x64\x65\x2d\x64\x6f\x63\x6b\x65\x72\x2d\x73\x65\x6c\x66\x74\x65\x73\x74\x2e\x69\x6e\x76\x61\x6c\x69\x64\x00\x0a\x00\x08\x00\x06\x00\x1d\x00\x17\x00\x18\x00\x0b\x00\x02\x01\x00\x00\x0d\x00\x0e\x00\x0c\x04\x03\x08\x04\x04\x01\x05\x03\x08\x05\x05\x01'
readonly SELFTEST_HELLOS=('\x16\x03\x01\x00\x77\x01\x00\x00\x73\x03\x03\x0e\x4a\x7f\x62\x1b\x27\x56\xc6\xd3\x4c\x5f\x40\x9d\x88\x6e\xc7\x62\x24\x82\xdb\x96\xcb\xcf\xae\x01\xe1\x4b\x14\x2c\xe1\x2b\x1d\x00\x00\x0c\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30\x00\x9c\x00\x9d\x01\x00\x00\x3e\x00\x00\x00\x16\x00\x14\x00\x00\x11\x61\x70\x69\x2e\x61\x6e\x74\x68\x72\x6f\x70\x69\x63\x2e\x63\x6f\x6d\x00\x0a\x00\x08\x00\x06\x00\x1d\x00\x17\x00\x18\x00\x0b\x00\x02\x01\x00\x00\x0d\x00\x0e\x00\x0c\x04\x03\x08\x04\x04\x01\x05\x03\x08\x05\x05\x01' '\x16\x03\x01\x00\x6f\x01\x00\x00\x6b\x03\x03\x74\x3e\x48\x3a\xe0\x1f\x1f\xa2\x62\xd2\xb2\x14\x2b\xdd\x11\x8d\x52\x89\xbf\x94\x01\x91\xb1\xf5\xfc\xdf\x82\x0e\xd3\x12\x4e\xba\x00\x00\x0c\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30\x00\x9c\x00\x9d\x01\x00\x00\x36\x00\x00\x00\x0e\x00\x0c\x00\x00\x09\x63\x6c\x61\x75\x64\x65\x2e\x61\x69\x00\x0a\x00\x08\x00\x06\x00\x1d\x00\x17\x00\x18\x00\x0b\x00\x02\x01\x00\x00\x0d\x00\x0e\x00\x0c\x04\x03\x08\x04\x04\x01\x05\x03\x08\x05\x05\x01' '\x16\x03\x01\x00\x79\x01\x00\x00\x75\x03\x03\x59\x1e\xd8\x42\xa1\x66\x37\x66\xec\x7d\xa7\x3c\xb2\x6f\x79\x2b\xab\xc1\x00\xe0\xad\x57\x2b\x0f\x3c\x3c\x50\x8f\x52\x0a\xb0\x50\x00\x00\x0c\xc0\x2b\xc0\x2f\xc0\x2c\xc0\x30\x00\x9c\x00\x9d\x01\x00\x00\x40\x00\x00\x00\x18\x00\x16\x00\x00\x13\x70\x6c\x61\x74\x66\x6f\x72\x6d\x2e\x63\x6c\x61\x75\x64\x65\x2e\x63\x6f\x6d\x00\x0a\x00\x08\x00\x06\x00\x1d\x00\x17\x00\x18\x00\x0b\x00\x02\x01\x00\x00\x0d\x00\x0e\x00\x0c\x04\x03\x08\x04\x04\x01\x05\x03\x08\x05\x05\x01' )
# The model endpoint and host ports: one address and TCP port each (firewall.plan.exact_openings).
readonly ENDPOINT_HOST=''
readonly ENDPOINT_PORT=0
readonly HOST_PORTS=()
# The proxy holds the model credential: the endpoint's addresses (MODEL_SET) on its port are the
# proxy's alone, and the agent reaches it through the local endpoint only.
readonly MODEL_HELD=0
readonly MODEL_SET=cd-model
# Container ports published on the host (`ports:`, `up -p`): inbound TCP is admitted to these only.
readonly PUBLISHED_PORTS=()
# The packet log: refused packets go, rate-limited, to an NFLOG group that ulogd reads.
readonly PACKET_LOG=/run/claude-docker/log/packets.log
readonly ULOGD_CONF="$RUNTIME"/ulogd.conf
readonly ULOGD_USER=ulog
readonly NFLOG_GROUP=7
readonly NFLOG_PREFIX=cd-refused:
# A flood to one destination is logged 5 times, then 1/s; all refusals
# together at most 20/s after a burst of 100 (the rate tables are shared by every log rule).
readonly LOG_LIMIT="-m hashlimit --hashlimit-mode dstip,dstport --hashlimit-upto 1/sec --hashlimit-burst 5 --hashlimit-name cd-refused-dst -m hashlimit --hashlimit-upto 20/sec --hashlimit-burst 100 --hashlimit-name cd-refused"
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
for tool in iptables-restore ip6tables-restore ipset dnsmasq ip getent haproxy curl; do
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
if getent passwd "$ULOGD_USER" >/dev/null && [ -n "${AGENT_UID:-}" ] && [ "$AGENT_UID" = "$(id -u "$ULOGD_USER")" ]; then
    fail "the agent's uid $AGENT_UID is the packet logger's uid; choose another claude.uid"
fi
getent passwd "$PROXY_USER" >/dev/null || fail "the image has no '$PROXY_USER' user for the name-checking proxy"
proxy_uid="$(id -u "$PROXY_USER")"
if [ -n "${AGENT_UID:-}" ] && [ "$AGENT_UID" = "$proxy_uid" ]; then
    fail "the agent's uid $AGENT_UID is the proxy's uid; choose another claude.uid"
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

step="prepare the log"
mkdir -p "$LOG_DIR" "$STATE_DIR"
# The log dir is a host bind mount owned by the host user, who is also the agent's uid.
chown root:root "$LOG_DIR" "$STATE_DIR"
chmod 0755 "$LOG_DIR" "$STATE_DIR"
touch "$DNS_LOG"  # dnsmasq opens it as root, before it drops to its own user
chmod 0644 "$DNS_LOG"

step="start the proxy"
if [ "$DOMAIN_EXACT" = 1 ]; then
    touch "$PROXY_LOG"
    chmod 0644 "$PROXY_LOG"
    # Started as root, it binds and becomes its own user; it logs refusals to the descriptor
    # root opened, so neither it nor the agent can rewrite the log. It starts first, so its
    # start-up overlaps the rest; it only listens until the self-test waits for its listeners.
    # It holds the credentials of the local endpoints (CLAUDE_DOCKER_SECRET_*, in its environment
    # only): no core dump may ever write its memory to a file.
    (
        ulimit -c 0
        exec haproxy -db -f "$PROXY_CONF"
    ) </dev/null >>"$PROXY_LOG" 2>&1 &
    proxy_pid=$!
    echo "$proxy_pid" >"$STATE_DIR/proxy.pid"
fi
# Nothing started after the proxy (dnsmasq, the log loop) inherits the credentials.
for secret in ${!CLAUDE_DOCKER_SECRET_@}; do
    unset "$secret"
done

step="start the packet log"
# Optional: where the image has no ulogd, or the kernel no NFLOG target or hashlimit match, the
# filter below is the same without its log rules (a warning says so). ulogd binds the group as
# root, opens the log and becomes its own user; the agent can neither write the log nor bind the
# group (that needs the network-admin capability it never has).
packet_log_on=0
if command -v ulogd >/dev/null && getent passwd "$ULOGD_USER" >/dev/null; then
    probe_limit="${LOG_LIMIT//cd-refused/cd-probe}"
    if printf '*filter\n:CD-PROBE - [0:0]\n-A CD-PROBE %s -j NFLOG --nflog-group %s\nCOMMIT\n' \
        "$probe_limit" "$NFLOG_GROUP" | iptables-restore --noflush 2>/dev/null; then
        packet_log_on=1
    fi
    iptables -F CD-PROBE 2>/dev/null || true
    iptables -X CD-PROBE 2>/dev/null || true
fi
if [ "$packet_log_on" = 1 ]; then
    touch "$PACKET_LOG"
    chmod 0644 "$PACKET_LOG"
    ulogd -c "$ULOGD_CONF" -u "$ULOGD_USER" </dev/null >/dev/null 2>&1 &
    echo "$!" >"$STATE_DIR/ulogd.pid"
else
    printf 'claude-docker firewall: warning: refused packets are not logged (no ulogd, or no NFLOG support in the kernel)\n' >&2
fi

step="load the ipsets"
ipset restore -exist <<'IPSETS'
create cd-dns hash:ip family inet
create cd-net hash:net family inet
create cd-netport hash:net,port family inet
create cd-private hash:net family inet
create cd-exact hash:ip,port family inet
create cd-model hash:ip family inet
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
# With the key held by the proxy, the endpoint's addresses go to MODEL_SET (the proxy's only).
open_endpoint() { # address
    if [ "$MODEL_HELD" = 1 ]; then
        ipset add -exist "$MODEL_SET" "$1"
    else
        ipset add -exist cd-exact "$1,tcp:$ENDPOINT_PORT"
    fi
}
endpoint_pins=()
if [ -n "$ENDPOINT_HOST" ]; then
    if is_ipv4 "$ENDPOINT_HOST"; then
        open_endpoint "$ENDPOINT_HOST"
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
                open_endpoint "$address"
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
log_refused() { # reason match...: log what the next rule refuses (rate-limited; never decides)
    local reason="$1"
    shift
    [ "$packet_log_on" = 1 ] || return 0
    echo "-A OUTPUT $* $LOG_LIMIT -j NFLOG --nflog-group $NFLOG_GROUP --nflog-prefix $NFLOG_PREFIX$reason"
}
rules="$(
    echo '*filter'
    echo ':INPUT DROP [0:0]'
    echo ':FORWARD DROP [0:0]'
    echo ':OUTPUT DROP [0:0]'
    echo '-A INPUT -i lo -j ACCEPT'
    echo '-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'
    # Published ports: new inbound TCP connections to exactly these (replies leave through the
    # established accept below); everything else inbound is dropped by the policy.
    for port in "${PUBLISHED_PORTS[@]}"; do
        echo "-A INPUT -p tcp --dport $port -m conntrack --ctstate NEW -j ACCEPT"
    done
    # Docker's embedded DNS listens on loopback: only dnsmasq may use it, before the lo accept.
    echo "-A OUTPUT -d $EMBEDDED_DNS/32 -m owner --uid-owner $dnsmasq_uid -j ACCEPT"
    log_refused dns -d "$EMBEDDED_DNS/32"
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
    log_refused dns -p tcp -m multiport --dports 53,853
    log_refused dns -p udp -m multiport --dports 53,853
    echo '-A OUTPUT -p tcp -m multiport --dports 53,853 -j REJECT --reject-with tcp-reset'
    echo '-A OUTPUT -p udp -m multiport --dports 53,853 -j REJECT --reject-with icmp-admin-prohibited'
    # ICMP echo from root only (diagnostics by `docker exec`); the container also closes ping
    # sockets (net.ipv4.ping_group_range), this holds where an engine leaves them open.
    log_refused ping -p icmp --icmp-type echo-request -m owner ! --uid-owner 0
    echo '-A OUTPUT -p icmp --icmp-type echo-request -m owner ! --uid-owner 0 -j REJECT --reject-with icmp-admin-prohibited'
    echo '-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'
    if [ "$MODEL_HELD" = 1 ]; then
        # The model endpoint's port on its addresses: the proxy's uid only, whatever else would
        # open it (host_ports, allowed_cidrs). The agent's connections to an allowlisted name on
        # 80/443 were redirected to the proxy before this (nat), which refuses the endpoint's name.
        echo "-A OUTPUT -p tcp --dport $ENDPOINT_PORT -m set --match-set $MODEL_SET dst -m owner --uid-owner $proxy_uid -j ACCEPT"
        log_refused model-endpoint -p tcp --dport "$ENDPOINT_PORT" -m set --match-set "$MODEL_SET" dst
        echo "-A OUTPUT -p tcp --dport $ENDPOINT_PORT -m set --match-set $MODEL_SET dst -j REJECT --reject-with tcp-reset"
    fi
    echo '-A OUTPUT -m set --match-set cd-exact dst,dst -j ACCEPT'  # the model endpoint, host ports
    for address in "${host_targets[@]}"; do
        if [ "$ALLOW_HOST_NETWORK" = 1 ]; then
            echo "-A OUTPUT -d $address/32 -j ACCEPT"
        else
            log_refused host -d "$address/32"
            echo "-A OUTPUT -d $address/32 -p tcp -j REJECT --reject-with tcp-reset"
            echo "-A OUTPUT -d $address/32 -j REJECT --reject-with icmp-admin-prohibited"
        fi
    done
    if [ "$DOMAIN_EXACT" = 1 ]; then
        # Redirected to the proxy (the filter still sees the interface the packet was routed to
        # before nat moved it to loopback), decided before the loopback range is refused below.
        echo "-A OUTPUT -d 127.0.0.1/32 -p tcp -m multiport --dports $PROXY_TLS_PORT,$PROXY_HTTP_PORT -j ACCEPT"
    fi
    echo '-A OUTPUT -m set --match-set cd-net dst -j ACCEPT'
    echo '-A OUTPUT -m set --match-set cd-netport dst,dst -j ACCEPT'
    # Loopback-, link-local and (unless allow_private_answers) private ranges are reached through
    # allowed_cidrs only, never because DNS said so; dnsmasq already refuses such answers.
    log_refused private -m set --match-set cd-private dst
    echo '-A OUTPUT -m set --match-set cd-private dst -p tcp -j REJECT --reject-with tcp-reset'
    echo '-A OUTPUT -m set --match-set cd-private dst -j REJECT --reject-with icmp-admin-prohibited'
    if [ "$DOMAIN_EXACT" = 1 ]; then
        # Admitted addresses: through the proxy only (its own user), ICMP aside.
        echo "-A OUTPUT -m set --match-set cd-dns dst -m owner --uid-owner $proxy_uid -j ACCEPT"
        echo '-A OUTPUT -p icmp -m set --match-set cd-dns dst -j ACCEPT'
    else
        echo '-A OUTPUT -m set --match-set cd-dns dst -j ACCEPT'
    fi
    # Reject rather than drop, so tools fail at once instead of hanging.
    log_refused not-allowed
    echo '-A OUTPUT -p tcp -j REJECT --reject-with tcp-reset'
    echo '-A OUTPUT -j REJECT --reject-with icmp-admin-prohibited'
    echo 'COMMIT'
)"

step="load the IPv4 rules"
printf '%s\n' "$rules" | iptables-restore

step="redirect to the proxy"
if [ "$DOMAIN_EXACT" = 1 ]; then
    # Only our own chain: Docker's embedded DNS lives in nat (DOCKER_OUTPUT), never flushed.
    {
        echo '*nat'
        echo ':CD-PROXY - [0:0]'
        echo "-A CD-PROXY -m owner --uid-owner $proxy_uid -j RETURN"
        echo '-A CD-PROXY -m set ! --match-set cd-dns dst -j RETURN'
        echo '-A CD-PROXY -m set --match-set cd-net dst -j RETURN'
        echo '-A CD-PROXY -m set --match-set cd-netport dst,dst -j RETURN'
        if [ "$ALLOW_HOST_NETWORK" = 1 ]; then
            for address in "${host_targets[@]}"; do
                echo "-A CD-PROXY -d $address/32 -j RETURN"
            done
        fi
        echo "-A CD-PROXY -p tcp --dport 443 -j REDIRECT --to-ports $PROXY_TLS_PORT"
        echo "-A CD-PROXY -p tcp --dport 80 -j REDIRECT --to-ports $PROXY_HTTP_PORT"
        echo '-A OUTPUT -p tcp -j CD-PROXY'
        echo 'COMMIT'
    } | iptables-restore --noflush
fi

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

step="cap the logs"
# dnsmasq logs every query and the proxy every refused connection, as often as the agent asks,
# into a directory on the host's disk. Past 1048576 bytes the end of a log moves to
# <log>.1 and the log starts empty again (both append, so they write on at the new end).
# Root-owned: the agent cannot stop it.
(
    set +e
    while sleep 5; do
        for log in "$DNS_LOG" "$PROXY_LOG" "$PACKET_LOG"; do
            size="$(stat -c %s "$log" 2>/dev/null)" || continue
            if [ "$size" -gt 1048576 ]; then
                tail -c 262144 "$log" >"$log.1.tmp" && chmod 0644 "$log.1.tmp" \
                    && mv -f "$log.1.tmp" "$log.1"
                : >"$log"
            fi
        done
    done
) </dev/null >/dev/null 2>&1 &

step="point the resolver at dnsmasq"
printf 'nameserver 127.0.0.1\noptions timeout:2 attempts:2\n' >/etc/resolv.conf
chown root:root /etc/resolv.conf
chmod 0644 /etc/resolv.conf

step="self-test"
# Read whole (not through `head`, which would cut iptables off mid-write: a SIGPIPE under pipefail).
output_rules="$(iptables -S OUTPUT)"
[ "${output_rules%%$'\n'*}" = '-P OUTPUT DROP' ] || fail "self-test: the OUTPUT policy is not DROP"
[ -d "/proc/$(cat "$STATE_DIR/dnsmasq.pid")" ] || fail "self-test: dnsmasq is not running"
if getent ahostsv4 "$SELFTEST_REFUSED" >/dev/null 2>&1; then
    fail "self-test: a name outside the allowlist resolved; refusing to start"
fi
# The allow path: the first allowlisted name that resolves must have entered the allow set.
# A name the upstream does not know (e.g. behind a proxy-only network) is not our failure.
resolved=""
resolved_index=0
for name in "${SELFTEST_NAMES[@]}"; do
    answer="$(timeout 5 getent ahostsv4 "$name" | awk '{ print $1; exit }' || true)"
    [ -n "$answer" ] || { resolved_index=$((resolved_index + 1)); continue; }
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

# The proxy: running as its own user, and refusing a forbidden name sent to an address that is
# admitted (an allowlisted name's), over TLS and plain HTTP. Probes are written by hand (a TLS
# ClientHello rendered with the script), so no client's start-up adds to the session's.
proxy_listening() { # every listener is up (127.0.0.1:port, state LISTEN, in /proc/net/tcp)
    local table port hex
    table="$(</proc/net/tcp)"
    for port in "$PROXY_TLS_PORT" "$PROXY_HTTP_PORT" "${LOCAL_ENDPOINTS[@]}"; do
        printf -v hex '%04X' "$port"
        [[ "$table" == *" 0100007F:$hex 00000000:0000 0A "* ]] || return 1
    done
}
proxy_logged() { # pattern: it appears in the proxy's log within three seconds (a loaded machine)
    for _ in $(seq 150); do
        grep -Eq "$1" "$PROXY_LOG" && return 0
        sleep 0.02
    done
    return 1
}
http_probe() { # host port name: the reply to a GET for name
    (
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" >&3
        IFS= read -r -t 2 -d '' reply <&3 || true  # to the end of the reply
        printf '%s' "$reply"
    ) 2>/dev/null || true
}
http_status() { # host port name: the status line of the reply to a GET for name (not waiting for the rest)
    (
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" >&3
        IFS= read -r -t 2 line <&3 || true
        printf '%s' "${line%$'\r'}"
    ) 2>/dev/null || true
}
tls_probe() { # host port hello: succeeds when anything answers the ClientHello
    (
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf '%b' "$3" >&3
        IFS= read -r -t "${4:-2}" -n 1 _ <&3
    ) 2>/dev/null
}
if [ "$DOMAIN_EXACT" = 1 ]; then
    step="self-test the proxy"
    for _ in $(seq 250); do
        proxy_listening && break
        [ -d "/proc/$proxy_pid" ] || break
        sleep 0.01
    done
    [ -d "/proc/$proxy_pid" ] || fail "self-test: the proxy is not running: $(tail -n 3 "$PROXY_LOG")"
    if ! proxy_listening; then
        fail "self-test: the proxy does not listen on all of ports $PROXY_TLS_PORT $PROXY_HTTP_PORT ${LOCAL_ENDPOINTS[*]}"
    fi
    proxy_runs_as="$(awk '/^Uid:/ { print $3; exit }' "/proc/$proxy_pid/status")"
    [ "$proxy_runs_as" = "$proxy_uid" ] || fail "self-test: the proxy runs as uid $proxy_runs_as, not $PROXY_USER"
    # Sent to the address an allowlisted name resolved to (through the redirect), unless that
    # address is open at address level anyway; then straight to the listeners.
    where="the proxy"
    http_to=(127.0.0.1 "$PROXY_HTTP_PORT")
    tls_to=(127.0.0.1 "$PROXY_TLS_PORT")
    if [ -n "$resolved" ] && ! ipset test cd-net "$answer" 2>/dev/null \
        && ! { [ "$ALLOW_HOST_NETWORK" = 1 ] && [[ " ${host_targets[*]} " == *" $answer "* ]]; }; then
        where="$answer (the address of $resolved)"
        # A port allowed by address for it (allowed_cidrs with :PORT) is not redirected: then the
        # probe for that protocol goes to the listener itself.
        ipset test cd-netport "$answer,tcp:80" 2>/dev/null || http_to=("$answer" 80)
        ipset test cd-netport "$answer,tcp:443" 2>/dev/null || tls_to=("$answer" 443)
    fi
    body="$(http_probe "${http_to[@]}" "$SELFTEST_REFUSED")"
    if [[ "$body" != *"claude-docker: "* ]] || ! proxy_logged "refused port=80 name=$SELFTEST_REFUSED reason=not-allowed"; then
        fail "self-test: a forbidden name sent to $where over HTTP was not refused by the proxy"
    fi
    if tls_probe "${tls_to[@]}" "$SELFTEST_REFUSED_HELLO" \
        || ! proxy_logged "refused port=443 name=$SELFTEST_REFUSED reason=not-allowed"; then
        fail "self-test: a forbidden name sent to $where over TLS was not refused by the proxy"
    fi
    # The local endpoints answer, and only for their own Host: a request naming another host is
    # refused there (403, and the proxy's log says why), before it could reach an upstream.
    for port in "${LOCAL_ENDPOINTS[@]}"; do
        status="$(http_status 127.0.0.1 "$port" "$SELFTEST_REFUSED")"
        if [[ "$status" != "HTTP/1."?" 403 "* ]] \
            || ! proxy_logged "refused port=$port name=$SELFTEST_REFUSED reason=names-disagree"; then
            fail "self-test: the local endpoint 127.0.0.1:$port did not refuse a request for another host (answer: ${status:-none})"
        fi
    done
    if [ -n "$resolved" ]; then
        # The allow path: the proxy lets the allowlisted name through to its upstream. Proof is
        # an answer (the proxy never answers TLS itself), or the proxy's note that it went on to
        # an upstream that did not answer.
        # One wait for either line (a connection is logged once), so a slow upstream costs at
        # most the probe's second and the log's three, never a wait for a line that cannot come.
        if ! tls_probe "$resolved" 443 "${SELFTEST_HELLOS[$resolved_index]}" 1; then
            refusal="name=$resolved reason=(not-allowed|no-name|no-address)"
            if ! proxy_logged "name=$resolved reason=(not-allowed|no-name|no-address|upstream-failed)"; then
                printf 'claude-docker firewall: warning: %s did not answer through the proxy\n' "$resolved" >&2
            elif grep -Eq "$refusal" "$PROXY_LOG"; then
                fail "self-test: the proxy refused the allowlisted name $resolved"
            fi
        fi
    fi
fi
if [ "$packet_log_on" = 1 ]; then
    # ulogd binds its group and drops to its own user within a few milliseconds; a logger that
    # died leaves the filter as it is (it only logs), so this is a warning, not a failure.
    step="self-test the packet log"
    ulogd_pid="$(cat "$STATE_DIR/ulogd.pid")"
    ulogd_runs_as=""
    for _ in $(seq 100); do
        [ -d "/proc/$ulogd_pid" ] || break
        ulogd_runs_as="$(awk '/^Uid:/ { print $3; exit }' "/proc/$ulogd_pid/status" 2>/dev/null || true)"
        [ "$ulogd_runs_as" = "$(id -u "$ULOGD_USER")" ] && break
        sleep 0.01
    done
    if [ "$ulogd_runs_as" != "$(id -u "$ULOGD_USER")" ]; then
        printf 'claude-docker firewall: warning: the packet logger did not start; refused packets are not logged: %s\n' \
            "$(tail -n 2 "$STATE_DIR/ulogd.log" 2>/dev/null | tr '\n' ' ')" >&2
        kill "$ulogd_pid" 2>/dev/null || true
    fi
fi
trap - ERR
