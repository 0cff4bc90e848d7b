"""Configuration: every problem named by its key path; `config check` exits 0 or 1."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from relay import config as config_module
from relay.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _problems(tmp_path: Path, edit: str, old: str = "", new: str = "") -> list[str]:
    text = (ROOT / "config.toml").read_text()
    if old:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "config.toml"
    path.write_text(text + edit)
    with pytest.raises(ConfigError) as error:
        config_module.load(path)
    return error.value.problems


def test_shipped_config_is_valid_and_paths_are_relative_to_it() -> None:
    config = config_module.load(ROOT / "config.toml")
    assert config.relay.domain == "pals.example.org"
    assert config.relay.data_dir == ROOT / "var"
    assert config.delivery.maildir == ROOT / "var" / "maildir"
    assert str(config.smtp.listen) == "127.0.0.1:2525"
    assert config.delivery.transport == "maildir"
    assert [lib.id for lib in config.libraries] == ["riverside", "valparaiso"]
    assert config.partners_of("riverside") == ("valparaiso",)
    assert all(lib.moderators for lib in config.libraries)
    assert config.delivery.pause_after_bounces == 3


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "pause_after_bounces = 3",
            "pause_after_bounces = -1",
            "delivery.pause_after_bounces: must be a whole number, 0 or more",
        ),
        (
            "pause_after_bounces = 3",
            'pause_after_bounces = "three"',
            "delivery.pause_after_bounces: must be",
        ),
        (
            'timezone = "America/Santiago"',
            'timezone = "Mars/Base"',
            "libraries[1].timezone: unknown time zone 'Mars/Base'",
        ),
        (
            'country = "CL"',
            'country = "XX"',
            "libraries[1].country: unknown ISO 3166 country code 'XX'",
        ),
        (
            'listen = "127.0.0.1:2525"',
            'listen = "localhost"',
            "smtp.listen: must be HOST:PORT, not 'localhost'",
        ),
        (
            'transport = "maildir"',
            'transport = "pigeon"',
            "delivery.transport: must be one of maildir, smtp, not 'pigeon'",
        ),
        (
            'domain = "pals.example.org"',
            "domain = 42",
            "relay.domain: must be a string, not a whole number",
        ),
        (
            "max_recipients = 10",
            "max_recipients = 0",
            "smtp.max_recipients: must be greater than 0",
        ),
        (
            'roles = ["moderator"] }',
            'roles = ["boss"] }',
            "libraries[0].staff[1].roles: unknown role 'boss' (known: moderator, coordinator, "
            "newsletter)",
        ),
        (
            'libraries = ["riverside", "valparaiso"]',
            'libraries = ["riverside", "atlantis"]',
            "partnerships[0].libraries: no library has id 'atlantis'",
        ),
        (
            'language = "es"',
            'language = "Spanish"',
            "libraries[1].language: must be a language code such as 'en' or 'pt-BR', not 'Spanish'",
        ),
        (
            '\nmode = "front"',
            '\nmode = "trust-me"',
            'authentication.mode: must be "front" or "relay", not \'trust-me\'',
        ),
        (
            "front_servers = []",
            'front_servers = ["postfix.local"]',
            "authentication.front_servers[0]: must be an IP address or network",
        ),
        (
            'patron_policy = "flag"',
            'patron_policy = "ignore"',
            'authentication.patron_policy: must be "flag" or "refuse"',
        ),
        (
            "# resolvers = []",
            'resolvers = ["127.0.0.1:99999"]',
            "authentication.resolvers[0]: has a bad port",
        ),
        (
            'email = "sam.lee@riverside-library.example.org"',
            'email = "sam.lee"',
            "libraries[0].staff[1].email: ",
        ),
    ],
)
def test_each_mistake_is_named_by_its_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    problems = _problems(tmp_path, "", old, new)
    assert any(p.startswith(expected) for p in problems), problems


def test_unknown_keys_are_errors_everywhere(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "\n[extras]\nx = 1\n", "[smtp]", 'colour = "blue"\n[smtp]')
    assert "relay.colour: unknown key" in problems
    assert "extras: unknown key" in problems


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "", 'timezone = "America/New_York"', 'timezone = "Nowhere/X"')
    more = _problems(
        tmp_path, "\n[nonsense]\n", 'timezone = "America/New_York"', 'timezone = "Nowhere/X"'
    )
    assert len(more) == len(problems) + 1


def test_not_toml_is_one_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[relay\ndomain=")
    with pytest.raises(ConfigError) as error:
        config_module.load(path)
    assert "not valid TOML" in error.value.problems[0]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_config_check_exit_codes(tmp_path: Path) -> None:
    good = _cli("--config", str(ROOT / "config.toml"), "config", "check", cwd=tmp_path)
    assert good.returncode == 0 and "OK" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "config.toml").read_text().replace("America/Santiago", "Mars/Base"))
    result = _cli("--config", str(bad), "config", "check", cwd=tmp_path)
    assert result.returncode == 1
    assert "libraries[1].timezone: unknown time zone 'Mars/Base'" in result.stderr
    assert "Traceback" not in result.stderr
    missing = _cli("config", "check", cwd=tmp_path)  # no ./config.toml here
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_config_init_writes_the_commented_default(tmp_path: Path) -> None:
    result = _cli("config", "init", cwd=tmp_path)
    assert result.returncode == 0
    written = (tmp_path / "config.toml").read_text()
    assert written == (ROOT / "config.toml").read_text()
    assert tomllib.loads(written)["smtp"]["listen"] == "127.0.0.1:2525"
    again = _cli("config", "init", cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr


def test_usage_errors_exit_2_and_user_errors_exit_1(tmp_path: Path) -> None:
    config = str(ROOT / "config.toml")
    usage = _cli(
        "--config", config, "queue", "approve", "forty-one", "--by", "x@y.org", cwd=tmp_path
    )
    assert usage.returncode == 2 and "a letter id is a number" in usage.stderr
    env_var = subprocess.run(
        [sys.executable, "-m", "relay", "config", "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, config_module.ENV_VAR: config},
        timeout=60,
    )
    assert env_var.returncode == 0


def test_authentication_reads_networks_and_resolvers(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text()
    text = text.replace("front_servers = []", 'front_servers = ["127.0.0.1", "10.1.0.0/16"]')
    text = text.replace("# resolvers = []", 'resolvers = ["127.0.0.1:5353", "[::1]:53", "::1"]')
    path = tmp_path / "config.toml"
    path.write_text(text)
    auth = config_module.load(path).authentication
    assert auth.mode == "front" and auth.patron_policy == "flag"
    assert auth.from_front("127.0.0.1") and auth.from_front("10.1.200.3")
    assert not auth.from_front("10.2.0.1") and not auth.from_front("") and not auth.from_front("x")
    assert [str(r) for r in auth.resolvers] == ["127.0.0.1:5353", "::1:53", "::1:53"]


def test_the_servers_config_is_found_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sudo penpal-relay queue list` on the server: no ./config.toml, the installed one."""
    installed = tmp_path / "etc" / "config.toml"
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG", installed)
    monkeypatch.delenv(config_module.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert config_module.locate(None) == Path("config.toml")  # nothing anywhere: named in the error
    installed.parent.mkdir()
    installed.write_text("")
    assert config_module.locate(None) == installed
    (tmp_path / "config.toml").write_text("")
    assert config_module.locate(None) == Path("config.toml")  # a checkout's own comes first
    monkeypatch.setenv(config_module.ENV_VAR, "/elsewhere.toml")
    assert config_module.locate(None) == Path("/elsewhere.toml")
    assert config_module.locate("given.toml") == Path("given.toml")


def _loaded(tmp_path: Path, old: str, new: str) -> config_module.Config:
    text = (ROOT / "config.toml").read_text()
    assert old in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace(old, new, 1))
    return config_module.load(path)


