"""`penpal-relay backup DEST` beside a running relay, and `restore SRC` on a stopped one:
every letter accepted before the backup began comes back, none comes back twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from relay.store import version
from tests.conftest import Pals, Relay, enroll_pals, letter_bytes
from tests.support.system import require_root
from tests.support.waiting import wait_for

NOBODY = 65534
BEFORE = 12  # letters accepted before the backup starts
DURING = 10  # at most, sent while it runs (more only makes the test slower)


def _send(relay: Relay, pals: Pals, subject: str) -> None:
    relay.send(
        pals.maya.email,
        [pals.tomas.masked],
        letter_bytes(pals.maya.email, pals.tomas.masked, subject=subject),
    )


class Writer(threading.Thread):
    """Sends letters one after another until stopped; remembers those answered 250."""

    def __init__(self, relay: Relay, pals: Pals) -> None:
        super().__init__(daemon=True)
        self.relay, self.pals = relay, pals
        self.accepted: list[str] = []
        self.stop = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set() and len(self.accepted) < DURING:
                subject = f"during {len(self.accepted)}"
                _send(self.relay, self.pals, subject)
                self.accepted.append(subject)
        except (OSError, smtplib.SMTPException) as error:
            self.error = error


def _subjects(relay: Relay) -> list[str]:
    return [letter["subject"] for letter in relay.queue()]


def _backup_paused_before_store(relay: Relay, dest: Path, pauses: Path) -> subprocess.Popen[str]:
    """`backup DEST` in its own process group, stopped after its first copy of the spool
    and before it locks the store (until `<pauses>/backup-before-store.resume` exists)."""
    env = {**os.environ, "PENPAL_RELAY_PAUSE_AT": "backup-before-store"}
    env["PENPAL_RELAY_PAUSE_DIR"] = str(pauses)
    command = [sys.executable, "-m", "relay", "--config", str(relay.config_path)]
    return subprocess.Popen(
        [*command, "backup", str(dest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def test_backup_while_letters_arrive_restores_each_letter_once(
    relay_factory: Callable[..., Relay], tmp_path: Path
) -> None:
    first = relay_factory()
    pals = enroll_pals(first)
    # Holding waits until the backup has copied the spool once: the letters then move from
    # incoming/ into the store (and messages/) between the copies of the spool and the store.
    hold_paused = tmp_path / "hold-paused"
    hold_paused.touch()
    first.start({"PENPAL_RELAY_PAUSE_AT": "hold", "PENPAL_RELAY_PAUSE_WHILE": str(hold_paused)})
    before = [f"before {n}" for n in range(BEFORE)]
    for subject in before:
        _send(first, pals, subject)  # answered 250: durably accepted
    writer = Writer(first, pals)
    writer.start()
    dest = tmp_path / "backup"
    backup = _backup_paused_before_store(first, dest, tmp_path)
    try:
        wait_for(lambda: len(writer.accepted) >= 3, what="letters arriving during the backup")
        wait_for(lambda: (tmp_path / "backup-before-store.paused").exists(), what="spool copied")
        between = [f"between {n}" for n in range(3)]  # not in the first copy of the spool
        for subject in between:
            _send(first, pals, subject)
        hold_paused.unlink()
        wait_for(
            lambda: set(before + between) <= set(_subjects(first)), what="letters held meanwhile"
        )
        (tmp_path / "backup-before-store.resume").touch()
        out, err = backup.communicate(timeout=60)
    finally:
        writer.stop.set()
        writer.join(30)
        if backup.poll() is None:
            os.killpg(backup.pid, signal.SIGKILL)
            backup.wait()
    assert backup.returncode == 0, err
    assert writer.error is None, writer.error
    assert f"into {dest}" in out
    first.stop()

    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["store_format"] == version.FORMAT
    assert manifest["files"] == sum(1 for p in (dest / "data").rglob("*") if p.is_file())
    assert not (dest / ".partial").exists()
    copied = {p.relative_to(dest / "data").as_posix() for p in (dest / "data").rglob("*")}
    assert "relay.log" not in copied and "run/serve.json" not in copied
    assert not any(Path(p).name.startswith(".") for p in copied)

    second = relay_factory()
    restored = second.cli("restore", str(dest))
    assert "start serve again" in restored.stdout
    assert oct(second.data_dir.stat().st_mode & 0o777) == oct(first.data_dir.stat().st_mode & 0o777)
    assert (second.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    second.start()
    wait_for(
        lambda: set(before) <= set(_subjects(second)),
        what="every letter accepted before the backup, held again",
    )
    wait_for(lambda: not second.context().spool.pending_ids(), what="the spool processed")
    subjects = _subjects(second)
    assert len(subjects) == len(set(subjects)), "a letter came back twice"
    assert set(subjects) <= set(before) | set(writer.accepted) | set(between)
    assert set(between) <= set(subjects)  # in the store copy, so in the spool copy too
    ctx = second.context()
    for letter in ctx.store.hot_letters():  # each with its message as received
        assert ctx.spool.original(letter.spool_id)
    assert "--- as it will be delivered ---" in second.cli("queue", "show", "1").stdout


def test_processing_a_message_again_records_its_letter_once(
    relay: Relay, pals: Pals, tmp_path: Path
) -> None:
    """A backup can hold a message twice: still in `incoming/` (spool copied first) and
    already held in the store (copied later). Processing it again is a no-op, because the
    letter is recorded once per spool item and recipient."""
    pause = tmp_path / "hold-paused"
    pause.touch()
    relay.start({"PENPAL_RELAY_PAUSE_AT": "hold", "PENPAL_RELAY_PAUSE_WHILE": str(pause)})
    _send(relay, pals, "Only once")
    dest = tmp_path / "backup"
    relay.cli("backup", str(dest))  # the letter is in incoming/, not yet in the store
    copied = sorted((dest / "data" / "spool" / "incoming").iterdir())
    assert [p.suffix for p in copied] == [".eml", ".json"]
    pause.unlink()
    relay.wait_held(1)
    wait_for(lambda: not relay.context().spool.pending_ids(), what="the letter held")
    relay.stop()

    for path in copied:  # the store knows the letter, and incoming/ has it again
        shutil.copy2(path, relay.data_dir / "spool" / "incoming" / path.name)
    relay.start()
    wait_for(lambda: not relay.context().spool.pending_ids(), what="processed again")
    assert _subjects(relay) == ["Only once"]
    assert "held letter=2 " not in (relay.data_dir / "relay.log").read_text()


def test_restore_refuses_a_running_relay_and_a_full_folder(
    relay: Relay, pals: Pals, tmp_path: Path
) -> None:
    relay.start()
    _send(relay, pals, "Kept")
    relay.wait_held(1)
    dest = tmp_path / "backup"
    relay.cli("backup", str(dest))

    running = relay.cli("restore", str(dest), "--force", check=False)
    assert (running.returncode, running.stderr.strip()) == (
        1,
        f"penpal-relay: a relay is running on {relay.data_dir}; stop it first "
        "(systemctl stop penpal-relay)",
    )
    relay.stop()

    full = relay.cli("restore", str(dest), check=False)
    assert full.returncode == 1
    assert full.stderr.startswith(f"penpal-relay: {relay.data_dir} is not empty; pass --force")
    assert "Traceback" not in full.stderr

    _send_later = relay.data_dir / "spool" / "edits" / "only-in-the-old-folder"
    _send_later.write_text("x")
    forced = relay.cli("restore", str(dest), "--force")
    aside = [p for p in relay.root.iterdir() if p.name.startswith("data.before-restore-")]
    assert len(aside) == 1 and (aside[0] / "spool" / "edits" / "only-in-the-old-folder").exists()
    assert str(aside[0]) in forced.stdout
    assert not (relay.data_dir / "spool" / "edits" / "only-in-the-old-folder").exists()
    relay.start()
    assert _subjects(relay) == ["Kept"]


def test_restore_refuses_a_backup_of_a_newer_relay(
    relay: Relay, pals: Pals, tmp_path: Path
) -> None:
    relay.cli("demo")
    dest = tmp_path / "backup"
    relay.cli("backup", str(dest))
    format_file = dest / "data" / "store" / "format.json"
    format_file.write_text(json.dumps({"format": version.FORMAT + 1, "written_by": "9"}))
    shutil.rmtree(relay.data_dir)
    refused = relay.cli("restore", str(dest), check=False)
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        f"penpal-relay: the data in {dest / 'data' / 'store'} was written by a newer "
        f"penpal-relay (store format {version.FORMAT + 1}; this version reads format "
        f"{version.FORMAT}); install that version or restore a backup",
    )
    assert not relay.data_dir.exists()


def test_backup_refuses_a_used_destination(relay: Relay, tmp_path: Path) -> None:
    relay.cli("demo")
    dest = tmp_path / "used"
    dest.mkdir()
    (dest / "something").write_text("x")
    used = relay.cli("backup", str(dest), check=False)
    assert (used.returncode, used.stderr.strip()) == (
        1,
        f"penpal-relay: DEST {dest}: exists and is not empty; give a new folder",
    )
    inside = relay.cli("backup", str(relay.data_dir / "b"), check=False)
    assert inside.returncode == 1 and "is inside the data folder" in inside.stderr
    unfinished = tmp_path / "unfinished"
    (unfinished / "data" / "store").mkdir(parents=True)
    partial = relay.cli("restore", str(unfinished), "--force", check=False)
    assert partial.stderr.strip() == (
        f"penpal-relay: SRC {unfinished}: not a finished penpal-relay backup "
        "(no manifest.json in it)"
    )
    assert os.listdir(relay.data_dir)


def test_root_restores_files_to_the_data_folders_owner(relay: Relay, tmp_path: Path) -> None:
    require_root()
    relay.cli("demo")
    dest = tmp_path / "backup"
    relay.cli("backup", str(dest))
    for path in [relay.data_dir, *relay.data_dir.rglob("*")]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    relay.cli("restore", str(dest), "--force")
    restored = [relay.data_dir, *relay.data_dir.rglob("*")]
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in restored} == {(NOBODY, NOBODY)}
    assert (relay.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
