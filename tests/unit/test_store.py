"""The store: atomic files, no lost updates between processes, the hot/archive split."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

from relay.addresses import new_masked_address
from relay.store import ARCHIVE_SPAN, LEGACY_KEY_SHARDS, Store, _key_doc_id
from relay.store.files import AtomicJSONStorage, append_line, read_lines
from relay.store.records import DELIVERED, HELD, Letter

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
        assert store.key(name) == value
    store.set_key("masked:quiet-heron-2841@pals.example.org", "p8")  # new writes go to lookup/
    assert store.key("masked:quiet-heron-2841@pals.example.org") == "p8"
    assert store.key("masked:never-seen-0000@pals.example.org") is None
