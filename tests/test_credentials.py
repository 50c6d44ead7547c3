"""Credential material: certificates are parsed once, fast, and unreadable material never leaks into messages."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from orchestrator.credentials import IdentityFailure, parse_certificate
from orchestrator.emulator.crypto import make_client_certificate, pool_key
from orchestrator.models import Status


def test_plain_pfx_fast_path_matches_cryptography_loader() -> None:
    """A password-less PFX read from its plain bags gives the same key and thumbprint as cryptography's loader."""
    cert = make_client_certificate("fast", key_index=1)
    fast = parse_certificate(cert.pfx_b64(), "application/x-pkcs12")
    key, x509_cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(cert.pfx_b64()), None)
    assert key is not None and x509_cert is not None
    assert fast.key.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    assert fast.expires_on == x509_cert.not_valid_after_utc
    pem = parse_certificate(cert.pem_bundle(), "application/x-pem-file")
    assert pem.x5t == fast.x5t


def test_encrypted_pfx_falls_back_to_the_full_loader() -> None:
    """A PFX with encrypted bags (here: a password we do not have) ends as credential_invalid, nothing leaked."""
    cert = make_client_certificate("enc", key_index=2)
    pfx = pkcs12.serialize_key_and_certificates(
        b"x", pool_key(2), cert.certificate, None, serialization.BestAvailableEncryption(b"pw")
    )
    value = base64.b64encode(pfx).decode()
    with pytest.raises(IdentityFailure) as info:
        parse_certificate(value, "application/x-pkcs12")
    assert info.value.status is Status.CREDENTIAL_INVALID
    assert value[:40] not in info.value.message


def test_garbage_is_credential_invalid_without_echoing_it() -> None:
    """Bytes that are neither PEM nor PFX are credential_invalid; the message names the type, never the bytes."""
    secret_like = "not-a-certificate-" + "A" * 64
    with pytest.raises(IdentityFailure) as info:
        parse_certificate(secret_like, "application/x-pkcs12")
    assert info.value.status is Status.CREDENTIAL_INVALID
    assert secret_like not in info.value.message
