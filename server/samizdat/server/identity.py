"""Node identity: an ECDSA P-256 key and a self-signed certificate; node id = key fingerprint."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from samizdat.core.errors import UsageError
from samizdat.core.ids import node_id_of
from samizdat.rpc.channel import TLS_SERVER_NAME

KEY_FILE = "node.key"
CERT_FILE = "node.crt"


@dataclass(frozen=True)
class NodeIdentity:
    key: ec.EllipticCurvePrivateKey
    key_pem: bytes
    cert_pem: bytes

    @property
    def node_id(self) -> str:
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return node_id_of(spki)


def create_identity(directory: Path) -> NodeIdentity:
    """Generate a key pair and a self-signed certificate in `directory` (key mode 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365 * 30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_SERVER_NAME)]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    fd = os.open(directory / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    (directory / CERT_FILE).write_bytes(cert_pem)
    return NodeIdentity(key, key_pem, cert_pem)


def load_identity(directory: Path) -> NodeIdentity:
    try:
        key_pem = (directory / KEY_FILE).read_bytes()
        cert_pem = (directory / CERT_FILE).read_bytes()
    except FileNotFoundError as e:
        raise UsageError(
            f"{e.filename} is missing: is {directory} a node (samizdat-node init)?"
        ) from None
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"{directory / KEY_FILE} is not an EC node key")
    return NodeIdentity(key, key_pem, cert_pem)
