"""Participants in one place: enrol, find, pair and unpair (one by one, or a proposal of
`relay.matching` accepted), pause, resume, leave, guardian.

Every channel (CLI, dashboard, CSV import, demo) calls these functions and nothing else to
change a participant. Each change is made by one named store operation under the store's
own lock, then written once to the audit log (events: enrolled, paired, unpaired, paused,
resumed, left, guardian-set, guardian-cleared, details-changed, name-learned) and logged
once at INFO with ids and masked addresses only: a real address, a name learned from the
participant's mail, or an enrolment detail never reaches the log or the audit entry.

Mistakes in what was asked raise `InvalidField` naming the field (`email`, `library`,
`name`, `language`, `guardian`, `guardian_name`, `birth_year`, `age_band`, `interests`,
`kind`, `members`); each channel words the field its own way.

A group (a class or a club, `Participant.is_group`) is enrolled like a person, with its
name as its display name and its teacher's or leader's address as its real address. It
needs no guardian's consent and has none (its leader is an adult; the library keeps its
members' consent on paper), has an age band rather than a year of birth, and lists its
members' first names for its own library's staff. A group's pal is another group.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial

from relay import consent, guardians, matching, welcomes
from relay.addresses import new_masked_address, normalize
from relay.config import Library
from relay.context import Context
from relay.errors import AlreadyEnrolled, InvalidField, NotFound, UserError
from relay.scrub import names
from relay.store.records import ACTIVE, GROUP, LEFT, PAUSED, Participant, ParticipantKind

log = logging.getLogger("relay")

LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True)
class Enrolment:
    """What a new participant would be enrolled with, every field checked and normalized."""

    library: Library
    name: str
    email: str
    language: str
    guardian: str  # "" for none
    birth_year: int = 0  # 0 for not recorded
    age_band: str = ""
    interests: tuple[str, ...] = ()
    guardian_name: str = ""
    guardian_copies: bool = True
    needs_consent: bool = False  # under the library's consent age: a guardian must consent
    kind: ParticipantKind = "person"
    members: tuple[str, ...] = ()  # a group's members' first names


@dataclass(frozen=True)
class Details:
    """The optional enrolment details, as a channel received them (text or values)."""

    birth_year: int | str | None = None
    age_band: str | None = None
    interests: Iterable[str] | str | None = None
    guardian_name: str | None = None
    guardian_copies: bool | None = None
    kind: str | None = None  # "person" or "group"; chosen at enrolment
    members: Iterable[str] | str | None = None  # a group's: a list, or text with commas


def check_kind(value: str | None) -> ParticipantKind:
    """ "group" for a group; "person" for anyone else ("" or None: a person)."""
    kind = (value or "").strip().lower()
    if kind in ("", "person"):
        return "person"
    if kind == GROUP:
        return GROUP
    raise InvalidField("kind", f"{value!r} is neither person nor group")


def _members(value: Iterable[str] | str | None) -> tuple[str, ...]:
    """First names as a list, or as text separated by commas, semicolons or lines."""
    items = re.split(r"[,;\n]", value) if isinstance(value, str) else list(value or ())
    found = (" ".join(str(item).split()) for item in items)
    members = tuple(dict.fromkeys(name for name in found if name))
    if any(len(name) > 60 for name in members) or len(members) > 200:
        raise InvalidField("members", "at most 200 members of up to 60 characters each")
    return members


def _group_checked(
    kind: ParticipantKind, birth_year: int, guardian: str, members: tuple[str, ...]
) -> None:
    """What a group may not have, and what only a group has."""
    if kind != GROUP:
        if members:
            raise InvalidField("members", "only a group (a class or a club) has members")
        return
    if birth_year:
        raise InvalidField(
            "birth_year", "a group has an age band (such as 9-10), not a year of birth"
        )
    if guardian:
        raise InvalidField(
            "guardian",
            "a group has no guardian: its leader is an adult, and the library keeps its "
            "members' consent on paper",
        )


def _interests(value: Iterable[str] | str | None) -> tuple[str, ...]:
    """Interests as a list or as text separated by commas or semicolons; each lower-cased."""
    items = re.split(r"[,;]", value) if isinstance(value, str) else list(value or ())
    found = (" ".join(str(item).split()).lower() for item in items)
    words = tuple(dict.fromkeys(word for word in found if word))
    if any(len(word) > 40 for word in words) or len(words) > 20:
        raise InvalidField("interests", "at most 20 interests of up to 40 characters each")
    return words


def _guardian_name(value: str | None) -> str:
    name = " ".join((value or "").split())
    if len(name) > 100:
        raise InvalidField("guardian_name", "at most 100 characters")
    return name


# --- enrol ---------------------------------------------------------------------------------


def _library(ctx: Context, library_id: str) -> Library:
    library = ctx.config.library(library_id)
    if library is None:
        known = ", ".join(lib.id for lib in ctx.config.libraries)
        raise InvalidField("library", f"no library {library_id!r} in the config (known: {known})")
    return library


def _address(ctx: Context, field: str, text: str) -> str:
    try:
        address = normalize(text)
    except ValueError as error:
        raise InvalidField(field, str(error)) from None
    if address.endswith("@" + ctx.config.relay.domain):
        raise InvalidField(field, f"{address} is an address of the relay itself")
    if not address.rpartition("@")[0].isascii():
        # Mail to such a local part needs SMTPUTF8 all the way, which the program's mail
        # does not ask for: say so now rather than fail at every letter.
        raise InvalidField(
            field,
            f"{address}: the part before the @ has letters other than plain a-z, which most "
            "mail servers cannot deliver to; ask for another address",
        )
    return address


def check_enrolment(
    ctx: Context,
    library_id: str,
    name: str,
    email: str,
    language: str | None = None,
    guardian: str | None = None,
    details: Details | None = None,
    *,
    today: date | None = None,
) -> Enrolment:
    """Blocking (reads the store): the enrolment asked for, or `InvalidField` for its first
    bad field (`AlreadyEnrolled` when this name and address are enrolled at this library).

    Someone under the library's consent age must have a guardian's address: the guardian is
    asked for consent (`relay.consent`) and nothing is sent to or from them before it."""
    more = details or Details()
    day = today or datetime.now(UTC).date()
    library = _library(ctx, library_id)
    display_name = name.strip()
    if not display_name:
        raise InvalidField("name", "a display name (a first name) is required")
    address = _address(ctx, "email", email)
    if language and not LANGUAGE.match(language):
        raise InvalidField("language", f"{language!r} is not a language code such as en or es")
    for existing in ctx.store.by_email(address):
        if existing.library == library.id and existing.name == display_name:
            raise AlreadyEnrolled(f"{display_name} is already enrolled as {existing.masked}")
    guardian_address = _address(ctx, "guardian", guardian) if guardian else ""
    if guardian_address and guardian_address == address:
        raise InvalidField("guardian", "the guardian's address is the participant's own")
    birth_year = consent.check_birth_year(more.birth_year, day)
    age_band = consent.check_age_band(more.age_band)
    kind, members = check_kind(more.kind), _members(more.members)
    _group_checked(kind, birth_year, guardian_address, members)
    needs = kind != GROUP and consent.needs_consent(library, birth_year, age_band, day)
    if needs and not guardian_address:
        raise InvalidField(
            "guardian",
            f"under {library.consent_age} at {library.name}, a guardian's address is "
            "required: the guardian is asked for consent",
        )
    guardian_name = _guardian_name(more.guardian_name)
    return Enrolment(
        library,
        display_name,
        address,
        language or library.language,
        guardian_address,
        birth_year=birth_year,
        age_band=age_band,
        interests=_interests(more.interests),
        guardian_name=guardian_name if guardian_address else "",
        guardian_copies=True if more.guardian_copies is None else bool(more.guardian_copies),
        needs_consent=needs,
        kind=kind,
        members=members,
    )


def enroll(
    ctx: Context,
    library_id: str,
    name: str,
    email: str,
    *,
    language: str | None = None,
    guardian: str | None = None,
    details: Details | None = None,
    by: str = "",
    via: str = "cli",
) -> Participant:
    """Blocking: enrol a new participant with a fresh masked address. Someone who needs a
    guardian's consent is enrolled with consent "pending" (see `relay.consent`)."""
    checked = check_enrolment(ctx, library_id, name, email, language, guardian, details)
    return enroll_checked(ctx, checked, by=by, via=via)


