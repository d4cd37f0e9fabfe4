"""A test "CDN edge": several HTTPS names served from ONE address, with a CA of its own.

Like a CDN or a shared host, the server answers whichever name the client asks for: every reply
is `served <TLS server name or -> <Host header or ->`, so a test sees which name got through. It listens
for TLS on 443 and 8443 and for plain HTTP on 80, where it also accepts `CONNECT` (an open
proxy on an allowlisted address, tunnelling to its own 443). Runs the product image with Node,
so no extra image is needed. The CA never leaves the test: the sandbox trusts it per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.fakes.http import address_on
from tests.fakes.tls import test_ca
from tests.support.wait import wait_for

SERVER_JS = r"""
const http = require('http'), https = require('https'), net = require('net');
const tls = {key: process.env.TLS_KEY, cert: process.env.TLS_CERT};
const answer = (req, res) => res.end(`served ${req.socket.servername || '-'} ${req.headers.host || '-'}`);
for (const port of [443, 8443]) https.createServer(tls, answer).listen(port);
const plain = http.createServer(answer);
plain.on('connect', (req, client, head) => {
  const tunnel = net.connect(443, '127.0.0.1', () => {
    client.write('HTTP/1.1 200 Connection established\r\n\r\n');
    tunnel.write(head); tunnel.pipe(client); client.pipe(tunnel);
  });
  tunnel.on('error', () => client.destroy()); client.on('error', () => tunnel.destroy());
});
plain.listen(80, () => console.log('listening'));
"""


@dataclass
class SharedHost:
    container: object
    ca_pem: str
    names: tuple[str, ...]

    def address(self, network: str = "bridge") -> str:
        return address_on(self.container, network)


def make_certificates(names: tuple[str, ...]) -> tuple[str, str, str]:
    """(CA PEM, leaf certificate PEM, leaf key PEM): one leaf for every name, from the machine's test CA."""
    ca = test_ca()
    cert_pem, key_pem = ca.leaf(names)
    return ca.cert_pem, cert_pem, key_pem


def start_shared_host(client, image: str, names: tuple[str, ...], labels: dict[str, str]) -> SharedHost:
    ca_pem, cert_pem, key_pem = make_certificates(names)
    container = client.containers.run(
        image,
        entrypoint=["node", "-e", SERVER_JS],
        command=[],
        environment={"TLS_KEY": key_pem, "TLS_CERT": cert_pem},
        labels=labels,
        detach=True,
    )
    if not wait_for(lambda: b"listening" in container.logs(), 20):
        container.remove(force=True)
        raise RuntimeError(f"shared test host did not start: {container.logs()[-500:]!r}")
    return SharedHost(container, ca_pem, names)
