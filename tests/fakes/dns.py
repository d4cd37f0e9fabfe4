"""An authoritative DNS server for the tests' own domain names, with a query log.

Speaks the real DNS wire format (RFC 1035) over UDP and TCP so a real resolver (dnsmasq,
Docker's embedded DNS) can use it as its upstream. Only A records are served; names it does
not know get NXDOMAIN, other record types get an empty answer. Records can change while it
runs (a CDN moving a name to a new address).
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field

from tests.support.serve import serve_in_background

TYPE_A = 1
TYPE_CNAME = 5
CLASS_IN = 1
RCODE_NXDOMAIN = 3
RCODE_FORMERR = 1


@dataclass
class Query:
    name: str  # lower case, no trailing dot
    qtype: int
    client: str
    at: float


def parse_name(packet: bytes, offset: int) -> tuple[str, int]:
    """Read a (possibly compressed) domain name; return it and the offset after it."""
    labels: list[str] = []
    end = None
    for _ in range(128):  # bound pointer loops
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            pointer = struct.unpack_from("!H", packet, offset)[0] & 0x3FFF
            end = offset + 2 if end is None else end
            offset = pointer
            continue
        offset += 1
        if length == 0:
            return ".".join(labels).lower(), (end if end is not None else offset)
        labels.append(packet[offset : offset + length].decode("ascii", "replace"))
        offset += length
    raise ValueError("name too long or looping")


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"


@dataclass
class FakeDNS:
    """A tiny authoritative server: `records` maps names (or `*.zone` wildcards) to IPv4 lists."""

    host: str = "127.0.0.1"
    port: int = 0
    ttl: int = 1
    delay: float = 0.0  # seconds before each answer: the latency of a real upstream
    records: dict[str, list[str]] = field(default_factory=dict)
    cnames: dict[str, str] = field(default_factory=dict)  # alias -> canonical name (both served)
    queries: list[Query] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []

    # --- records and log -------------------------------------------------------------------

    def set(self, name: str, *addresses: str) -> None:
        with self._lock:
            self.records[name.lower().rstrip(".")] = list(addresses)

    def lookup(self, name: str) -> list[str] | None:
        """Exact record first, then the closest `*.zone` wildcard; None = no such name."""
        with self._lock:
            if name in self.records:
                return self.records[name]
            labels = name.split(".")
            for i in range(1, len(labels)):
                wildcard = "*." + ".".join(labels[i:])
                if wildcard in self.records:
                    return self.records[wildcard]
        return None

    def asked(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return any(q.name == name for q in list(self.queries))

    # --- wire format -------------------------------------------------------------------------

    def answer(self, packet: bytes, client: str) -> bytes | None:
        if len(packet) < 12:
            return None
        ident, flags, qdcount = struct.unpack_from("!HHH", packet, 0)
        if flags & 0x8000 or qdcount != 1:
            return struct.pack("!HHHHHH", ident, 0x8000 | RCODE_FORMERR, 0, 0, 0, 0)
        name, offset = parse_name(packet, 12)
        qtype, qclass = struct.unpack_from("!HH", packet, offset)
        question = packet[12 : offset + 4]
        self.queries.append(Query(name, qtype, client, time.time()))
        if self.delay:
            time.sleep(self.delay)
        rd = flags & 0x0100
        header_flags = 0x8000 | 0x0400 | rd  # response, authoritative, echo RD
        answers = b""
        count = 0
        owner = struct.pack("!H", 0xC00C)  # pointer to the question name
        target = self.cnames.get(name)
        if target is not None:  # a CDN-style alias: CNAME, then the target's addresses
            encoded = encode_name(target)
            answers += owner + struct.pack("!HHIH", TYPE_CNAME, CLASS_IN, self.ttl, len(encoded))
            answers += encoded
            count += 1
            owner, name = encoded, target
        addresses = self.lookup(name)
        if addresses is None:
            header_flags |= RCODE_NXDOMAIN if count == 0 else 0
        elif qtype == TYPE_A and qclass == CLASS_IN:
            for address in addresses:
                answers += owner + struct.pack("!HHIH", TYPE_A, CLASS_IN, self.ttl, 4)
                answers += socket.inet_aton(address)
                count += 1
        header = struct.pack("!HHHHHH", ident, header_flags, 1, count, 0, 0)
        return header + question + answers

    # --- serving -----------------------------------------------------------------------------

    def start(self) -> FakeDNS:
        fake = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = fake.answer(data, self.client_address[0])
                if reply:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = self.request.recv(2)
                if len(head) < 2:
                    return
                (length,) = struct.unpack("!H", head)
                data = b""
                while len(data) < length:
                    chunk = self.request.recv(length - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = fake.answer(data, self.client_address[0])
                if reply:
                    self.request.sendall(struct.pack("!H", len(reply)) + reply)

        socketserver.ThreadingUDPServer.allow_reuse_address = True
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        udp = socketserver.ThreadingUDPServer((self.host, self.port), Udp)
        self.port = udp.server_address[1]
        try:
            tcp = socketserver.ThreadingTCPServer((self.host, self.port), Tcp)
        except OSError:
            udp.server_close()  # the port stays free for the next try
            raise
        for server in (udp, tcp):
            server.daemon_threads = True
            serve_in_background(server)
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