def enroll_checked(
    ctx: Context, checked: Enrolment, *, by: str = "", via: str = "cli"
) -> Participant:
    """Blocking: enrol what `check_enrolment` accepted; the guardian of someone who needs
    consent is asked for it at once (`guardians.ask`)."""
    domain = ctx.config.relay.domain
    participant = ctx.store.add_participant(
        library=checked.library.id,
        name=checked.name,
        email=checked.email,
        language=checked.language,
        new_masked=lambda: new_masked_address(domain),
        guardian=checked.guardian,
        more={
            "birth_year": checked.birth_year,
            "age_band": checked.age_band,
            "interests": checked.interests,
            "guardian_name": checked.guardian_name,
            "guardian_copies": checked.guardian_copies,
            "consent": "pending" if checked.needs_consent else "",
            "kind": checked.kind,
            "members": checked.members,
        },
    )
    more = {"consent": "pending"} if checked.needs_consent else {}
    more |= {"kind": GROUP} if checked.kind == GROUP else {}
    _record(ctx, "enrolled", participant, by=by, via=via, masked=participant.masked, **more)
    if participant.consent == "pending":
        guardians.ask(ctx, participant, by=by, via=via)  # after the record: a link finds it
    return participant


# --- find ----------------------------------------------------------------------------------


