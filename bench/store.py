"""Store scaling: single-letter operations at 1,000 / 10,000 / 100,000 participants.

Setup writes the store's shard files directly, in the store's own format (TinyDB documents
`{"records": {doc_id: record}}` in the same shards, the same key hashing, the same archive
lines), because enrolling 100,000 participants and holding a million letters through the API
would take hours of fsyncs. Each participant is paired and has written 10 letters; 1 in 100
letters is still held (the hot queue, a pessimistic day's worth), the rest are delivered and
archived. Every letter has the keys the relay writes for it (spool item, Message-ID, the
moderator's notice and its token). Held letters have their original in the
spool and the scrubbed version the hold keeps (`spool/scrubbed/`); archived ones have
neither (nothing measured reads them). No audit history is generated.
Generated stores of 10,000 participants or more are synced to disk before measuring, so that
their writeback does not slow the fsyncs being measured.

Measured through the relay's own functions, in-process: (a) `enroll` as the CLI does it,
(b) holding one incoming letter (`process_incoming` of a spooled message: route, scrub,
screen, record, notice), (c) `letters.approve`, (d) `store.queue(library)` with the
summaries `queue list --json` prints; and the time `serve` takes to listen at the largest size.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import DOMAIN, MODERATOR_A, Installation, Serve, emit, note
from relay import letters
from relay import store as store_module
from relay.letters import versions
from relay.participants import enroll
from relay.process import process_incoming
from relay.scrub import ScrubPolicy, private
from relay.spool import FoundRoute, Incoming
from relay.store import (
    ARCHIVE_SPAN,
    KEY_SHARDS,
    LETTER_SHARDS,
    PARTICIPANT_SHARDS,
    _key_doc_id,
)
from relay.store.records import DELIVERED, HELD, Letter, Participant

LETTERS_EACH = 10
HELD_EVERY = 100
STAMP = "2026-05-04T10:00:00+00:00"
WORDS = Path(__file__).resolve().parents[1] / "relay" / "words"


def _words(name: str) -> list[str]:
    return [w for w in (WORDS / name).read_text().split() if w]


def _masked(number: int, adjectives: list[str], animals: list[str]) -> str:
    a, rest = number % len(adjectives), number // len(adjectives)
    b, digits = rest % len(animals), rest // len(animals)
    return f"{adjectives[a]}-{animals[b]}-{digits % 10_000:04d}@{DOMAIN}"


def _write_tinydb(path: Path, fragments: list[str]) -> None:
    if not fragments:
        return  # the store reads a missing shard as an empty one
    path.write_text('{"records":{' + ",".join(fragments) + "}}")


def build(root: Path, participants: int) -> dict[str, Any]:
    """Write a store of `participants` paired participants with 10 letters each."""
    store = root / "data" / "store"
    spool = root / "data" / "spool" / "messages"
    # The key layout of the store under test: `lookup/NNNNN` or (before it) `keys/NNN`.
    lookup = hasattr(store_module, "LEGACY_KEY_SHARDS")
    keys_folder, digits = ("lookup", len(str(KEY_SHARDS - 1))) if lookup else ("keys", 3)
    for folder in ("participants", keys_folder, "letters", "archive", "audit"):
        (store / folder).mkdir(parents=True, exist_ok=True)
    spool.mkdir(parents=True, exist_ok=True)
    scrubbed = root / "data" / "spool" / "scrubbed"
    scrubbed.mkdir(parents=True, exist_ok=True)
    adjectives, animals = _words("adjectives.txt"), _words("animals.txt")
    people: list[list[str]] = [[] for _ in range(PARTICIPANT_SHARDS)]
    keys: list[list[str]] = [[] for _ in range(KEY_SHARDS)]
    hot: list[list[str]] = [[] for _ in range(LETTER_SHARDS)]
    archive: dict[int, list[str]] = {}
    held_riverside: list[int] = []

    def key(name: str, value: Any) -> None:
        doc_id = _key_doc_id(name)
        keys[doc_id % KEY_SHARDS].append(
            f'"{doc_id}":' + json.dumps({"k": name, "v": value}, separators=(",", ":"))
        )

    masks = {}
    for n in range(1, participants + 1):
        pal = n + 1 if n % 2 else n - 1
        masks[n] = _masked(n, adjectives, animals)
        email = f"kid{n}@family{n % 997}.example.net"
        person = Participant(
            id=f"p{n}",
            library="riverside" if n % 2 else "valparaiso",
            name=f"Kid {n}",
            email=email,
            language="en" if n % 2 else "es",
            masked=masks[n],
            pals=(f"p{pal}",),
            created_at=STAMP,
        )
        people[n % PARTICIPANT_SHARDS].append(
            f'"{n}":' + json.dumps(person.to_dict(), separators=(",", ":"))
        )
        key(f"masked:{masks[n]}", person.id)
        key(f"email:{email}", [person.id])
    letter_id = 0
    for n in range(1, participants + 1):
        pal = n + 1 if n % 2 else n - 1
        for index in range(LETTERS_EACH):
            letter_id += 1
            # 1 letter in 100 held, from writers of both libraries.
            held = index == 0 and n % (2 * HELD_EVERY // LETTERS_EACH) in (1, 2)
            spool_id = f"{letter_id:012x}-bench"
            message_id = f"<{letter_id}.bench@family{n % 997}.example.net>"
            token = f"{letter_id:032x}"
            letter = Letter(
                id=letter_id,
                spool_id=spool_id,
                sender=f"p{n}",
                recipient=f"p{pal}",
                sender_masked=masks[n],
                recipient_masked=masks[pal],
                sender_library="riverside" if n % 2 else "valparaiso",
                recipient_library="valparaiso" if n % 2 else "riverside",
                subject=f"Letter {letter_id}",
                received_at=STAMP,
                status=HELD if held else DELIVERED,
                message_id=message_id,
                history=({"at": STAMP, "event": "held"},),
            )
            record = json.dumps(letter.to_dict(), separators=(",", ":"), ensure_ascii=False)
            if held:
                hot[letter_id % LETTER_SHARDS].append(f'"{letter_id}":{record}')
                original = _original(n, masks[pal], message_id)
                (spool / f"{spool_id}.eml").write_bytes(original)
                (scrubbed / f"{spool_id}.p{pal}.json").write_bytes(_version(original))
                if n % 2:
                    held_riverside.append(letter_id)
            else:
                archive.setdefault(letter_id // ARCHIVE_SPAN, []).append(record)
            key(f"spool:{spool_id}:p{pal}", letter_id)
            key(f"msgid:{message_id}", letter_id)
            key(f"notice:{letter_id}:{MODERATOR_A}", token)
            key(
                f"token:{token}",
                {
                    "letter": letter_id,
                    "moderator": MODERATOR_A,
                    "library": "riverside",
                    "expires": 2e9,
                    "used": False,
                },
            )
    for shard, fragments in enumerate(people):
        _write_tinydb(store / "participants" / f"{shard:03d}.json", fragments)
    for shard, fragments in enumerate(keys):
        _write_tinydb(store / keys_folder / f"{shard:0{digits}d}.json", fragments)
    for shard, fragments in enumerate(hot):
        _write_tinydb(store / "letters" / f"{shard:02d}.json", fragments)
    for span, lines in archive.items():
        (store / "archive" / f"letters-{span:05d}.jsonl").write_text("\n".join(lines) + "\n")
    counters = {"participant": participants, "letter": letter_id}
    _write_tinydb(store / "counters.json", ['"1":' + json.dumps(counters)])
    return {"letters": letter_id, "held": sum(map(len, hot)), "held_riverside": held_riverside}


def _version(original: bytes) -> bytes:
    """What the hold keeps for a letter (every generated letter reads the same)."""
    return versions.encode(versions.scrub(original, ScrubPolicy()))


def _original(n: int, to: str, message_id: str) -> bytes:
    return (
        f"From: Kid {n} <kid{n}@family{n % 997}.example.net>\r\nTo: {to}\r\n"
        f"Subject: Hello\r\nMessage-ID: {message_id}\r\n\r\n"
        "Hi! Today we went to the lake and I saw a heron. What do you do on weekends?\r\n"
    ).encode()


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def _sample(fn: Callable[[int], Any], repeat: int) -> list[float]:
    times = []
    for index in range(repeat):
        begin = time.perf_counter()
        fn(index)
        times.append(time.perf_counter() - begin)
    return times


def _cold_caches() -> None:
    """Each size starts as a fresh process would: no compiled leak-guard patterns yet (they
    are cached per participant, and the sizes sample the same participant numbers)."""
    private._compiled.cache_clear()
    re.purge()


def measure(participants: int, repeat: int, *, serve_start: bool) -> dict[str, float]:
    _cold_caches()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as temp:
        installation = Installation(Path(temp)).write_config()
        begin = time.perf_counter()
        built = build(installation.root, participants)
        if participants >= 10_000:  # their writeback must not slow the measured fsyncs
            os.sync()
        note(
            f"store {participants}: built {built['letters']} letters in "
            f"{time.perf_counter() - begin:.1f}s"
        )
        ctx = installation.context()
        writer = ctx.store.participant("p1")
        pal = ctx.store.participant("p2")
        if writer is None or pal is None:
            raise RuntimeError("generated store has no p1/p2")

        def enrol(index: int) -> None:
            enroll(ctx, "riverside", f"New {index}", f"new{index}@bench.example.net")

        def hold(index: int) -> None:
            raw = _original(1, pal.masked, f"<hold{index}.bench@example.net>")
            incoming = Incoming(
                mail_from=writer.email,
                rcpt_tos=(pal.masked,),
                received_at=STAMP,
                via="smtp",
                peer="127.0.0.1",
                helo="bench",
                routes=(FoundRoute(pal.masked, writer.id, pal.id),),
            )
            item_id = ctx.spool.accept(raw, incoming)
            process_incoming(ctx, item_id, incoming)

        held = built["held_riverside"]

        def approve(index: int) -> None:
            letters.approve(ctx, held[index], MODERATOR_A)

        def queue_list(index: int) -> None:
            [letter.summary() for letter in ctx.store.queue("riverside")]

        figures = {
            "enroll": _median_ms(_sample(enrol, repeat)),
            "hold": _median_ms(_sample(hold, repeat)),
            "approve": _median_ms(_sample(approve, repeat)),
            "queue_list": _median_ms(_sample(queue_list, max(3, repeat // 3))),
        }
        for operation, ms in figures.items():
            emit(
                "store",
                operation=operation,
                participants=participants,
                letters=built["letters"],
                held=built["held"],
                median_ms=ms,
            )
        if serve_start:
            serve = Serve(installation)
            seconds = serve.start(timeout=300)
            serve.stop()
            figures["serve_ready_s"] = round(seconds, 2)
            emit(
                "store",
                operation="serve_ready",
                participants=participants,
                letters=built["letters"],
                seconds=round(seconds, 2),
            )
        return figures


def run(sizes: list[int], repeat: int) -> None:
    results = {size: measure(size, repeat, serve_start=size == max(sizes)) for size in sizes}
    small, large = results[min(sizes)], results[max(sizes)]
    for operation in ("enroll", "hold", "approve", "queue_list"):
        emit(
            "store-ratio",
            operation=operation,
            smallest=min(sizes),
            largest=max(sizes),
            ratio=round(large[operation] / small[operation], 2),
        )
