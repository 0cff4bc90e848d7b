"""The data folder as a Debian service has it: paths the relay writes inside it, its log
reopened after rotation, its store's format checked before anything is written, and a
command run as root on it working as the folder's owner."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from relay.store import version
from tests.conftest import Relay, config_text, enroll_pals, letter_bytes
from tests.support.system import require_root
from tests.support.waiting import wait_for

NOBODY = 65534
NEWER_FORMAT = version.FORMAT + 1


def _separate_folders(relay: Relay, tmp_path: Path) -> Path:
    """Put the config in its own folder (like /etc/penpal-relay), data in relay.data_dir,
    with the state paths written relative to data_dir; returns the config's path."""
    text = config_text(relay.data_dir)
    text = text.replace(f'log_file = "{relay.data_dir}/relay.log"', 'log_file = "relay.log"')
    text = text.replace(f'maildir = "{relay.data_dir}/maildir"', 'maildir = "maildir"')
    etc = tmp_path / "etc-penpal"
    etc.mkdir()
    path = etc / "config.toml"
    path.write_text(text)
    relay.config_path = path
    return path


def test_serve_writes_its_log_and_maildir_inside_data_dir(relay: Relay, tmp_path: Path) -> None:
    config_path = _separate_folders(relay, tmp_path)
    pals = enroll_pals(relay)
    relay.start()
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    log = relay.data_dir / "relay.log"
    wait_for(lambda: log.exists() and "held letter=1 " in log.read_text(), what="held in the log")
    assert sorted(p.name for p in config_path.parent.iterdir()) == ["config.toml"]
    relay.cli("queue", "approve", "1", "--by", "ana.lopez@riverside-library.example.org")
    wait_for(lambda: relay.delivered(pals.tomas.email), what="delivery into data_dir/maildir")
    assert "WARNING config:" not in relay.log()


def test_an_old_config_keeps_working_and_is_warned_at_start(relay: Relay) -> None:
    text = relay.config_path.read_text()
    text = text.replace(f'data_dir = "{relay.data_dir}"', 'data_dir = "data"')
    text = text.replace(f'log_file = "{relay.data_dir}/relay.log"', 'log_file = "data/relay.log"')
    relay.config_path.write_text(text)
    relay.start()
    assert (relay.data_dir / "relay.log").exists()
    assert not (relay.data_dir / "data").exists()
    warnings = [line for line in relay.log().splitlines() if " WARNING config: " in line]
    assert len(warnings) == 1, relay.log()
    assert "relay.log_file: 'data/relay.log'" in warnings[0]
    assert 'write log_file = "relay.log"' in warnings[0]


# --- log rotation --------------------------------------------------------------------------


def test_sighup_reopens_the_log_after_it_was_renamed(relay: Relay) -> None:
    pals = enroll_pals(relay)
    relay.start()
    log = relay.data_dir / "relay.log"
    rotated = relay.data_dir / "relay.log.1"
    wait_for(lambda: "listening smtp=" in log.read_text(), what="the first line")
    os.rename(log, rotated)
    assert relay.process is not None
    relay.process.send_signal(signal.SIGHUP)
    wait_for(lambda: log.exists() and "config reloaded" in log.read_text(), what="a new log")
    relay.send(
        pals.maya.email, [pals.tomas.masked], letter_bytes(pals.maya.email, pals.tomas.masked)
    )
    wait_for(lambda: "held letter=1 " in log.read_text(), what="the letter in the new log")
    old = rotated.read_text()
    assert "listening smtp=" in old
    assert "config reloaded" not in old and "held letter=" not in old


def test_a_reload_moves_the_log(relay: Relay) -> None:
    relay.start()
    text = relay.config_path.read_text()
    moved = relay.data_dir / "logs" / "relay.log"
    relay.config_path.write_text(
        text.replace(f'log_file = "{relay.data_dir}/relay.log"', 'log_file = "logs/relay.log"')
    )
    assert relay.process is not None
    relay.process.send_signal(signal.SIGHUP)
    wait_for(lambda: moved.exists() and "config reloaded" in moved.read_text(), what="moved log")
    assert "config reloaded" not in (relay.data_dir / "relay.log").read_text()


# --- store format --------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _newer_store(relay: Relay) -> str:
    enroll_pals(relay)
    store = relay.data_dir / "store"
    (store / "format.json").write_text(json.dumps({"format": NEWER_FORMAT, "written_by": "9.0"}))
    return (
        f"penpal-relay: the data in {store} was written by a newer penpal-relay (store format "
        f"{NEWER_FORMAT}; this version reads format {version.FORMAT}); install that version or "
        "restore a backup"
    )


def test_a_store_without_its_format_file_gets_one(relay: Relay) -> None:
    enroll_pals(relay)
    marker = relay.data_dir / "store" / "format.json"
    assert json.loads(marker.read_text()) == {
        "format": version.FORMAT,
        "written_by": version.package_version(),
    }
    marker.unlink()  # as a store made by an earlier relay
    relay.cli("participants", "list")
    assert json.loads(marker.read_text())["format"] == version.FORMAT


