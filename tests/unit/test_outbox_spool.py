"""The outbox in the spool: group commit, and several processes writing one spool folder.

Two `Spool` objects on the same folder stand for two processes (a CLI approval and `serve`
starting); the crash point between an outbox body and its marker lets one run a step of the
other exactly there.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from relay import guard
from relay.faults import at_point
from relay.outbox import LetterCopy, MonthlyPrompt, Notice, OutboxEntry
from relay.spool import STALE_SECONDS, Spool

BETWEEN = "outbox-between-body-and-marker"


def _entry(item_id: str, letter: int = 7) -> OutboxEntry:
    return OutboxEntry(
        item_id, LetterCopy(letter), "bounces@pals.example.org", ("t@x.example",), ""
    )


def _message(text: str = "Hello") -> bytes:
    return f"From: program@pals.example.org\r\nSubject: {text}\r\n\r\n{text}\r\n".encode()


def _queue(spool: Spool, *ids: str) -> list[bool]:
    batch = [(i, guard.checked(_message(i), (), what="a test"), _entry(i).to_meta()) for i in ids]
    return spool.enqueue_batch(batch)


def test_serve_starting_while_an_approval_writes_the_outbox_keeps_the_letter(
    tmp_path: Path,
) -> None:
    approval, serve = Spool(tmp_path), Spool(tmp_path)  # two processes, one spool folder
    cleaned: list[int] = []
    with at_point(BETWEEN, lambda: cleaned.append(serve.remove_unacknowledged())):
        assert _queue(approval, "letter-7") == [True]
    assert cleaned == [0]  # the body in the middle of its commit was not touched
    (item,) = serve.outbox()
    assert item.id == "letter-7"
    assert serve.message("outbox", "letter-7") == _message("letter-7")
    assert OutboxEntry.from_meta(item.id, item.meta) == _entry("letter-7")


def test_clean_up_at_start_removes_only_old_leftovers(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    outbox = tmp_path / "outbox"
    names = ["old.eml", ".old.1234.eml.tmp", ".old.1234.json.tmp", "young.eml", ".young.9.eml.tmp"]
    for name in names:
        (outbox / name).write_bytes(b"partial")
    long_ago = time.time() - STALE_SECONDS - 60
    for name in names[:3]:
        os.utime(outbox / name, (long_ago, long_ago))
    assert spool.remove_unacknowledged() == 1
    assert sorted(os.listdir(outbox)) == [".young.9.eml.tmp", "young.eml"]


def test_an_outbox_marker_without_its_message_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    _queue(spool, "letter-7", "letter-8")
    (tmp_path / "outbox" / "letter-7.eml").unlink()  # as the race above used to leave it
    with caplog.at_level(logging.WARNING, logger="relay"):
        spool.remove_unacknowledged()
    assert [item.id for item in spool.outbox()] == ["letter-8"]
    assert "outbox entry without its message dropped item=letter-7" in caplog.text


def test_a_batch_is_queued_once_and_each_entry_keeps_its_own_bytes(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert _queue(spool, "prompt-a", "prompt-b", "prompt-a") == [True, True, False]
    assert _queue(spool, "prompt-b", "prompt-c") == [False, True]
    assert [item.id for item in spool.outbox()] == ["prompt-a", "prompt-b", "prompt-c"]
    for name in ("prompt-a", "prompt-b", "prompt-c"):
        assert spool.message("outbox", name) == _message(name)
    assert not [n for n in os.listdir(tmp_path / "outbox") if n.endswith(".tmp")]
    spool.sent_many(["prompt-a", "prompt-c"])
    assert [item.id for item in spool.outbox()] == ["prompt-b"]


@pytest.mark.parametrize(
    "purpose",
    [LetterCopy(3), Notice("held-notice", 3), Notice("reminder"), MonthlyPrompt("2027-01", "p9")],
)
def test_an_entry_survives_its_json_marker(purpose: object) -> None:
    entry = OutboxEntry("x", purpose, "", ("a@b.example",), "2027-01-01T00:00:00Z")  # type: ignore[arg-type]
    meta = json.loads(json.dumps(entry.to_meta()))
    assert OutboxEntry.from_meta("x", meta) == entry


def test_a_marker_from_before_typed_entries_is_read_as_a_notice() -> None:
    meta = {"kind": "failure-notice", "letter": 4, "from": "bounces@p.example", "to": ["m@l"]}
    entry = OutboxEntry.from_meta("failed-4-0", meta)
    assert entry.purpose == Notice("failure-notice", 4)
    assert entry.to == ("m@l",) and entry.tries.count == 0
