"""docs/deploy.md followed literally: the files it installs exist, the settings it tells a
volunteer to write are ones the relay accepts, and its shell edits do what it says."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from relay import config as config_module

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "deploy.md").read_text()
SHIPPED = (ROOT / "config.toml").read_text()


def _section(title: str) -> str:
    start = GUIDE.index(f"\n## {title}\n")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start : end if end != -1 else None]


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_every_file_the_guide_names_under_deploy_exists() -> None:
    named = set(re.findall(r"deploy/[\w./-]+[\w]", GUIDE))
    assert len(named) >= 8
    missing = sorted(n for n in named if not (ROOT / n).exists())
    assert missing == []


def test_the_settings_for_postfix_are_accepted_with_the_shipped_file(tmp_path: Path) -> None:
    """The shipped config.toml with the guide's block for Postfix written in parses with no
    problem (every key exists, every value is of the right kind)."""
    block = re.search(r"```toml\n(.*?)```", _section("Configure the relay for Postfix"), re.S)
    assert block is not None
    changes = tomllib.loads(block.group(1))
    assert changes["smtp"]["policy_listen"] == "127.0.0.1:10040"
    data = _merged(tomllib.loads(SHIPPED), changes)
    data["relay"]["data_dir"] = str(tmp_path / "data")
    config = config_module.parse(data, tmp_path / "config.toml")
    assert config.authentication.mode == "relay"
    assert config.smtp.policy_listen == config_module.HostPort("127.0.0.1", 10040)
    assert config.authentication.from_front("127.0.0.1")


def test_the_guides_edit_of_data_dir_changes_the_shipped_file(tmp_path: Path) -> None:
    line = next(
        line for line in _section("Install the relay").splitlines() if line.startswith("sed -i")
    )
    installed = tmp_path / "config.toml"
    installed.write_text(SHIPPED)
    command = line.replace("/etc/penpal-relay/config.toml", str(installed))
    subprocess.run(["sh", "-c", command], check=True, timeout=30)
    data = tomllib.loads(installed.read_text())
    assert data["relay"]["data_dir"] == "/var/lib/penpal-relay"
    config = config_module.parse(data, installed)
    assert config.relay.log_file == Path("/var/lib/penpal-relay/relay.log")
