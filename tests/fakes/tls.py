"""A test CA that the sandbox image trusts (image.extra_ca_certificates), and leaf certificates.

The image tag is a hash of the build context, CA files included, so the CA is made once per
machine and kept (under $XDG_CACHE_HOME or ~/.cache): a fresh CA on every run would rebuild the
image every run. The servers the tests start (the scripted Messages API, the git server) get a
leaf for their test names, signed by it; nothing outside the tests ever trusts it.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "claude-docker-tests" / "ca"


@dataclass(frozen=True)
class TestCA:
    cert_path: Path
    key_path: Path

    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    def _key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def leaf(self, names: tuple[str, ...]) -> tuple[str, str]:
        """(certificate PEM, key PEM) for these names (DNS names; IPv4 addresses as IP SANs)."""
        import ipaddress

        now = datetime.datetime.now(datetime.timezone.utc)
        ca = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.IPv4Address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        leaf = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._key(), hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        return (
            leaf.public_bytes(pem).decode(),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
        )

    def server_context(self, names: tuple[str, ...]) -> ssl.SSLContext:
        """A server-side TLS context presenting a leaf for `names`."""
        cert_pem, key_pem = self.leaf(names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert.write_text(cert_pem)
            key.write_text(key_pem)
            context.load_cert_chain(cert, key)
        return context


def test_ca(directory: Path | None = None) -> TestCA:
    """The machine's test CA, made on first use (valid for ten years, so the image stays cached)."""
    directory = directory or cache_dir()
    cert_path, key_path = directory / "test-ca.pem", directory / "test-ca.key"
    if cert_path.exists() and key_path.exists():
        return TestCA(cert_path, key_path)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("claude-docker test CA (keys)"))
        .issuer_name(_name("claude-docker test CA (keys)"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    partial_key = key_path.with_suffix(".tmp")
    partial_key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    partial_key.chmod(0o600)
    partial_key.replace(key_path)
    partial_cert = cert_path.with_suffix(".tmp")
    partial_cert.write_bytes(ca.public_bytes(pem))
    partial_cert.replace(cert_path)
    return TestCA(cert_path, key_path)


test_ca.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
TestCA.__test__ = False  # type: ignore[attr-defined]
