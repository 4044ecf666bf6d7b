"""Debian packages that the distributed run and the UI checks need, installed when missing.

CI starts on a fresh machine where Postgres, Redis and Chromium may not be installed; the tests
install them through apt rather than asking the user to, and say what to do when they cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from zooflow.errors import ConfigurationError


def ensure_debian_packages(binaries: Mapping[str, str], *, timeout: float = 900) -> dict[str, str]:
    """Paths of ``binaries`` ({binary name or absolute path: Debian package}), installing missing packages."""
    missing = sorted({package for binary, package in binaries.items() if not _which(binary)})
    if missing:
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            raise ConfigurationError(
                f"Missing {', '.join(missing)} and cannot install them here (needs apt-get as root). "
                f"Install them with: sudo apt-get install -y {' '.join(missing)}"
            )
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for args in ([apt, "update", "-q"], [apt, "install", "-y", "-q", "--no-install-recommends", *missing]):
            result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
            if result.returncode != 0:
                raise ConfigurationError(f"`{' '.join(args)}` failed: {result.stderr.strip()[-600:]}")
    found = {binary: _which(binary) for binary in binaries}
    still_missing = [binary for binary, path in found.items() if not path]
    if still_missing:
        raise ConfigurationError(f"After installing {', '.join(missing)}, still no {', '.join(still_missing)}")
    return {binary: str(path) for binary, path in found.items()}


def _which(binary: str) -> str | None:
    if os.path.isabs(binary):
        return binary if os.access(binary, os.X_OK) else None
    return shutil.which(binary)