_SHIPPED_SIZES = """[attachments.max_bytes]
# The largest single file of each kind (a single number instead of this table, as in older
# versions of this file, applies to every kind).
picture = 5242880     # 5 MB
audio = 20971520      # 20 MB: about 20 minutes of spoken MP3
video = 26214400      # 25 MB
document = 5242880    # 5 MB
text = 1048576        # 1 MB
file = 5242880        # any other allowed type (removed anyway: no cleaner yet)
"""


def test_attachments_are_limited_by_kind_and_a_letter_fits_the_smtp_limit() -> None:
    config = config_module.load(ROOT / "config.toml")
    attachments = config.attachments
    assert attachments.allowed_types == ("image/*", "audio/*")
    assert attachments.max_bytes_for("audio") == 20 * 1024 * 1024
    assert attachments.max_bytes_for("picture") == 5 * 1024 * 1024
    assert attachments.max_count == 5
    # The most files a letter may carry, base64-encoded, still fit one SMTP message.
    encoded = attachments.max_total_bytes * config_module.BASE64_GROWTH
    assert encoded < config.smtp.max_message_bytes
    assert attachments.max_bytes_for("audio") * 1.37 < config.smtp.max_message_bytes
    assert config.warnings == ()


def test_the_kinds_of_files_are_the_ones_scrubbing_knows() -> None:
    from relay.scrub.model import ATTACHMENT_KINDS

    assert config_module.FILE_KINDS == ATTACHMENT_KINDS


