"""TLS for the emulator: a fresh CA and server certificate per start; only the CA certificate is written."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from .crypto import make_tls_material


def _server_ssl_context(cert_pem: bytes, key_pem: bytes, directory: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    cert_file.write_bytes(cert_pem)
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    finally:
        key_file.unlink(missing_ok=True)
    return ctx


def prepare_tls(
    ca_dir: Path | None,
) -> tuple[str, ssl.SSLContext, tempfile.TemporaryDirectory[str] | None]:
    """Generate the CA and server certificate, write ca.pem (to `ca_dir` or a temp dir), build the context."""
    material = make_tls_material()
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if ca_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pal-emulator-")
        directory = Path(tmp.name)
    else:
        directory = ca_dir
        directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(material.ca_pem)
    return str(ca_file), _server_ssl_context(material.cert_pem, material.key_pem, directory), tmp
