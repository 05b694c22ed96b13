"""TLS of the runtime, both ways: the certificate it serves HTTPS with, reloaded when it rotates, and
the trust its outbound clients verify with (the public CAs plus a private CA bundle).

Serving: the pair comes from files, in a pod a kubernetes.io/tls Secret mounted as a volume. The
kubelet updates such a volume by writing a new hidden directory and swapping the `..data` symlink, so
the files change as a whole, in place, and the pod keeps running. `ServerCertificate` looks at them
every few seconds; a changed pair is loaded into a new SSLContext, and every handshake from then on is
moved onto it by the listening context's SNI callback (which OpenSSL calls for every ClientHello, with
or without a server name). The listening socket, the connections already open and the requests in
flight are untouched. A pair that does not load (a key that does not match its certificate, a file cut
short) is logged and counted (`agent_tls_certificate_reloads_total{result="error"}`) and the last good
pair stays in use: a bad rotation never takes the server down, and readiness does not change.

Outbound: `client_context` is httpx's own default trust (certifi's public CAs, or $SSL_CERT_FILE)
plus a PEM bundle of private CAs, for a model endpoint or a Connector whose certificate a private CA
signed. `OutboundClients` keeps one HTTP client per bundle, so calls with the same trust share their
connections and calls without a bundle keep the runtime's one default client.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from agentfleet_contract.tls_errors import untrusted_certificate
from cryptography import x509

log = logging.getLogger("agentfleet_runtime.tls")

__all__ = ["CertificateInfo", "OutboundClients", "ServerCertificate", "client_context", "untrusted_certificate"]


# ---- outbound ------------------------------------------------------------------------------------


def client_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The trust of an outbound client: what httpx trusts by default, plus the CAs of `ca_file`.

    ValueError names the file when it cannot be read or holds no certificate; the runtime then does
    not start, which is what the operator wants of a revision whose bundle is broken (its pods never
    become ready, the running revision keeps serving)."""
    context = httpx.create_ssl_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ValueError(f"CA bundle {ca_file}: {_why(exc)}") from None
    return context


def untrusted_message(what: str, exc: BaseException, field: str) -> str | None:
    """The one sentence every outbound client says when `what`'s certificate is not trusted."""
    why = untrusted_certificate(exc)
    if why is None:
        return None
    return f"{what} presented a TLS certificate that is not trusted ({why}); if a private CA signed it, set {field}"


ClientFactory = Callable[[ssl.SSLContext], httpx.AsyncClient]


class OutboundClients:
    """The runtime's HTTP clients by trust: `default` for endpoints with public certificates, and one
    client per CA bundle file, made on first use by `make` (same limits and headers as the default)."""

    def __init__(self, default: httpx.AsyncClient, make: ClientFactory | None = None) -> None:
        self.default = default
        self._make = make or (lambda verify: httpx.AsyncClient(verify=verify, follow_redirects=False))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}

    def context(self, ca_file: str) -> ssl.SSLContext:
        if ca_file not in self._contexts:
            self._contexts[ca_file] = client_context(ca_file)
        return self._contexts[ca_file]

    def client(self, ca_file: str | None) -> httpx.AsyncClient:
        if not ca_file:
            return self.default
        if ca_file not in self._clients:
            self._clients[ca_file] = self._make(self.context(ca_file))
        return self._clients[ca_file]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        await self.default.aclose()


# ---- serving -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    """What may be said about a served certificate: never anything of its key."""

    serial: str  # hexadecimal
    subject: str
    not_after: datetime

    @classmethod
    def of(cls, pem: bytes) -> CertificateInfo:
        cert = x509.load_pem_x509_certificate(pem)
        return cls(format(cert.serial_number, "x"), cert.subject.rfc4514_string(), cert.not_valid_after_utc)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.library or 'SSL'}: {exc.reason}"  # e.g. X509: KEY_VALUES_MISMATCH; never file contents
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class CertificateError(ValueError):
    """A certificate/key pair that cannot be served; the message names the files and says why."""


@dataclass(frozen=True)
class _Pair:
    context: ssl.SSLContext
    fingerprint: str
    info: CertificateInfo


