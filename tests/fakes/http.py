"""Test "internet" hosts: containers answering HTTP on port 80 and counting UDP on 53 and 9999.

Each server answers every HTTP request with its own name, and `/udp` with how many UDP datagrams
it has received, so a test can prove a packet did (or did not) arrive. They run the product
image with Node as the entrypoint, so no extra image is needed.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass

from tests.support.wait import wait_for

SERVER_JS = r"""
const http = require('http'), dgram = require('dgram');
let udp = 0;
for (const port of [53, 9999]) dgram.createSocket('udp4').on('message', () => { udp++; }).bind(port);
http.createServer((req, res) => {
  res.end(req.url === '/udp' ? JSON.stringify({udp}) : process.env.SERVER_NAME);
}).listen(80, () => console.log('listening'));
"""


def address_on(container, network: str = "bridge") -> str:
    """A test container's address on `network` (the default one: Docker's bridge, Podman's podman)."""
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    if network == "bridge" and network not in networks:
        network = "podman"  # Podman's default network has its own name
    return networks[network]["IPAddress"]


@dataclass
class ServerContainer:
    name: str
    container: object  # docker.models.containers.Container

    def address(self, network: str = "bridge") -> str:
        return address_on(self.container, network)

    def udp_count(self) -> int:
        with urllib.request.urlopen(f"http://{self.address()}/udp", timeout=5) as reply:
            return int(json.loads(reply.read())["udp"])


def start_server(client, image: str, name: str, labels: dict[str, str]) -> ServerContainer:
    container = client.containers.run(
        image,
        entrypoint=["node", "-e", SERVER_JS],
        command=[],
        environment={"SERVER_NAME": name},
        labels=labels,
        detach=True,
        auto_remove=False,
    )
    if not wait_for(lambda: b"listening" in container.logs(), 20):
        container.remove(force=True)
        raise RuntimeError(f"test server {name} did not start: {container.logs()[-500:]!r}")
    return ServerContainer(name, container)
