"""Debian packages the tests need: installed when missing, never a reason to skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def ensure_package(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first when it is missing."""
    found = shutil.which(binary) or (binary if Path(binary).exists() else None)
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=600, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, timeout=1200, env=env)
    installed = shutil.which(binary) or binary
    if not Path(installed).exists():
        raise RuntimeError(f"{package} was installed but {binary} is still missing")
    return installed