class ServerCertificate:
    """The pair HTTPS is served with, reloaded from its files when they change.

    `context` is the SSLContext to listen with (uvicorn's ssl_context_factory); it stays the same
    object for the life of the server. `check()` looks at the files once; `watch()` does so forever."""

    def __init__(
        self,
        cert_file: str,
        key_file: str,
        *,
        on_reload: Callable[[str, CertificateInfo | None], None] | None = None,
    ) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._on_reload = on_reload
        first = self._load(*self._snapshot())  # CertificateError: the runtime does not start
        self._listening = first.context
        self._listening.sni_callback = self._choose
        self._current = first
        self._failed_fingerprint = ""  # the last pair that did not load, so it is reported once

    @property
    def context(self) -> ssl.SSLContext:
        return self._listening

    @property
    def info(self) -> CertificateInfo:
        return self._current.info

    def _choose(self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        # Called by OpenSSL for each ClientHello, before the certificate is chosen.
        current = self._current.context
        if context is not current:
            ssl_object.context = current

    def _snapshot(self) -> tuple[str, str, str, bytes]:
        """The files' real paths (through the kubelet's `..data` symlink: one directory that is never
        changed once written), their combined hash, and the certificate's PEM."""
        cert_path, key_path = os.path.realpath(self.cert_file), os.path.realpath(self.key_file)
        try:
            with open(cert_path, "rb") as cert, open(key_path, "rb") as key:
                cert_pem, key_pem = cert.read(), key.read()
        except OSError as exc:
            raise CertificateError(
                f"cannot read the TLS certificate {self.cert_file} or key {self.key_file}: {_why(exc)}"
            ) from None
        digest = hashlib.sha256(hashlib.sha256(cert_pem).digest() + hashlib.sha256(key_pem).digest()).hexdigest()
        return cert_path, key_path, digest, cert_pem

    def _load(self, cert_path: str, key_path: str, fingerprint: str, cert_pem: bytes) -> _Pair:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])  # the runtime's servers speak HTTP/1.1
        try:
            context.load_cert_chain(certfile=cert_path, keyfile=key_path)
            info = CertificateInfo.of(cert_pem)
        except (OSError, ValueError) as exc:
            raise CertificateError(
                f"cannot load the TLS certificate {self.cert_file} with key {self.key_file}: {_why(exc)}"
            ) from None
        return _Pair(context, fingerprint, info)

    def check(self) -> str | None:
        """Look at the files once: "reloaded", "error" (the old pair stays), or None (unchanged, or
        mid-swap: the kubelet removed the directory just read; the next look sees the new one)."""
        try:
            snapshot = self._snapshot()
        except CertificateError as exc:
            if os.path.exists(self.cert_file) and os.path.exists(self.key_file):
                return None  # a directory swapped away between resolving and reading
            return self._failed(str(exc), "missing")
        fingerprint = snapshot[2]
        if fingerprint in (self._current.fingerprint, self._failed_fingerprint):
            return None
        try:
            pair = self._load(*snapshot)
        except CertificateError as exc:
            return self._failed(str(exc), fingerprint)
        previous = self._current.info
        self._current = pair
        self._failed_fingerprint = ""
        log.info(
            "TLS certificate reloaded",
            extra={
                "serial": pair.info.serial,
                "previous_serial": previous.serial,
                "expires": pair.info.not_after.isoformat(),
            },
        )
        if self._on_reload is not None:
            self._on_reload("success", pair.info)
        return "reloaded"

    def _failed(self, reason: str, fingerprint: str) -> str | None:
        if fingerprint == self._failed_fingerprint:
            return None
        self._failed_fingerprint = fingerprint
        log.error(
            "TLS certificate not reloaded; the previous one is still served",
            extra={"reason": reason, "serial": self._current.info.serial},
        )
        if self._on_reload is not None:
            self._on_reload("error", None)
        return "error"

    async def watch(self, interval: float) -> None:
        """check() every `interval` seconds until cancelled; reading two small files is all it costs."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.check()
            except Exception:  # never let the watch die: the next look may succeed
                log.exception("TLS certificate check failed")
