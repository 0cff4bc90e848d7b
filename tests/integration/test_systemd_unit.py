"""The shipped systemd files, checked with systemd's own tools as an installer would use them.

`systemd-analyze security --offline` rates the unit's sandbox from the file alone,
`systemd-analyze verify` parses it as PID 1 would (no running systemd needed), and
`systemd-sysusers` / `systemd-tmpfiles` with `--root` create the user and folders inside a
scratch root exactly as the unit's install steps do on the real one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.system import ensure_package

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
UNIT = SYSTEMD / "penpal-relay.service"
SHIPPED_EXEC = "/opt/penpal-relay/venv/bin/penpal-relay"
MAX_EXPOSURE = 3.0


def _analyze() -> str:
    return ensure_package("systemd-analyze", "systemd")


def _directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_is_rated_at_most_3_0_exposed_by_systemd_analyze_security() -> None:
    done = subprocess.run(
        [_analyze(), "security", "--offline=yes", "--threshold=30", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    overall = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert overall is not None, done.stdout
    assert float(overall.group(1)) <= MAX_EXPOSURE, done.stdout


def test_the_unit_keeps_what_the_relay_needs_to_work() -> None:
    unit = _directives(UNIT)
    assert unit["ExecStart"] == [f"{SHIPPED_EXEC} --config /etc/penpal-relay/config.toml serve"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["User"] == ["penpal-relay"]
    assert unit["StateDirectory"] == ["penpal-relay"]
    assert unit["UMask"] == ["0077"]
    # Listening, the smarthost, DNS over UDP and TCP, IMAP and HTTPS all need both families.
    assert unit["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "PrivateNetwork" not in unit and "IPAddressDeny" not in unit
    assert unit["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]


def test_systemd_analyze_verify_accepts_the_unit_pointing_at_an_installed_relay(
    tmp_path: Path,
) -> None:
    installed = shutil.which("penpal-relay", path=str(Path(sys.executable).parent))
    assert installed is not None, "the test venv has no penpal-relay script"
    text = UNIT.read_text()
    assert SHIPPED_EXEC in text
    copy = tmp_path / "penpal-relay.service"
    copy.write_text(text.replace(SHIPPED_EXEC, installed))
    done = subprocess.run(
        [_analyze(), "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    # verify exits 0 on an unknown or misspelt key too; it only says so: nothing may be said.
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


def test_a_misspelt_directive_is_reported_by_verify(tmp_path: Path) -> None:
    """The check above can fail: a typo in the unit is what it catches."""
    copy = tmp_path / "penpal-relay.service"
    copy.write_text(
        UNIT.read_text()
        .replace(SHIPPED_EXEC, "/bin/true")
        .replace("LockPersonality=", "LockPersonalty=")
    )
    done = subprocess.run(
        [_analyze(), "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert "Unknown key 'LockPersonalty'" in done.stderr


def test_sysusers_and_tmpfiles_make_the_user_and_folders_the_unit_expects(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    (root / "etc" / "sysusers.d").mkdir(parents=True)
    (root / "etc" / "tmpfiles.d").mkdir(parents=True)
    shutil.copy(SYSTEMD / "penpal-relay.sysusers.conf", root / "etc/sysusers.d/penpal-relay.conf")
    shutil.copy(SYSTEMD / "penpal-relay.tmpfiles.conf", root / "etc/tmpfiles.d/penpal-relay.conf")
    sysusers = ensure_package("systemd-sysusers", "systemd")
    tmpfiles = ensure_package("systemd-tmpfiles", "systemd")
    subprocess.run([sysusers, f"--root={root}"], check=True, capture_output=True, timeout=60)
    subprocess.run([tmpfiles, f"--root={root}", "--create"], check=True, timeout=60)

    users = {
        line.split(":")[0]: line.split(":")
        for line in (root / "etc" / "passwd").read_text().splitlines()
    }
    groups = {
        line.split(":")[0]: line.split(":")
        for line in (root / "etc" / "group").read_text().splitlines()
    }
    user = users["penpal-relay"]
    uid, gid, home, shell = int(user[2]), int(user[3]), user[5], user[6]
    assert uid < 1000 and home == "/var/lib/penpal-relay" and shell.endswith("nologin")
    assert int(groups["penpal-relay"][2]) == gid

    data = os.stat(root / "var" / "lib" / "penpal-relay")
    assert (oct(data.st_mode & 0o7777), data.st_uid, data.st_gid) == ("0o700", uid, gid)
    config = os.stat(root / "etc" / "penpal-relay")
    assert (oct(config.st_mode & 0o7777), config.st_uid, config.st_gid) == ("0o750", 0, gid)
