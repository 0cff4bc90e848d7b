"""The store: atomic files, no lost updates between processes, the hot/archive split."""

from __future__ import annotations

import hashlib
import multiprocessing
import re
from datetime import date
from pathlib import Path

import pytest
from filelock import Timeout

from relay.addresses import new_masked_address
from relay.store import ARCHIVE_SPAN, LEGACY_KEY_SHARDS, Store, _key_doc_id
from relay.store.files import AtomicJSONStorage, append_line, read_lines
from relay.store.records import DELIVERED, HELD, DigestState, ImapState, Letter, SignInLink

DOMAIN = "pals.example.org"


def _enroll_many(root: str, worker: int, count: int) -> None:
    store = Store(Path(root))
    for n in range(count):
        store.add_participant(
            library="riverside",
            name=f"Kid {worker}-{n}",
            email=f"kid{worker}-{n}@family-mail.example.net",
            language="en",
            new_masked=lambda: new_masked_address(DOMAIN),
        )


def test_concurrent_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_enroll_many, args=(str(tmp_path), w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    store = Store(tmp_path)
    everyone = store.participants()
    assert len(everyone) == 100
    assert len({p.id for p in everyone}) == 100
    assert len({p.masked for p in everyone}) == 100
    for participant in everyone:
        assert store.by_masked(participant.masked) == participant
        assert store.by_email(participant.email) == [participant]
    assert not list(tmp_path.rglob("*.tmp"))


def test_masked_addresses_are_words_and_four_digits() -> None:
    for _ in range(200):
        address = new_masked_address(DOMAIN)
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{4}@pals\.example\.org", address)


def test_family_address_shared_by_siblings(tmp_path: Path) -> None:
    store = Store(tmp_path)
    shared = "smith-family@family-mail.example.net"
    made = [
        store.add_participant(
            library="riverside",
            name=name,
            email=shared,
            language="en",
            new_masked=lambda: new_masked_address(DOMAIN),
        )
        for name in ("Maya", "Noah")
    ]
    assert store.by_email(shared) == made


def _letter(letter_id: int, status: str = HELD) -> Letter:
    return Letter(
        id=letter_id,
        spool_id="s",
        sender="p1",
        recipient="p2",
        sender_masked="a-b-0001@x.org",
        recipient_masked="c-d-0002@x.org",
        sender_library="riverside",
        recipient_library="valparaiso",
        subject=f"Letter {letter_id}",
        received_at="2026-11-28T00:00:00+00:00",
        status=status,
    )


def test_final_letters_leave_the_hot_shards_for_the_archive(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = store.hold_letter(_letter, spool_key="spool:a:p2")
    second = store.hold_letter(_letter, spool_key="spool:b:p2")
    assert store.hold_letter(_letter, spool_key="spool:a:p2") == first  # idempotent
    store.save_letter(first.but(status=DELIVERED))
    assert [letter.id for letter in store.hot_letters()] == [second.id]
    assert store.letter(first.id) == first.but(status=DELIVERED)
    archive = tmp_path / "archive" / f"letters-{first.id // ARCHIVE_SPAN:05d}.jsonl"
    assert [r["id"] for r in read_lines(archive)] == [first.id]


def test_torn_last_line_of_an_append_only_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    append_line(path, {"n": 1})
    with open(path, "ab") as handle:
        handle.write(b'{"n": 2, "trunc')
    assert read_lines(path) == [{"n": 1}]


def test_atomic_storage_replaces_whole_files(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "t.json")
    assert storage.read() is None
    storage.write({"records": {"1": {"a": 1}}})
    inode = (tmp_path / "t.json").stat().st_ino
    storage.write({"records": {"1": {"a": 2}}})
    assert storage.read() == {"records": {"1": {"a": 2}}}
    assert (tmp_path / "t.json").stat().st_ino != inode  # replaced, never edited in place


def test_a_store_from_before_the_lookup_shards_still_finds_its_keys(tmp_path: Path) -> None:
    # Keys as the first layout wrote them: 256 shards under keys/, doc id = the key's hash.
    old = {"masked:quiet-heron-2841@pals.example.org": "p7", "email:kid@family.example.net": ["p7"]}
    (tmp_path / "keys").mkdir()
    for name, value in old.items():
        doc_id = _key_doc_id(name)
        AtomicJSONStorage(tmp_path / "keys" / f"{doc_id % LEGACY_KEY_SHARDS:03d}.json").write(
            {"records": {str(doc_id): {"k": name, "v": value}}}
        )
    store = Store(tmp_path)
    for name, value in old.items():
        assert store._key(name) == value
    store._set_key("masked:quiet-heron-2841@pals.example.org", "p8")  # new writes go to lookup/
    assert store._key("masked:quiet-heron-2841@pals.example.org") == "p8"
    assert store._key("masked:never-seen-0000@pals.example.org") is None


# --- named records under lookup keys -------------------------------------------------------
# Each test also reads the raw value the way an existing store holds it: the typed layer
# must keep the key strings and JSON shapes the relay has always written.

MODERATOR = "ana@riverside-library.example.org"
SECRET = "k3bW0h2x-sign-in-secret"
LINK_KEY = "magic:" + hashlib.sha256(SECRET.encode()).hexdigest()


def test_a_notice_token_is_granted_once_per_letter_and_moderator(tmp_path: Path) -> None:
    store = Store(tmp_path)
    tokens = iter(["a" * 32, "b" * 32])
    first = store.notice_token(
        7, MODERATOR, library="riverside", expires=2e9, new_token=lambda: next(tokens)
    )
    again = store.notice_token(
        7, MODERATOR, library="riverside", expires=3e9, new_token=lambda: next(tokens)
    )
    assert first == again == "a" * 32
    assert store._key(f"notice:7:{MODERATOR}") == first
    assert store._key(f"token:{first}") == {
        "letter": 7,
        "moderator": MODERATOR,
        "library": "riverside",
        "expires": 2e9,
        "used": False,
    }
    grant = store.grant(first)
    assert grant is not None
    assert (grant.letter, grant.moderator, grant.library) == (7, MODERATOR, "riverside")
    assert (grant.expires, grant.used) == (2e9, False)
    assert store.grant("c" * 32) is None


def test_a_grant_is_used_once_and_a_used_one_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    token = store.notice_token(
        9, MODERATOR, library="riverside", expires=2e9, new_token=lambda: "d" * 32
    )
    used = store.use_grant(token, "2024-05-01T10:00:00+00:00")
    assert used is not None and used.used and used.used_at == "2024-05-01T10:00:00+00:00"
    assert store.use_grant(token, "2024-05-01T10:05:00+00:00") is None
    assert store.use_grant("e" * 32, "2024-05-01T10:05:00+00:00") is None
    found = store.grant(token)
    assert found is not None and found.used_at == "2024-05-01T10:00:00+00:00"
    assert store._key(f"token:{token}") == {
        "letter": 9,
        "moderator": MODERATOR,
        "library": "riverside",
        "expires": 2e9,
        "used": True,
        "used_at": "2024-05-01T10:00:00+00:00",
    }


def test_a_grant_written_by_an_earlier_relay_is_read_and_used(tmp_path: Path) -> None:
    store = Store(tmp_path)
    raw = {
        "letter": 3,
        "moderator": MODERATOR,
        "library": "valparaiso",
        "expires": 1.5e9,
        "used": False,
    }
    store._set_key("token:" + "f" * 32, raw)
    store._set_key(f"notice:3:{MODERATOR}", "f" * 32)
    grant = store.grant("f" * 32)
    assert grant is not None and (grant.letter, grant.library, grant.expires) == (
        3,
        "valparaiso",
        1.5e9,
    )
    assert (
        store.notice_token(
            3, MODERATOR, library="valparaiso", expires=2e9, new_token=lambda: "0" * 32
        )
        == "f" * 32
    )
    assert store.use_grant("f" * 32, "2024-05-02T08:00:00+00:00") is not None
    assert store._key("token:" + "f" * 32) == raw | {
        "used": True,
        "used_at": "2024-05-02T08:00:00+00:00",
    }


def test_a_sign_in_link_is_kept_under_its_hash_and_used_once(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.record_sign_in_link(SECRET, SignInLink(MODERATOR, "riverside", 1000.0))
    assert store._key(LINK_KEY) == {
        "email": MODERATOR,
        "library": "riverside",
        "expires": 1000.0,
        "used": False,
    }
    assert not any(SECRET in path.read_text() for path in tmp_path.rglob("*.json"))
    assert store.sign_in_link(SECRET) == SignInLink(MODERATOR, "riverside", 1000.0)
    first = store.use_sign_in_link(SECRET, 900.0)
    assert first == SignInLink(MODERATOR, "riverside", 1000.0)  # as found: it signs in
    second = store.use_sign_in_link(SECRET, 901.0)
    assert second == SignInLink(MODERATOR, "riverside", 1000.0, used=True, used_at=900.0)
    assert store._key(LINK_KEY) == {
        "email": MODERATOR,
        "library": "riverside",
        "expires": 1000.0,
        "used": True,
        "used_at": 900.0,
    }
    assert store.sign_in_link("never-sent") is None
    assert store.use_sign_in_link("never-sent", 900.0) is None


def test_an_expired_sign_in_link_is_not_marked_used(tmp_path: Path) -> None:
    store = Store(tmp_path)
    raw = {"email": MODERATOR, "library": "riverside", "expires": 1000.0, "used": False}
    store._set_key(LINK_KEY, raw)  # as an earlier relay wrote it
    found = store.use_sign_in_link(SECRET, 1000.5)
    assert found is not None and not found.usable(1000.5)
    assert store._key(LINK_KEY) == raw


def test_imap_state_and_spooled_messages_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    mailbox = "pals@imap.example.org/INBOX"
    assert store.imap_state(mailbox) is None
    store.set_imap_state(mailbox, ImapState(uidvalidity=1711, last_uid=42))
    assert store.imap_state(mailbox) == ImapState(1711, 42)
    assert store._key(f"imap:{mailbox}") == {"uidvalidity": 1711, "last_uid": 42}
    store._set_key("imap:pals@imap.example.org/Archive", {"uidvalidity": 5, "last_uid": 9})
    assert store.imap_state("pals@imap.example.org/Archive") == ImapState(5, 9)

    message_id = "<20240501.1234@family-mail.example.net>"
    assert store.spooled_imap_message(message_id) is None
    store.record_spooled_imap_message(message_id, "00000001-abc")
    assert store.spooled_imap_message(message_id) == "00000001-abc"
    assert store._key(f"imap-msgid:{message_id}") == "00000001-abc"
    store._set_key("imap-msgid:<old@family-mail.example.net>", "00000000-old")
    assert store.spooled_imap_message("<old@family-mail.example.net>") == "00000000-old"


def test_digest_state_round_trips_and_starts_empty(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.digest_state("rv-vp", "riverside") == DigestState()
    sent = DigestState(last_post=4, volume=2, issue=7, year=2024, sent_at="2024-05-06T09:00:00")
    store.set_digest_state("rv-vp", "riverside", sent)
    assert store.digest_state("rv-vp", "riverside") == sent
    assert store.digest_state("rv-vp", "valparaiso") == DigestState()
    assert store._key("digest:rv-vp:riverside") == {
        "last_post": 4,
        "volume": 2,
        "issue": 7,
        "year": 2024,
        "sent_at": "2024-05-06T09:00:00",
    }
    old = {"last_post": 1, "volume": 1, "issue": 1, "year": 2023, "sent_at": "2023-12-04T09:00:00"}
    store._set_key("digest:rv-vp:valparaiso", old)
    assert store.digest_state("rv-vp", "valparaiso") == DigestState(1, 1, 1, 2023, old["sent_at"])


def test_reminders_and_writer_notices_keep_their_day_keys(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.reminded_on("riverside") is None
    store.set_reminded_on("riverside", date(2024, 5, 1))
    assert store.reminded_on("riverside") == date(2024, 5, 1)
    assert store._key("reminded:riverside") == "2024-05-01"
    store._set_key("reminded:valparaiso", "2024-04-30")
    assert store.reminded_on("valparaiso") == date(2024, 4, 30)

    day = date(2024, 5, 1)
    assert store.writer_notices("p7", day) == 0
    store.set_writer_notices("p7", day, 2)
    assert store.writer_notices("p7", day) == 2
    assert store.writer_notices("p7", date(2024, 5, 2)) == 0
    assert store._key("writer-notices:p7:2024-05-01") == 2

    assert not store.told_writer_waiting(12)
    store.record_told_writer_waiting(12)
    assert store.told_writer_waiting(12)
    assert store._key("told-waiting:12") is True
    store._set_key("told-waiting:13", True)
    assert store.told_writer_waiting(13)


def test_exclusively_keeps_other_writers_out_while_its_step_runs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    other = Store(tmp_path)  # as another process would open it: its own lock file handle

    def step() -> str:
        with pytest.raises(Timeout):
            other._lock.acquire(timeout=0.05)
        return "done"

    assert store.exclusively(step) == "done"
    with other._lock.acquire(timeout=1):  # free again once the step is over
        pass
