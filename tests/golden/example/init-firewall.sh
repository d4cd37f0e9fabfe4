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
#  4. A self-test proves an allowlisted name is admitted and anything else is refused, by DNS
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
readonly SELFTEST_NAMES=(api.anthropic.com api.github.com claude.ai )
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
HOST_ADDRESSES="${CLAUDE_DOCKER_HOST_ADDRESSES:-}"  # set by the host: its own addresses

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

step="load the ipsets"
ipset restore -exist <<'IPSETS'
create cd-dns hash:ip family inet
create cd-net hash:net family inet
create cd-netport hash:net,port family inet
add cd-net 10.0.0.0/8
add cd-netport 192.168.1.5/32,tcp:8080
add cd-netport 192.168.1.5/32,udp:8080
IPSETS

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
    echo '-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT'
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
    for address in "${host_targets[@]}"; do
        if [ "$ALLOW_HOST_NETWORK" = 1 ]; then
            echo "-A OUTPUT -d $address/32 -j ACCEPT"
        else
            echo "-A OUTPUT -d $address/32 -p tcp -j REJECT --reject-with tcp-reset"
            echo "-A OUTPUT -d $address/32 -j REJECT --reject-with icmp-admin-prohibited"
        fi
    done
    if [ "$DOMAIN_EXACT" = 1 ]; then
        # Redirected to the proxy (the filter still sees the interface the packet was routed to
        # before nat moved it to loopback). Admitted addresses: through the proxy only, ICMP aside.
        echo "-A OUTPUT -d 127.0.0.1/32 -p tcp -m multiport --dports $PROXY_TLS_PORT,$PROXY_HTTP_PORT -j ACCEPT"
        echo "-A OUTPUT -m set --match-set cd-dns dst -m owner --uid-owner $proxy_uid -j ACCEPT"
        echo '-A OUTPUT -p icmp -m set --match-set cd-dns dst -j ACCEPT'
    else
        echo '-A OUTPUT -m set --match-set cd-dns dst -j ACCEPT'
    fi
    echo '-A OUTPUT -m set --match-set cd-net dst -j ACCEPT'
    echo '-A OUTPUT -m set --match-set cd-netport dst,dst -j ACCEPT'
    # Reject rather than drop, so tools fail at once instead of hanging.
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
    --pid-file="$STATE_DIR/dnsmasq.pid" --log-facility="$DNS_LOG"
# dnsmasq hands its open log to its own user, mode 0660; give it back so the host user can read
# it (dnsmasq keeps writing through its open descriptor).
chown root:root "$DNS_LOG"
chmod 0644 "$DNS_LOG"

step="start the proxy"
if [ "$DOMAIN_EXACT" = 1 ]; then
    touch "$PROXY_LOG"
    chmod 0644 "$PROXY_LOG"
    # Started as root, it binds and becomes its own user; it logs refusals to the descriptor
    # root opened, so neither it nor the agent can rewrite the log.
    haproxy -db -f "$PROXY_CONF" </dev/null >>"$PROXY_LOG" 2>&1 &
    proxy_pid=$!
    echo "$proxy_pid" >"$STATE_DIR/proxy.pid"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PROXY_HTTP_PORT") 2>/dev/null; then
            break
        fi
        [ -d "/proc/$proxy_pid" ] || fail "the proxy did not start: $(tail -n 3 "$PROXY_LOG")"
        sleep 0.02
    done
fi

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
    printf 'claude-docker firewall: warning: none of %s resolved through upstream %s; allowlisted names may not work\n' \
        "${SELFTEST_NAMES[*]}" "${upstreams[*]}" >&2
fi

# The proxy: running as its own user, and refusing a forbidden name sent to an address that is
# admitted (an allowlisted name's), over TLS and plain HTTP.
proxy_refused() { # port: the refusal of SELFTEST_REFUSED on that port is in the proxy's log
    for _ in $(seq 50); do
        grep -q "refused port=$1 name=$SELFTEST_REFUSED reason=not-allowed" "$PROXY_LOG" && return 0
        sleep 0.02
    done
    return 1
}
if [ "$DOMAIN_EXACT" = 1 ]; then
    step="self-test the proxy"
    [ -d "/proc/$proxy_pid" ] || fail "self-test: the proxy is not running"
    proxy_runs_as="$(awk '/^Uid:/ { print $3; exit }' "/proc/$proxy_pid/status")"
    [ "$proxy_runs_as" = "$proxy_uid" ] || fail "self-test: the proxy runs as uid $proxy_runs_as, not $PROXY_USER"
    # Sent to the address an allowlisted name resolved to (through the redirect), unless that
    # address is open at address level anyway; then straight to the listeners.
    where="the proxy"
    http_to="127.0.0.1:$PROXY_HTTP_PORT"
    tls_to="127.0.0.1:$PROXY_TLS_PORT"
    if [ -n "$resolved" ] && ! ipset test cd-net "$answer" 2>/dev/null \
        && ! { [ "$ALLOW_HOST_NETWORK" = 1 ] && [[ " ${host_targets[*]} " == *" $answer "* ]]; }; then
        where="$answer (the address of $resolved)"
        http_to="$answer:80"
        tls_to="$answer:443"
    fi
    body="$(curl -s --max-time 3 -H "Host: $SELFTEST_REFUSED" "http://$http_to/" || true)"
    if [[ "$body" != "claude-docker: "* ]] || ! proxy_refused 80; then
        fail "self-test: a forbidden name sent to $where over HTTP was not refused by the proxy"
    fi
    if curl -s -k --max-time 3 --connect-to "::$tls_to" "https://$SELFTEST_REFUSED/" >/dev/null 2>&1 \
        || ! proxy_refused 443; then
        fail "self-test: a forbidden name sent to $where over TLS was not refused by the proxy"
    fi
    if [ -n "$resolved" ]; then
        # The allow path: the proxy lets the allowlisted name through to its upstream. Proof is
        # an answer, or the proxy's note that it went on to the upstream (which may be silent).
        code="$(curl -s -k -o /dev/null -w '%{http_code}' --max-time 1 "https://$resolved/" || true)"
        passed=0
        for _ in $(seq 25); do
            grep -q "name=$resolved reason=upstream-failed" "$PROXY_LOG" && { passed=1; break; }
            grep -Eq "name=$resolved reason=(not-allowed|no-name|no-address)" "$PROXY_LOG" \
                && fail "self-test: the proxy refused the allowlisted name $resolved"
            [ -n "$code" ] && [ "$code" != 000 ] && { passed=1; break; }
            sleep 0.02
        done
        if [ "$passed" = 0 ]; then
            printf 'claude-docker firewall: warning: %s did not answer through the proxy\n' "$resolved" >&2
        fi
    fi
fi
trap - ERR
