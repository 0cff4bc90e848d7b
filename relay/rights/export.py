"""Everything held about a participant, as one zip they (or their guardian) can read.

    README.txt                 in their language: what each file is
    participant.json           their record; their pals by first name and masked address only
    letters.json               each letter: id, direction, status, dates, subject, file
    letters/written/NNN.eml    each letter they wrote, as delivered (or, while held or after
                               a rejection, as scrubbed), between masked addresses only
    letters/received/NNN.eml   each letter delivered to them, as delivered, and each letter
                               to a teammate they got a copy of (`copy_as_teammate` in
                               letters.json); a letter to them still held, or rejected, is
                               listed without subject or file: what a moderator kept from
                               them stays kept
    audit.json                 the audit entries naming them or their letters, with ids,
                               times and outcomes only (`EXPORT_KEPT`): no staff addresses,
                               mail servers' errors or moderators' reasons

A letter is composed again from the kept version with the moderators' changes
(`letters.versions.content`), as delivery composes it, but addressed from and to masked
addresses; the leak guard then searches it for every real address around the letter but the
person's own. Blocking: reads the store, the spool and every archive file once.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from relay import compose, guard
from relay.context import Context
from relay.letters import delivering, versions
from relay.store.records import BOUNCED, DELIVERED, Letter, Participant

log = logging.getLogger("relay")

# What an exported audit entry keeps: ids, times, how and with what outcome. Who acted
# (`by`: a staff address), errors (a mail server's words may quote a pal's address),
# reasons and recipients stay out.
EXPORT_KEPT = frozenset(
    {"at", "event", "participant", "participants", "letter", "letters", "library"}
    | {"via", "spool", "count", "attempts", "status", "action", "outcome", "verified"}
    | {"asked_by"}
)
# A letter to them that reached them: the only received letters the export carries.
REACHED = (DELIVERED, BOUNCED)


def export(
    ctx: Context, participant: Participant, *, by: str = "", via: str = "cli", handed: bool = True
) -> bytes:
    """The zip of everything held about `participant`; the export is audited (`exported`)
    unless not `handed` over yet: then the caller calls `handed_over` once it was."""
    audit = ctx.store.audit_log()
    copies = _teammate_copies(ctx, participant, audit)
    letters = ctx.store.letters_of(participant.id) + copies
    numbers = {"written": 0, "received": 0}
    listed: list[dict[str, Any]] = []
    files: dict[str, bytes] = {}
    for letter in letters:
        direction = "written" if letter.sender == participant.id else "received"
        shown = direction == "written" or letter.status in REACHED
        eml = _letter_file(ctx, letter, participant) if shown else None
        name = None
        if eml is not None:
            numbers[direction] += 1
            name = f"letters/{direction}/{numbers[direction]:03d}.eml"
            files[name] = eml
        listed.append(_listing(letter, direction, name, shown=shown))
        if letter in copies:
            listed[-1]["copy_as_teammate"] = True
    ids = {letter.id for letter in letters}
    entries = [exported_entry(e) for e in audit if about(e, participant.id, ids)]
    library = ctx.config.library(participant.library)
    readme = ctx.templates.render(
        "email",
        participant.language,
        "data_export_contents.txt",
        name=participant.name,
        library_name=library.name if library else participant.library,
        program_name=ctx.config.relay.program_name,
        made_at=datetime.now(UTC).isoformat(timespec="seconds"),
        written=numbers["written"],
        received=numbers["received"],
        letters=len(letters),
    )
    data = _zip(
        {
            "README.txt": readme.encode("utf-8"),
            "participant.json": _json(_record(ctx, participant)),
            "letters.json": _json(listed),
            "audit.json": _json(entries),
            **files,
        }
    )
    if handed:
        handed_over(ctx, participant, by=by, via=via)
    return data


def _teammate_copies(
    ctx: Context, participant: Participant, audit: list[dict[str, Any]]
) -> list[Letter]:
    """The letters they got a copy of as a teammate (two writing together to one pal,
    `uneven = "together"`): letters to each teammate they ever had (`teamed` entries) whose
    teammate's copy to them was delivered."""
    mates = {
        mate
        for entry in audit
        if entry.get("event") == "teamed" and participant.id in (entry.get("participants") or ())
        for mate in entry["participants"]
        if mate != participant.id
    }
    return [
        letter
        for mate in sorted(mates)
        for letter in ctx.store.letters_of(mate)
        if letter.recipient == mate
        and ctx.spool.was_sent(f"letter-{letter.id}-teammate-{participant.id}")
    ]


