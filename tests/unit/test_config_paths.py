"""Which folder a relative path in config.toml is relative to: files the relay writes live
in data_dir, files the coordinator writes beside the config file; an old config keeps
working and is told what to write instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from relay import config as config_module
from tests.conftest import config_text


def _load(
    tmp_path: Path, data_dir: str, relay: str = "", sections: str = ""
) -> config_module.Config:
    text = config_text(Path("PLACEHOLDER"), extra_relay=relay, extra_sections=sections)
    text = text.replace('data_dir = "PLACEHOLDER"', f'data_dir = "{data_dir}"')
    text = text.replace('log_file = "PLACEHOLDER/relay.log"\n', "")
    text = text.replace('maildir = "PLACEHOLDER/maildir"\n', "")
    assert "PLACEHOLDER" not in text
    folder = tmp_path / "etc"
    folder.mkdir(exist_ok=True)
    path = folder / "config.toml"
    path.write_text(text)
    return config_module.load(path)


def test_state_paths_are_inside_data_dir(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "/srv/penpal",
        relay='log_file = "relay.log"',
        sections='\n[dkim]\nkey_file = "keys/dkim.pem"\n',
    )
    assert config.relay.data_dir == Path("/srv/penpal")
    assert config.relay.log_file == Path("/srv/penpal/relay.log")
    assert config.delivery.maildir == Path("/srv/penpal/maildir")
    assert config.dkim.key_file == Path("/srv/penpal/keys/dkim.pem")
    assert config.warnings == ()


def test_coordinator_paths_stay_beside_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "smtp-password").write_text("secret\n")
    config = _load(
        tmp_path,
        "data",
        relay='templates_dir = "my-templates"',
        sections="",
    )
    assert config.relay.data_dir == tmp_path / "etc" / "data"
    assert config.relay.templates_dir == tmp_path / "etc" / "my-templates"
    assert config.relay.log_file is None
    assert config.delivery.maildir == tmp_path / "etc" / "data" / "maildir"


def test_password_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "smtp-password").write_text("secret\n")
    text = config_text(tmp_path / "data", transport="smtp")
    text = text.replace(
        "starttls = false", 'starttls = false\nusername = "u"\npassword_file = "smtp-password"'
    )
    path = tmp_path / "etc" / "config.toml"
    path.write_text(text)
    config = config_module.load(path)
    assert config.delivery.password_file == tmp_path / "etc" / "smtp-password"


def test_refresh_token_file_is_inside_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "oauth-refresh").write_text("token\n")
    imap = """
    [imap]
    host = "imap.example.org"
    username = "pals@example.org"
    [imap.oauth2]
    provider = "google"
    client_id = "id"
    refresh_token_file = "oauth-refresh"
    """
    config = _load(tmp_path, str(data), sections=imap)
    assert config.imap is not None and config.imap.oauth2 is not None
    assert config.imap.oauth2.refresh_token_file == data / "oauth-refresh"


@pytest.mark.parametrize(
    ("data_dir", "log_file", "suggested"),
    [
        ("var", "var/relay.log", "relay.log"),
        ("./var", "var/logs/relay.log", "logs/relay.log"),
        ("var", "./var/relay.log", "relay.log"),
    ],
)
def test_an_old_relative_path_keeps_its_meaning_with_a_warning(
    tmp_path: Path, data_dir: str, log_file: str, suggested: str
) -> None:
    config = _load(tmp_path, data_dir, relay=f'log_file = "{log_file}"')
    base = tmp_path / "etc"
    assert config.relay.log_file == base / log_file
    assert config.relay.log_file != config.relay.data_dir / log_file
    assert len(config.warnings) == 1
    assert config.warnings[0].startswith("relay.log_file: ")
    assert f'write log_file = "{suggested}"' in config.warnings[0]


def test_an_old_maildir_keeps_its_meaning(tmp_path: Path) -> None:
    text = config_text(Path("var")).replace('log_file = "var/relay.log"\n', "")
    path = tmp_path / "config.toml"
    path.write_text(text)
    config = config_module.load(path)
    assert config.delivery.maildir == tmp_path / "var" / "maildir"
    assert config.warnings == (
        "delivery.maildir: 'var/maildir' is read relative to the config file as before; "
        'paths the relay writes are now relative to data_dir, so write maildir = "maildir"',
    )


def test_a_name_that_only_starts_like_data_dir_is_inside_it(tmp_path: Path) -> None:
    config = _load(tmp_path, "var", relay='log_file = "various.log"')
    assert config.relay.log_file == tmp_path / "etc" / "var" / "various.log"
    assert config.warnings == ()


def test_config_check_prints_the_warning(tmp_path: Path) -> None:
    text = config_text(Path("var")).replace('maildir = "var/maildir"\n', "")
    path = tmp_path / "config.toml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: relay.log_file: 'var/relay.log' is read relative to the config file" in (
        result.stdout
    )
    assert 'write log_file = "relay.log"' in result.stdout