def find(ctx: Context, reference: str, *, by_real_address: bool = True) -> Participant:
    """By id (`p12`), masked address, or real address when it names exactly one participant.

    `by_real_address=False` for references staff of another library typed: a lookup by real
    address would confirm that someone with that address is enrolled.
    """
    text = reference.strip()
    found = ctx.store.participant(text) or ctx.store.by_masked(text)
    if found is not None:
        return found
    if not by_real_address:
        raise NotFound(f"{reference}: no participant with this id or masked address")
    try:
        by_email = ctx.store.by_email(normalize(text))
    except ValueError:
        by_email = []
    if len(by_email) > 1:
        ids = ", ".join(p.id for p in by_email)
        raise UserError(f"{reference}: several participants share this address ({ids}); use an id")
    if not by_email:
        raise NotFound(f"{reference}: no participant with this id or address")
    return by_email[0]


# --- pals ----------------------------------------------------------------------------------


def _partners(ctx: Context, first: Participant, second: Participant) -> None:
    if second.library not in ctx.config.partners_of(first.library):
        raise UserError(
            f"{first.id} ({first.library}) and {second.id} ({second.library}) are not in "
            "partner libraries; pals come from the two libraries of a partnership"
        )


def pair(
    ctx: Context, first: Participant, second: Participant, *, by: str = "", via: str = "cli"
) -> None:
    """Make two participants of partner libraries pals (again is harmless); a group's pal
    is another group, a person's another person."""
    _partners(ctx, first, second)
    if first.is_group != second.is_group:
        group, person = (first, second) if first.is_group else (second, first)
        raise UserError(
            f"{group.id} ({group.name}) is a group and {person.id} a person; "
            "a group's pal is another group"
        )
    for one in (first, second):
        if one.status == LEFT:
            raise UserError(f"{one.id} has left the program; resume them before pairing")
    ctx.store.pair(first, second)
    _record_pair(ctx, "paired", first, second, by=by, via=via)


