"""--ca-dir never follows a planted symlink; the server key never lands in it."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from orchestrator.emulator import Emulator
from orchestrator.emulator.tls import prepare_tls


def test_planted_symlinks_in_ca_dir_are_not_followed(tmp_path: Path) -> None:
    """Symlinks planted as server.key, server.pem and ca.pem in --ca-dir: their targets stay untouched."""
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    victims = {}
    for name in ("server.key", "server.pem", "ca.pem"):
        victim = tmp_path / f"victim-{name}"
        victim.write_text("precious\n")
        (ca_dir / name).symlink_to(victim)
        victims[name] = victim
    ca_path, ctx, tmp = prepare_tls(ca_dir)
    assert tmp is None and isinstance(ctx, ssl.SSLContext)
    for victim in victims.values():
        assert victim.read_text() == "precious\n"
    ca = Path(ca_path)
    assert not ca.is_symlink() and ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"PRIVATE KEY" not in ca.read_bytes()
    assert sorted(p.name for p in ca_dir.iterdir()) == ["ca.pem", "server.key", "server.pem"]  # planted links only


def test_no_key_material_left_in_ca_dir(tmp_path: Path) -> None:
    """A running emulator with --ca-dir leaves only ca.pem there (no key, not even briefly readable later)."""
    with Emulator(ca_dir=tmp_path) as em:
        assert Path(em.ca_path).parent == tmp_path
        assert [p.name for p in tmp_path.iterdir()] == ["ca.pem"]
        for path in tmp_path.iterdir():
            assert b"PRIVATE KEY" not in path.read_bytes()
            assert os.stat(path).st_mode & 0o022 == 0