def test_an_older_single_max_bytes_applies_to_every_kind(tmp_path: Path) -> None:
    older = "max_bytes = 1000\nmax_count = 5"
    config = _loaded(tmp_path, _SHIPPED_SIZES, "").attachments
    assert config.max_bytes_for("audio") == 20 * 1024 * 1024  # no table: the defaults
    text = (ROOT / "config.toml").read_text().replace(_SHIPPED_SIZES, "")
    (tmp_path / "older.toml").write_text(text.replace("max_count = 5", older, 1))
    config = config_module.load(tmp_path / "older.toml").attachments
    assert {config.max_bytes_for(kind) for kind in config_module.FILE_KINDS} == {1000}


def test_mistakes_in_attachment_sizes_name_their_key(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "", "audio = 20971520", 'audio = "big"')
    assert problems == ["attachments.max_bytes.audio: must be a whole number, not a string"]
    problems = _problems(tmp_path, "", "text = 1048576 ", "txt = 1048576 ")
    assert problems == ["attachments.max_bytes.txt: unknown key"]
    problems = _problems(tmp_path, "", "video = 26214400", "video = 0")
    assert problems == ["attachments.max_bytes.video: must be greater than 0"]


def test_a_total_that_cannot_fit_a_message_is_a_warning(tmp_path: Path) -> None:
    config = _loaded(tmp_path, "max_message_bytes = 37748736", "max_message_bytes = 26214400")
    (warning,) = config.warnings
    assert warning.startswith("attachments.max_total_bytes: 26214400 bytes of files take about")
    assert "smtp.max_message_bytes (26214400)" in warning


def test_without_a_written_total_the_files_fit_a_smaller_message(tmp_path: Path) -> None:
    config = _loaded(tmp_path, "max_total_bytes = 26214400", "")
    assert config.attachments.max_total_bytes == 25 * 1024 * 1024
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    text = (ROOT / "config.toml").read_text().replace("max_total_bytes = 26214400", "")
    text = text.replace("max_message_bytes = 37748736", "max_message_bytes = 10485760")
    (smaller / "config.toml").write_text(text)
    config = config_module.load(smaller / "config.toml")
    assert config.attachments.max_total_bytes * 1.37 <= 10485760
    assert config.warnings == ()


def test_recordings_allowed_without_ffmpeg_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_module.load(ROOT / "config.toml").warnings == ()
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no ffmpeg on it
    (warning,) = config_module.load(ROOT / "config.toml").warnings
    assert warning.startswith("attachments.allowed_types: audio/* needs ffmpeg")