def accept_matches(
    ctx: Context, proposal: matching.Proposal, *, by: str = "", via: str = "match"
) -> tuple[list[matching.ProposedPair], list[matching.ProposedPair]]:
    """Pair a proposal staff accepted: (pairs made, pairs skipped). A pair is skipped when
    one of the two has left, been paused or been given another pal since the proposal; a
    team (`teammate`) is made after the other pairs, when the teammate's pair was made.
    Each pair is checked and made while no other process changes pals (two coordinators
    accepting at once never give anyone more pals than `uneven` allows), then welcomed
    (`relay.welcomes`: once both may correspond) before the next is made."""
    made: list[matching.ProposedPair] = []
    skipped: list[matching.ProposedPair] = []
    given: dict[str, set[str]] = {}  # pals this acceptance gave
    teams_last = sorted(proposal.pairs, key=lambda proposed: proposed.teammate is not None)
    for proposed in teams_last:
        accepted = partial(_accept_one, ctx, proposed, given, by=by, via=via)
        if not ctx.store.exclusively(accepted):
            skipped.append(proposed)
            continue
        made.append(proposed)
        welcomes.welcome(ctx, proposed.first, proposed.second, by=by, via=via)
    return made, skipped


def _accept_one(
    ctx: Context,
    proposed: matching.ProposedPair,
    given: dict[str, set[str]],
    *,
    by: str,
    via: str,
) -> bool:
    """Pair one proposed pair (and team) if it still may be; run under the store's lock."""
    current = [ctx.store.participant(p.id) for p in (proposed.first, proposed.second)]
    if any(
        now is None or now.status != ACTIVE or set(now.pals) - given.get(now.id, set())
        for now in current
    ) or not _may_team(ctx, proposed, given):
        return False
    pair(ctx, proposed.first, proposed.second, by=by, via=via)
    if proposed.teammate is not None:
        one = next(p for p in current if p and p.library == proposed.teammate.library)
        ctx.store.team(one, proposed.teammate)
        _record_pair(ctx, "teamed", one, proposed.teammate, by=by, via=via)
    given.setdefault(proposed.first.id, set()).add(proposed.second.id)
    given.setdefault(proposed.second.id, set()).add(proposed.first.id)
    return True


def _may_team(ctx: Context, proposed: matching.ProposedPair, given: dict[str, set[str]]) -> bool:
    """A proposed team is still possible: the teammate is active, in no team (a team whose
    other half is no longer enrolled is none), and has just the pal this acceptance gave."""
    if proposed.teammate is None:
        return True
    mate = ctx.store.participant(proposed.teammate.id)
    return (
        mate is not None
        and mate.status == ACTIVE
        and (not mate.writes_with or ctx.store.participant(mate.writes_with) is None)
        and len(mate.pals) == 1
        and set(mate.pals) == given.get(mate.id)
    )


def unpair(
    ctx: Context, first: Participant, second: Participant, *, by: str = "", via: str = "cli"
) -> None:
    """End a pairing; `NotFound` when the two are not pals. A team writing together to
    that pal ends with it (the other keeps the pal): audited as "team-ended"."""
    _partners(ctx, first, second)
    current = ctx.store.participant(first.id)  # the record as stored, not as the caller saw it
    if current is None or second.id not in current.pals:
        raise NotFound(f"{first.id} and {second.id} are not pals")
    ended = ctx.store.unpair(first, second)
    _record_pair(ctx, "unpaired", first, second, by=by, via=via)
    for one, teammate in ended:
        _team_ended(ctx, one, teammate, by=by, via=via)


def _team_ended(ctx: Context, one: str, teammate: str, *, by: str, via: str) -> None:
    found = [ctx.store.participant(p) for p in (one, teammate)]
    if found[0] is not None and found[1] is not None:
        _record_pair(ctx, "team-ended", found[0], found[1], by=by, via=via)