@pytest.mark.parametrize(
    "command",
    [
        ("queue", "list"),
        ("participants", "add", "--library", "riverside", "--name", "Ana", "--email", "a@b.org"),
        ("demo",),
        ("config", "check"),
        ("backup", "DEST"),
    ],
)
def test_a_newer_store_is_refused_by_a_command(relay: Relay, command: tuple[str, ...]) -> None:
    expected = _newer_store(relay)
    before = _files(relay.data_dir)
    args = [str(relay.root / "backup") if a == "DEST" else a for a in command]
    result = relay.cli(*args, check=False)
    assert (result.returncode, result.stderr.strip()) == (1, expected)
    assert "Traceback" not in result.stdout + result.stderr
    assert _files(relay.data_dir) == before
    assert not (relay.root / "backup").exists()


def test_a_newer_store_is_refused_by_serve(relay: Relay) -> None:
    expected = _newer_store(relay)
    before = _files(relay.data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "--config", str(relay.config_path), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr.strip()) == (1, expected)
    assert _files(relay.data_dir) == before
    assert not (relay.data_dir / "run").exists()


# --- a command run as root on the relay user's folder --------------------------------------


@pytest.fixture
def nobodys_folder() -> Iterator[Path]:
    """A folder `nobody` can reach (pytest's own tmp folders are root's only)."""
    require_root()
    folder = Path(tempfile.mkdtemp(prefix="penpal-owner-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def _python_for_nobody() -> tuple[str, dict[str, str]]:
    """An interpreter `nobody` can run, and its environment. The tests' own Python may live
    under /root (pyenv), which only root can read; the distribution's Python of the same
    version runs the same code with this virtual environment's packages on its path."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = shutil.which(f"python{version}", path="/usr/bin:/usr/local/bin")
    if python is None:
        pytest.fail(f"no python{version} outside /root for the relay's own user")
    packages = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    root = str(Path(__file__).resolve().parents[2])
    return python, {**os.environ, "PYTHONPATH": os.pathsep.join([root, *packages])}


@pytest.fixture
def reachable_by_nobody() -> Iterator[None]:
    """The checkout and its packages reachable by `nobody`: a folder above them that others
    may not enter (a checkout under /root, say) is opened for entering (not listing) for the
    test, and closed again after."""
    opened: list[tuple[Path, int]] = []
    _python, env = _python_for_nobody()
    for entry in env["PYTHONPATH"].split(os.pathsep):
        for folder in [Path(entry), *Path(entry).parents]:
            mode = folder.stat().st_mode
            if not mode & 0o001 and all(folder != f for f, _ in opened):
                opened.append((folder, mode))
                folder.chmod(mode | 0o001)
    try:
        yield
    finally:
        for folder, mode in reversed(opened):
            folder.chmod(mode & 0o7777)


def _root_readable_config(folder: Path, data_dir: Path) -> Path:
    etc = folder / "etc"
    etc.mkdir(mode=0o700)
    path = etc / "config.toml"
    path.write_text(config_text(data_dir))
    path.chmod(0o600)
    return path


def _nobodys_data(folder: Path) -> tuple[Path, Path]:
    """A data folder of nobody's, and a config for it that only root may read."""
    data_dir = folder / "data"
    data_dir.mkdir(mode=0o700)
    os.chown(data_dir, NOBODY, NOBODY)
    return data_dir, _root_readable_config(folder, data_dir)


def _owned_by_nobody(data_dir: Path) -> Callable[[], list[str]]:
    def others() -> list[str]:
        return [
            str(p)
            for p in [data_dir, *data_dir.rglob("*")]
            if p.lstat().st_uid != NOBODY or p.lstat().st_gid != NOBODY
        ]

    return others


@pytest.mark.usefixtures("reachable_by_nobody")
def test_root_on_nobodys_data_folder_writes_as_nobody(nobodys_folder: Path) -> None:
    data_dir, config = _nobodys_data(nobodys_folder)
    python, env = _python_for_nobody()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "relay", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=nobodys_folder,
            env=env,
        )

    demo = run("demo")
    assert demo.returncode == 0, demo.stderr
    added = run(
        "participants", "add", "--library", "riverside", "--name", "Ana", "--email", "a@b.org"
    )
    assert added.returncode == 0, added.stderr
    assert (data_dir / "store" / "format.json").exists()
    assert (data_dir / "relay.log").exists()
    assert _owned_by_nobody(data_dir)() == []
    assert "Ana" in run("participants", "list").stdout


@pytest.mark.usefixtures("reachable_by_nobody")
def test_serve_as_root_on_nobodys_data_folder_runs_as_nobody(nobodys_folder: Path) -> None:
    data_dir, config = _nobodys_data(nobodys_folder)
    python, env = _python_for_nobody()
    relay = Relay(nobodys_folder, config, python=python)
    try:
        relay.start(env)
        assert relay.process is not None
        status = Path(f"/proc/{relay.process.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uids.split()[1:] == [str(NOBODY)] * 4
        assert _owned_by_nobody(data_dir)() == []
    finally:
        if relay.process is not None:
            relay.stop()


def test_root_on_its_own_data_folder_stays_root(relay: Relay) -> None:
    require_root()
    relay.cli("demo")
    assert {p.stat().st_uid for p in relay.data_dir.rglob("*")} == {0}
