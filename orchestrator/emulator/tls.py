"""TLS for the emulator: a fresh CA and server certificate per start; only the CA certificate is published.

`ssl` loads a private key only from a file, so the server key goes, for the moment of loading, into a file
this process creates itself (O_CREAT|O_EXCL|O_NOFOLLOW, 0600) in a fresh private directory, never into
`--ca-dir`: a symlink planted there (`server.key` → somewhere) cannot make the emulator write key material
through it. `ca.pem` is written to a new file and renamed over the old name, which replaces a planted
symlink instead of following it.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path

from .crypto import make_tls_material

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def write_new_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to a file that must not exist yet (no symlink followed, no file reused)."""
    fd = os.open(path, _CREATE, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _server_ssl_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="pal-emulator-key-") as private:  # 0700, fresh, ours alone
        cert_file = Path(private) / "server.pem"
        key_file = Path(private) / "server.key"
        write_new_file(cert_file, cert_pem)
        write_new_file(key_file, key_pem)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _publish_ca(directory: Path, ca_pem: bytes) -> Path:
    """Write `directory/ca.pem` without following whatever is at that name now."""
    ca_file = directory / "ca.pem"
    staging = directory / f".ca.pem.{os.getpid()}.{os.urandom(4).hex()}"
    write_new_file(staging, ca_pem, 0o644)
    try:
        os.replace(staging, ca_file)
    except OSError:
        staging.unlink(missing_ok=True)
        raise
    return ca_file


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
    ca_file = _publish_ca(directory, material.ca_pem)
    return str(ca_file), _server_ssl_context(material.cert_pem, material.key_pem), tmp