def _record_pair(
    ctx: Context, event: str, first: Participant, second: Participant, *, by: str, via: str
) -> None:
    details = {"participants": [first.id, second.id], "library": first.library, "via": via}
    ctx.store.audit(event, **details, **({"by": by} if by else {}))
    log.info(
        "%s participants=%s,%s masked=%s,%s via=%s",
        event,
        first.id,
        second.id,
        first.masked,
        second.masked,
        via,
    )


# --- status and guardian -------------------------------------------------------------------


def _recorded(
    ctx: Context,
    event: str,
    change: tuple[Participant, Participant],
    *,
    by: str,
    via: str,
    **more: str,
) -> Participant:
    """Audit and log a change the store made, only when it changed something."""
    before, after = change
    if after != before:
        _record(ctx, event, after, by=by, via=via, **more)
    return after


def pause(
    ctx: Context, participant: Participant, *, by: str = "", via: str = "cli", reason: str = ""
) -> Participant:
    """Letters from and to a paused participant are refused until resumed; `reason` (a word
    such as "mailbox-failing", or "asked" when they or their guardian asked) is kept with
    the participant (`pause_reason`, "staff" when none is given) and goes to the audit log
    and the log."""

    def paused(current: Participant) -> Participant:
        if current.status == LEFT:
            raise UserError(f"{current.id} has left the program; there is nothing to pause")
        return current.but(status=PAUSED, pause_reason=reason or "staff")

    change = ctx.store.update_participant(participant.id, paused)
    return _recorded(
        ctx, "paused", change, by=by, via=via, **({"reason": reason} if reason else {})
    )


def mail_returned(ctx: Context, participant: Participant) -> tuple[Participant, bool]:
    """A letter to this participant came back for good from their mail server: counted, and
    after `[delivery] pause_after_bounces` in a row letters to them are paused. Returns the
    record and whether this return paused them."""
    _, counted = ctx.store.count_bounce(participant.id)
    limit = ctx.config.delivery.pause_after_bounces
    if not limit or counted.bounces < limit or counted.status != ACTIVE:
        return counted, False
    return pause(ctx, counted, via="bounces", reason="mailbox-failing"), True


def mail_works(ctx: Context, participant: Participant) -> Participant:
    """Their mail server reported a letter delivered: returned letters count from 0 again."""
    return ctx.store.clear_bounces(participant.id)[1]


def resume(
    ctx: Context, participant: Participant, *, by: str = "", via: str = "cli"
) -> Participant:
    """Active again, from paused or from having left; letters returned before no longer
    count towards pausing them (staff have looked at their address); pals made meanwhile
    are welcomed now (`welcomes.pending`). Not someone whose
    guardian withdrew consent: consent given again (`guardians.give`) resumes them (or, once
    they need none, staff do)."""

    def resumed(current: Participant) -> Participant:
        withdrawn = current.pause_reason == guardians.WITHDRAWN and current.consent != ""
        if current.status == PAUSED and withdrawn:
            raise UserError(
                f"{current.id}: the guardian withdrew consent; record consent given again "
                "(participants consent --paper, or --ask-again) to resume"
            )
        return current.but(status=ACTIVE, pause_reason="")

    change = ctx.store.update_participant(participant.id, resumed)
    ctx.store.clear_bounces(participant.id)
    after = _recorded(ctx, "resumed", change, by=by, via=via)
    welcomes.pending(ctx, after, by=by, via=via)  # pals made while they were paused
    return after


def leave(ctx: Context, participant: Participant, *, by: str = "", via: str = "cli") -> Participant:
    """No longer in the program: the record and its pals stay, no letter goes either way,
    until retention erases them (`[retention] left_months` after `left_at`)."""
    at = datetime.now(UTC).isoformat(timespec="seconds")

    def left(current: Participant) -> Participant:
        return current if current.status == LEFT else current.but(status=LEFT, left_at=at)

    change = ctx.store.update_participant(participant.id, left)
    after = _recorded(ctx, "left", change, by=by, via=via)
    if teammate := ctx.store.end_team(participant.id):  # the teammate keeps the pal
        _team_ended(ctx, participant.id, teammate, by=by, via=via)
    return after


