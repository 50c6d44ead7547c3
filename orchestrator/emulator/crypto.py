"""Key material for the emulator: a TLS CA and server certificate, a pool of RSA keys, JWT helpers.

Generating RSA keys is the slow part of building a large world, so identities share a small pool of
RSA-2048 keys (each still gets its own certificate) and the pool lives for the whole process.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import threading
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

KEY_POOL_SIZE = 4
_pool: list[rsa.RSAPrivateKey] = []
_pool_pem: list[bytes] = []
_pool_lock = threading.Lock()


def utcnow() -> dt.datetime:
    """The current time, UTC-aware (the emulator never uses naive datetimes)."""
    return dt.datetime.now(dt.UTC)


def pool_key(index: int) -> rsa.RSAPrivateKey:
    """One RSA-2048 key of the process-wide pool; `index` wraps around."""
    with _pool_lock:
        while len(_pool) < KEY_POOL_SIZE:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _pool.append(key)
            _pool_pem.append(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return _pool[index % KEY_POOL_SIZE]


def pool_key_pem(index: int) -> bytes:
    """The unencrypted PKCS#8 PEM of `pool_key(index)` (serialised once per process)."""
    pool_key(index)
    return _pool_pem[index % KEY_POOL_SIZE]


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (azure-identity pads, PyJWT does not)."""
    text = text.strip().rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """A generated certificate and its thumbprints as Entra ID matches them (base64url of the digest)."""

    certificate: x509.Certificate
    key_index: int
    sha1_b64: str
    sha256_b64: str
    sha1_hex: str

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def pem(self) -> bytes:
        """Certificate PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def pem_bundle(self) -> str:
        """Private key + certificate PEM, the Key Vault `application/x-pem-file` secret value."""
        return (pool_key_pem(self.key_index) + self.pem()).decode("ascii")

    def pfx_b64(self) -> str:
        """Base64 PKCS#12 with no password, the Key Vault `application/x-pkcs12` secret value."""
        blob = pkcs12.serialize_key_and_certificates(
            None, pool_key(self.key_index), self.certificate, None, serialization.NoEncryption()
        )
        return base64.b64encode(blob).decode("ascii")

    def __repr__(self) -> str:
        return f"CertificateInfo(sha1={self.sha1_hex}, not_after={self.not_after.isoformat()})"


def certificate_info(cert: x509.Certificate, key_index: int = -1) -> CertificateInfo:
    """Wrap an x509 certificate with the thumbprints the token endpoint looks up."""
    sha1 = cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by definition
    sha256 = cert.fingerprint(hashes.SHA256())
    return CertificateInfo(cert, key_index, b64url(sha1), b64url(sha256), sha1.hex().upper())


def make_client_certificate(
    common_name: str,
    *,
    key_index: int,
    not_after: dt.datetime | None = None,
    not_before: dt.datetime | None = None,
) -> CertificateInfo:
    """A self-signed client certificate for one identity, signed with a pool key."""
    key = pool_key(key_index)
    now = utcnow()
    nb = not_before or (now - dt.timedelta(days=1))
    na = not_after or (now + dt.timedelta(days=365))
    if na <= nb:
        nb = na - dt.timedelta(days=30)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "emulator")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .sign(key, hashes.SHA256())
    )
    return certificate_info(cert, key_index % KEY_POOL_SIZE)


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A CA and a server certificate for 127.0.0.1/localhost, all PEM."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_tls_material() -> TlsMaterial:
    """Generate a fresh CA and a server certificate (EC P-256: fast to make, fine for every client)."""
    now = utcnow()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pal-orchestrator emulator CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=29))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return TlsMaterial(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


# --- JWTs -------------------------------------------------------------------------------------------


class JwtError(ValueError):
    """A JWT that cannot be parsed or whose signature does not verify."""


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split a compact JWS into (header, claims, signing input, signature) without verifying it."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("not a compact JWS")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise JwtError("malformed JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("malformed JWT")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def verify_signature(alg: str, public_key: Any, signing_input: bytes, signature: bytes) -> None:
    """Check an RS256 or PS256 signature; raise JwtError otherwise."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise JwtError("unsupported key type")
    try:
        if alg == "RS256":
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            # Salt length = digest length is what MSAL/PyJWT and azure-identity both use.
            public_key.verify(
                signature,
                signing_input,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        else:
            raise JwtError(f"unsupported alg {alg!r}")
    except InvalidSignature as exc:
        raise JwtError("signature does not verify") from exc


def sign_rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any], header: dict[str, Any]) -> str:
    """Sign `claims` as a compact RS256 JWS."""
    head = b64url(json.dumps({"alg": "RS256", "typ": "JWT", **header}, separators=(",", ":")).encode())
    body = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{head}.{body}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64url(signature)}"


def jwk(public_key: rsa.RSAPublicKey, kid: str) -> dict[str, Any]:
    """The JWK of an RSA public key (for the discovery `keys` document)."""
    numbers = public_key.public_numbers()

    def _int(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "use": "sig", "kid": kid, "n": _int(numbers.n), "e": _int(numbers.e)}


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """A stable key ID: SHA-256 of the DER public key, shortened."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())[:22]