def handed_over(ctx: Context, participant: Participant, *, by: str = "", via: str) -> None:
    """An export given to the person (or their library): audited (`exported`) and logged."""
    details = {"participant": participant.id, "library": participant.library, "via": via}
    ctx.store.audit("exported", **details, **({"by": by} if by else {}))
    log.info("exported participant=%s library=%s via=%s", participant.id, participant.library, via)


def _record(ctx: Context, participant: Participant) -> dict[str, Any]:
    record = participant.to_dict()
    record["learned_names"] = record.pop("known_names")
    # A group's members are children whose names the library keeps for its staff only: an
    # export may be emailed, and a group's goes to its leader.
    record.pop("members")
    library = ctx.config.library(participant.library)
    record["library_name"] = library.name if library else participant.library
    pals = (ctx.store.participant(pal_id) for pal_id in participant.pals)
    record["pals"] = [{"name": p.name, "masked": p.masked} for p in pals if p is not None]
    return record


def exported_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An audit entry as the export shows it: `EXPORT_KEPT` only."""
    return {key: value for key, value in entry.items() if key in EXPORT_KEPT}


def _listing(letter: Letter, direction: str, name: str | None, *, shown: bool) -> dict[str, Any]:
    """A line of letters.json; a letter to them they never got has no subject."""
    return {
        "id": letter.id,
        "direction": direction,
        "status": letter.status,
        "pal": letter.recipient_masked if direction == "written" else letter.sender_masked,
        "received_at": letter.received_at,
        "decided_at": letter.decided_at,
        "delivered_at": letter.delivered_at,
        "subject": letter.subject if shown else None,
        "file": name,
    }


def _party(ctx: Context, participant: Participant) -> compose.Party:
    """A side of the letter as the export shows it: its masked address in place of the real."""
    return replace(delivering.party(ctx, participant), email=participant.masked)


def _letter_file(ctx: Context, letter: Letter, person: Participant) -> bytes | None:
    """The letter as its reader got it (or would get it), between masked addresses; None
    when its content is no longer kept."""
    writer = ctx.store.participant(letter.sender)
    reader = ctx.store.participant(letter.recipient)
    if writer is None or reader is None:
        return None
    try:
        clean = versions.content(ctx, letter, writer)
    except (FileNotFoundError, ValueError):
        log.warning("export: letter=%d has no kept content", letter.id)
        return None
    stamp = letter.decided_at or letter.received_at
    message = compose.compose_letter(
        clean,
        sender=_party(ctx, writer),
        recipient=_party(ctx, reader),
        program_name=ctx.config.relay.program_name,
        message_id=letter.out_message_id
        or compose.letter_message_id(ctx.secret, letter.id, ctx.config.relay.domain),
        in_reply_to=None,
        references=(),
        date=datetime.fromisoformat(stamp) if stamp else datetime.now(UTC),
        templates=ctx.templates,
        privacy_url=ctx.config.privacy_url(reader.language),
    )
    if letter.status != DELIVERED:
        message["X-Penpal-Status"] = letter.status
    private = guard.private_for_letter(ctx, letter) | set(clean.history_addresses)
    own = guard.addresses_of([person])
    try:
        return guard.checked(message.as_bytes(), private - own, what=f"letter {letter.id}").data
    except guard.LeakStopped:
        log.warning("export: letter=%d left out, a private detail could not be cut", letter.id)
        return None


def about(entry: dict[str, Any], participant_id: str, letter_ids: set[int]) -> bool:
    """Whether an audit entry is about this participant or one of their letters."""
    people = entry.get("participants")
    return (
        participant_id in (entry.get("participant"), entry.get("sender"))
        or (isinstance(people, list) and participant_id in people)
        or entry.get("letter") in letter_ids
    )


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