def set_guardian(
    ctx: Context,
    participant: Participant,
    guardian: str,
    *,
    name: str | None = None,
    copies: bool | None = None,
    by: str = "",
    via: str = "cli",
) -> Participant:
    """A parent's address, with their name and whether they get a copy of every letter to
    and from this participant (`name`, `copies`: None leaves them as they are)."""
    details = Details(guardian_name=name, guardian_copies=copies)
    return edit(ctx, participant, details, guardian=guardian, by=by, via=via)


def clear_guardian(
    ctx: Context, participant: Participant, *, by: str = "", via: str = "cli"
) -> Participant:
    """No guardian any more; refused (`InvalidField("guardian")`) for someone under their
    library's consent age."""
    return edit(ctx, participant, guardian="", by=by, via=via)


# The enrolment details `edit` changes, audited by name ("details-changed", never values).
DETAIL_FIELDS = (
    "birth_year",
    "age_band",
    "interests",
    "guardian_name",
    "guardian_copies",
    "members",
)


def _checked_details(
    ctx: Context, details: Details, guardian: str | None, day: date
) -> dict[str, object]:
    """The fields given (None: unchanged), checked and normalized; `InvalidField` names one."""
    changes: dict[str, object] = {}
    if details.birth_year is not None:
        changes["birth_year"] = consent.check_birth_year(details.birth_year, day)
    if details.age_band is not None:
        changes["age_band"] = consent.check_age_band(details.age_band)
    if details.interests is not None:
        changes["interests"] = _interests(details.interests)
    if details.guardian_name is not None:
        changes["guardian_name"] = _guardian_name(details.guardian_name)
    if details.guardian_copies is not None:
        changes["guardian_copies"] = bool(details.guardian_copies)
    if details.members is not None:
        changes["members"] = _members(details.members)
    if guardian is not None:
        changes["guardian"] = _address(ctx, "guardian", guardian) if guardian.strip() else ""
    return changes


def _consent_after(library: Library, current: Participant, day: date) -> Participant:
    """Who is now under the consent age needs a guardian and waits for consent ("pending");
    who is not (a corrected year of birth) no longer waits. A group never waits."""
    kind = current.kind or "person"
    _group_checked(kind, current.birth_year, current.guardian, current.members)
    needs = kind != GROUP and consent.needs_consent(
        library, current.birth_year, current.age_band, day
    )
    if needs and not current.guardian:
        raise InvalidField(
            "guardian",
            f"under {library.consent_age} at {library.name}, a guardian's address is "
            "required: the guardian is asked for consent",
        )
    if needs and current.consent == "":
        return current.but(consent="pending")
    if not needs and current.consent == "pending":
        return current.but(consent="")
    return current


