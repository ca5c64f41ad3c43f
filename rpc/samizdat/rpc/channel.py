"""Client channels: TLS pinned to a node id (Syncthing model, no CA), or loopback plaintext.

grpc-python cannot verify a certificate by fingerprint, so the channel first reads the node's
certificate over a plain TLS handshake, checks that its public key hashes to the expected node
id, and then hands exactly that certificate to gRPC as the only trust root. A node presenting
any other certificate fails the gRPC handshake.
"""

from __future__ import annotations

import socket
import ssl
import threading

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from samizdat.core.errors import AccessDenied, PeerUnavailable
from samizdat.core.ids import node_id_of
from samizdat.rpc.address import NodeAddress
from samizdat.rpc.limits import CHANNEL_OPTIONS

TLS_SERVER_NAME = "samizdat-node"
_cert_cache: dict[tuple[str, int, str], bytes] = {}
_cache_lock = threading.Lock()


def cert_node_id(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return node_id_of(spki)


def fetch_pinned_cert(address: NodeAddress, timeout: float = 10.0) -> bytes:
    """Return the PEM certificate the node presents, after checking it matches the node id."""
    key = (address.host, address.port, address.node_id)
    with _cache_lock:
        if key in _cert_cache:
            return _cert_cache[key]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((address.host, address.port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=TLS_SERVER_NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as e:
        raise PeerUnavailable(f"node {address.label} is unreachable over TLS: {e}") from None
    if not der:
        raise PeerUnavailable(f"node {address.label} presented no certificate")
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    actual = cert_node_id(pem)
    if actual != address.node_id:
        raise AccessDenied(
            f"node at {address.hostport} is {actual[:8]}..., "
            f"not the pinned {address.node_id[:8]}..."
        )
    with _cache_lock:
        _cert_cache[key] = pem
    return pem


def open_channel(address: NodeAddress) -> grpc.Channel:
    """Open a channel to a node; TLS pinned when the address carries a node id."""
    if not address.node_id:
        return grpc.insecure_channel(address.hostport, options=CHANNEL_OPTIONS)
    pem = fetch_pinned_cert(address)
    creds = grpc.ssl_channel_credentials(root_certificates=pem)
    options = [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", TLS_SERVER_NAME)]
    return grpc.secure_channel(address.hostport, creds, options=options)
