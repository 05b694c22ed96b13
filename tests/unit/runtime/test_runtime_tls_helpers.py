"""The runtime's TLS helpers without a server: what loads, what is refused and how it is said."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from agentfleet_runtime.config import RuntimeConfig
from agentfleet_runtime.tls import (
    CertificateError,
    OutboundClients,
    ServerCertificate,
    client_context,
    untrusted_certificate,
    untrusted_message,
)

from tests.fakes.tls import SecretVolume, TestCA


def test_a_ca_bundle_adds_to_the_public_cas(tmp_path: Path) -> None:
    ca = TestCA()
    public = client_context().cert_store_stats()["x509_ca"]
    with_bundle = client_context(str(ca.write(tmp_path / "ca.crt"))).cert_store_stats()["x509_ca"]
    assert public > 50 and with_bundle == public + 1


@pytest.mark.parametrize("content", [None, b"", b"not a certificate"])
def test_a_broken_ca_bundle_names_its_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "ca.crt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"CA bundle {path}"):
        client_context(str(path))


async def test_one_client_per_bundle_and_the_default_without(tmp_path: Path) -> None:
    ca = str(TestCA().write(tmp_path / "ca.crt"))
    clients = OutboundClients(httpx.AsyncClient())
    assert clients.client(None) is clients.default
    assert clients.client(ca) is clients.client(ca) is not clients.default
    assert clients.context(ca) is clients.context(ca)
    await clients.aclose()
    assert clients.default.is_closed and clients.client(ca).is_closed


def test_an_untrusted_certificate_is_found_through_the_cause_chain() -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "unable to get local issuer certificate"
    try:
        try:
            raise cause
        except ssl.SSLError as exc:
            raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]") from exc
    except httpx.ConnectError as wrapped:
        error = wrapped
    assert untrusted_certificate(error) == "unable to get local issuer certificate"
    message = untrusted_message("crm", error, "spec.caBundleSecretRef")
    assert message == (
        "crm presented a TLS certificate that is not trusted (unable to get local issuer certificate); "
        "if a private CA signed it, set spec.caBundleSecretRef"
    )
    assert untrusted_certificate(httpx.ConnectError("refused")) is None


def test_the_server_certificate_must_load_at_start(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="cannot read the TLS certificate"):
        ServerCertificate(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    ca = TestCA()
    volume = SecretVolume(tmp_path / "v")
    volume.write({"tls.crt": ca.issue().cert_pem, "tls.key": ca.issue().key_pem})
    with pytest.raises(CertificateError, match="KEY_VALUES_MISMATCH") as refused:
        ServerCertificate(str(volume.file("tls.crt")), str(volume.file("tls.key")))
    assert "PRIVATE KEY" not in str(refused.value)


def test_check_reloads_a_change_once_and_reports_a_problem_once(tmp_path: Path) -> None:
    ca = TestCA()
    volume = SecretVolume(tmp_path / "v")
    first = ca.issue()
    volume.write_pair(first)
    seen: list[tuple[str, str | None]] = []
    certificate = ServerCertificate(
        str(volume.file("tls.crt")),
        str(volume.file("tls.key")),
        on_reload=lambda result, info: seen.append((result, info.serial if info else None)),
    )
    listening = certificate.context
    assert certificate.info.serial == format(first.serial, "x")
    assert certificate.check() is None  # nothing changed

    second = ca.issue()
    volume.write_pair(second)
    assert certificate.check() == "reloaded"
    assert certificate.check() is None
    assert certificate.info.serial == format(second.serial, "x")
    assert certificate.context is listening  # the listening context stays; the pair behind it changed

    volume.write({"tls.crt": ca.issue().cert_pem, "tls.key": second.key_pem})
    assert certificate.check() == "error"
    assert certificate.check() is None  # the same broken pair: said once
    assert certificate.info.serial == format(second.serial, "x")
    assert seen == [("success", format(second.serial, "x")), ("error", None)]


def test_the_config_takes_tls_paths_and_ca_files() -> None:
    config = RuntimeConfig.model_validate(
        {
            "agent": {"name": "a"},
            "model": {"provider": "openai-compatible", "name": "m", "endpoint": "https://x/v1", "caFile": "/ca"},
            "connectors": [{"name": "c", "type": "http", "endpoint": "https://c", "caFile": "/cc"}],
            "server": {"tls": {"certFile": "/t/tls.crt", "keyFile": "/t/tls.key"}},
        }
    )
    assert config.server.tls is not None and config.server.tls.reload_interval_seconds == 10
    assert config.model.ca_file == "/ca" and config.connectors[0].ca_file == "/cc"