def edit(
    ctx: Context,
    participant: Participant,
    details: Details | None = None,
    *,
    guardian: str | None = None,
    by: str = "",
    via: str = "cli",
    today: date | None = None,
) -> Participant:
    """Change a participant's enrolment details: each field of `details` that is not None,
    and the guardian's address when `guardian` is not None ("" removes the guardian, and
    their name). Checked like an enrolment (`InvalidField` names the field): someone under
    the consent age keeps a guardian, and becomes "pending" when they were not asked yet or
    their guardian changed (consent given or withdrawn was the earlier guardian's); the
    guardian is then asked (`guardians.ask`), and the earlier one's requests and pending
    emailed commands are forgotten.
    Audited as "guardian-set" or "guardian-cleared" and "details-changed" (which fields,
    never their values)."""
    day = today or datetime.now(UTC).date()
    library = _library(ctx, participant.library)
    changes = _checked_details(ctx, details or Details(), guardian, day)
    kind = details.kind if details is not None else None
    if kind is not None and check_kind(kind) != (participant.kind or "person"):
        raise InvalidField("kind", "a participant's kind is chosen at enrolment")
    if changes.get("guardian") and changes["guardian"] == participant.email:
        raise InvalidField("guardian", "the guardian's address is the participant's own")

    def edited(current: Participant) -> Participant:
        changed = current.but(**changes)
        if not changed.guardian:
            changed = changed.but(guardian_name="")
        if changed.guardian != current.guardian and current.consent in ("given", "withdrawn"):
            # Consent (or its withdrawal) was the earlier guardian's: the new one is asked
            # for their own. A pause for a withdrawal stays until consent is given.
            changed = changed.but(consent="", consent_at="", consent_method="")
        return _consent_after(library, changed, day)

    before, after = ctx.store.update_participant(participant.id, edited)
    if after.guardian != before.guardian:
        # The earlier guardian's consent links, reply addresses and unsent requests lead
        # nowhere any more, nor do their emailed commands waiting for confirmation.
        guardians.forget_requests(ctx, after)
        ctx.store.forget_pending_commands(after.id)
        _record(
            ctx, "guardian-set" if after.guardian else "guardian-cleared", after, by=by, via=via
        )
    fields = [f for f in DETAIL_FIELDS if getattr(after, f) != getattr(before, f)]
    if after.guardian != before.guardian:  # their name and copies go with the new address
        fields = [f for f in fields if not f.startswith("guardian")]
    if fields or after.consent != before.consent:
        more = {"consent": after.consent or "not-needed"} if after.consent != before.consent else {}
        _record(ctx, "details-changed", after, by=by, via=via, fields=",".join(fields), **more)
    if after.consent == "pending" and (
        before.consent != "pending" or after.guardian != before.guardian
    ):
        guardians.ask(ctx, after, by=by, via=via)  # newly under the age, or a new guardian
    return after


def _record(
    ctx: Context, event: str, participant: Participant, *, by: str, via: str, **more: str
) -> None:
    details = {"participant": participant.id, "library": participant.library, "via": via}
    ctx.store.audit(event, **details, **({"by": by} if by else {}), **more)
    extra = "".join(f" {key}={value}" for key, value in more.items())
    log.info(
        "%s participant=%s library=%s%s via=%s",
        event,
        participant.id,
        participant.library,
        extra,
        via,
    )


# --- names their own mail uses ----------------------------------------------------------------


def names_worth_keeping(
    ctx: Context, participant: Participant, display_names: Iterable[str]
) -> tuple[str, ...]:
    """The display names that may be the participant's own (`names.learnable`: not an
    address, not the program's or a library's name, more than the enrolled first name)."""
    own_words = (ctx.config.relay.program_name, *(lib.name for lib in ctx.config.libraries))
    found = (
        names.learnable(
            shown,
            address=participant.email,
            masked=participant.masked,
            first_name=participant.name,
            own_words=own_words,
        )
        for shown in display_names
    )
    return tuple(dict.fromkeys(name for name in found if name is not None))


def learn_names(
    ctx: Context, participant: Participant, display_names: Iterable[str]
) -> Participant:
    """Keep the display names of a letter accepted as this participant's own, most recent
    first (`names.remember`). The names stay private: the audit log and the log say only
    that a name was learned, never which."""
    found = names_worth_keeping(ctx, participant, display_names)
    if not found:
        return participant

    def learned(current: Participant) -> Participant:
        known = current.known_names
        for name in reversed(found):
            known = names.remember(known, name)
        return current.but(known_names=known)

    before, after = ctx.store.update_participant(participant.id, learned)
    if set(after.known_names) - set(before.known_names):
        _record(ctx, "name-learned", after, by="", via="letter")
    return after


def pause_prompts(ctx: Context, participant_id: str, *, via: str) -> bool:
    """One-click unsubscribe: only the monthly topic emails stop; letters go on.
    False when there is no such participant (a link for a record that is gone)."""
    try:
        change = ctx.store.update_participant(participant_id, lambda p: p.but(prompts_paused=True))
    except NotFound:
        return False
    _recorded(ctx, "prompts-paused", change, by="", via=via)
    return True
