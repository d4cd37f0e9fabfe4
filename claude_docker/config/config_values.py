"""Config values the schema's patterns cannot judge alone: IP networks, port mappings and CA
certificate files.

One parser each. `validate` reports what they refuse with file, key path and line
(build_model.semantic_problems); the features take the parsed value from the same functions, so
a value that passes `validate` is never refused later by `up`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from .model import PublishedPort

CIDR_EXAMPLES = "e.g. 10.0.0.0/8 or 10.1.2.3/32:443"
PEM_MARKER = b"-----BEGIN CERTIFICATE-----"


class ValueProblem(ValueError):
    """What is wrong with one config value, in words for the user."""


@dataclass(frozen=True)
class Cidr:
    network: str  # normalised, e.g. "10.0.0.0/8"
    port: int | None = None  # TCP and UDP to this port only


def parse_cidr(entry: str) -> Cidr:
    """`ADDRESS[/PREFIX][:PORT]`, IPv4 only (the firewall closes IPv6 entirely)."""
    text = entry.strip()
    if "/" in text:  # ADDRESS/PREFIX[:PORT]
        address, _, rest = text.partition("/")
        prefix, _, port = rest.partition(":")
        network_text = f"{address}/{prefix}"
    elif text.count(":") == 1:  # IPv4 address with a port; IPv6 has several colons
        network_text, _, port = text.partition(":")
    else:
        network_text, port = text, ""
    try:
        network = ipaddress.ip_network(network_text, strict=False)
    except ValueError:
        raise ValueProblem(f"{entry!r} is not a valid IP address or network ({CIDR_EXAMPLES})") from None
    if network.version != 4:
        raise ValueProblem(
            f"{entry!r} is IPv6, but the firewall closes IPv6 entirely; allow the service's IPv4 network instead"
        )
    if not port:
        return Cidr(str(network))
    if not port.isdigit():
        raise ValueProblem(f"port {port!r} in {entry!r} is not a number ({CIDR_EXAMPLES})")
    if not 1 <= int(port) <= 65535:
        raise ValueProblem(f"port {port} is out of range 1-65535")
    return Cidr(str(network), int(port))


PORT_EXAMPLES = 'e.g. 3000, "8080:80" or "127.0.0.1:8080:80"'


def parse_port_mapping(entry: str | int) -> PublishedPort:
    """`[ADDRESS:][HOST_PORT:]CONTAINER_PORT` (TCP), on the host's loopback unless an IPv4
    address is given; a bare port is published on the same port number."""
    parts = str(entry).strip().split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueProblem(f"{entry!r} is not a port mapping ({PORT_EXAMPLES})")
    address = parts[0] if len(parts) == 3 else PublishedPort.address
    try:
        if ipaddress.ip_address(address).version != 4:
            raise ValueProblem(f"{address!r} in {entry!r} is IPv6; publish on an IPv4 address ({PORT_EXAMPLES})")
    except ValueError:
        raise ValueProblem(f"{address!r} in {entry!r} is not an IPv4 address ({PORT_EXAMPLES})") from None
    ports = parts[-2:] if len(parts) >= 2 else parts * 2
    for port in ports:
        if not port.isdigit():
            raise ValueProblem(f"port {port!r} in {entry!r} is not a number ({PORT_EXAMPLES})")
        if not 1 <= int(port) <= 65535:
            raise ValueProblem(f"port {port} in {entry!r} is out of range 1-65535")
    return PublishedPort(host_port=int(ports[0]), container_port=int(ports[1]), address=address)


def read_ca_certificate(path: str) -> bytes:
    """The bytes of a PEM CA file, as they go into the image."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueProblem(
            f"cannot read {path}: {error.strerror}; point it at a readable PEM file (e.g. your proxy's root certificate)"
        ) from None
    if PEM_MARKER not in data:
        raise ValueProblem(
            f"{path} holds no PEM certificate; use a PEM file (text starting with -----BEGIN CERTIFICATE-----)"
        )
    return data
