"""Certificates made by the tests, and a Secret volume laid out the way the kubelet writes one.

`TestCA` is a private certificate authority (the `cryptography` package, a runtime dependency):
`issue()` signs a server certificate for 127.0.0.1 and localhost, each with its own serial. A
`SecretVolume` is a directory like the one the kubelet mounts for a Secret: the files are symlinks
through `..data` to a hidden, timestamped directory, and an update writes a new directory and swaps
`..data` atomically (rename), then removes the old one, which is what a running pod sees on rotation.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes
    serial: int


class TestCA:
    """A private CA; its certificate is `cert_pem` (what a caller trusts, ca.crt)."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "agentfleet test CA") -> None:
        self._key = _key()
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._name = subject
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, hosts: tuple[str, ...] = LOCAL_HOSTS, common_name: str = "agent") -> Issued:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=2))
            .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), serial)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.cert_pem)
        return path

    def client_context(self) -> ssl.SSLContext:
        """A client that trusts this CA only."""
        context = ssl.create_default_context(cadata=self.cert_pem.decode())
        return context

    def server_context(self, issued: Issued, workdir: Path) -> ssl.SSLContext:
        """A server context serving `issued` (for the fake servers)."""
        cert, key = workdir / f"{issued.serial:x}.crt", workdir / f"{issued.serial:x}.key"
        cert.write_bytes(issued.cert_pem)
        key.write_bytes(issued.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context


class SecretVolume:
    """A directory laid out as the kubelet mounts a Secret volume (atomic writer), updated as it does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self._generation = 0

    def file(self, key: str) -> Path:
        return self.path / key

    def write(self, files: dict[str, bytes]) -> None:
        """A new timestamped directory with every key, `..data` swapped to it in one rename, the
        per-key symlinks made once, and the previous directory removed."""
        self._generation += 1
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y_%m_%d_%H_%M_%S")
        new = self.path / f"..{stamp}.{os.getpid()}_{self._generation}"
        new.mkdir()
        for key, data in files.items():
            (new / key).write_bytes(data)
        data_link = self.path / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        tmp = self.path / "..data_tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(new.name)
        os.rename(tmp, data_link)  # atomic: a reader sees the old pair or the new one, never a mix
        for key in files:
            link = self.path / key
            if not link.is_symlink():
                link.symlink_to(f"..data/{key}")
        if old is not None:
            for child in (self.path / old).iterdir():
                child.unlink()
            (self.path / old).rmdir()

    def write_pair(self, issued: Issued) -> None:
        self.write({"tls.crt": issued.cert_pem, "tls.key": issued.key_pem})


def peer_serial(host: str, port: int, trust: ssl.SSLContext, server_name: str | None = None) -> int:
    """The serial of the certificate a new TLS connection to host:port is served."""
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        trust.wrap_socket(raw, server_hostname=server_name or host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


class TlsTerminator:
    """HTTPS in front of a plain HTTP server of the tests (the demo MCP server): each TLS connection
    on 127.0.0.1:<port> is relayed to 127.0.0.1:<upstream>, as a TLS-terminating proxy would."""

    def __init__(self, context: ssl.SSLContext, upstream: int) -> None:
        self._context, self._upstream = context, upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="tls-terminator")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(10)
            try:
                client = self._context.wrap_socket(raw, server_side=True)
            except OSError:  # a client that refused the certificate
                raw.close()
                continue
            client.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=5)
