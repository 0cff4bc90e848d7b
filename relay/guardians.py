"""Guardians' consent: the request, the answer (link, reply or paper), and withdrawal.

A participant under their library's consent age (`relay.consent`) is enrolled with consent
"pending", and their guardian gets a request (`ask`) in the participant's language, from
program@ through the outbox door: what the program is, who reads the letters, what is kept,
and two ways to answer. The link `<public_url>/consent/<token>` opens a page with a button
(opening it changes nothing, since mail scanners fetch every link; the button's POST
answers); a reply goes to `consent+<token>@<domain>` and counts only from the guardian's
own address, vouched for by the authentication verdict. A token carries 128 random bits;
the store keeps only its SHA-256 (`Store.record_consent_request`), good once for
`REQUEST_DAYS` days. After consent, the same link lets the guardian withdraw it. A request
speaks only for the guardian it was sent to: when staff set another guardian, the earlier
one's requests are forgotten, any left answer nothing (`ConsentRequest.for_guardian`), and
a request to them still waiting in the outbox is dropped unsent (`forget_requests`).

Until consent, nothing is sent to or from the participant (`Participant.may_correspond`):
their letters and letters to them are held with a note, and approving them keeps them held
(`letters.deciding`). Consent given is recorded with its time and method, and the audit
entry lists the letters now waiting for a moderator; withdrawal pauses the participant at
once (`pause_reason = "consent-withdrawn"`; a letter approved but not yet handed to the
transport is held again when the outbox takes it, `letters.hold_again`), and consent given
again resumes them. The
audit log and the log name ids and methods only, never the guardian's address.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Literal

from relay import consent, notices, welcomes
from relay.authresults import Verdict
from relay.context import Context
from relay.decisions import first_instruction
from relay.errors import UserError
from relay.mail_reading import body_text, from_address
from relay.outbox import Notice, door
from relay.route import is_automatic
from relay.scrub import parse
from relay.store import now_iso
from relay.store.records import (
    ACTIVE,
    LEFT,
    PAUSED,
    ConsentMethod,
    ConsentRequest,
    Participant,
    address_digest,
)

log = logging.getLogger("relay")

REQUEST_DAYS = 30
REPLY_PREFIX = "consent+"
WITHDRAWN = "consent-withdrawn"  # the pause reason of a participant whose consent was withdrawn

# What the consent page shows for a token: ask for the answer, say consent is given (and
# offer withdrawal), say it was withdrawn, or why the link does nothing.
PageState = Literal["ask", "given", "withdrawn", "answered", "expired", "unknown"]


@dataclass(frozen=True)
class LinkPage:
    state: PageState
    participant: Participant | None = None


# --- the request ---------------------------------------------------------------------------


def ask(ctx: Context, participant: Participant, *, by: str = "", via: str = "cli") -> None:
    """Email the guardian a consent request with a fresh token (an earlier one stays good
    until it expires). `UserError` when there is no guardian or nothing to ask."""
    if not participant.guardian:
        raise UserError(f"{participant.id} has no guardian's address to ask")
    if participant.consent not in ("pending", "withdrawn"):
        state = "is already given" if participant.consent == "given" else "is not needed"
        raise UserError(f"{participant.id}: a guardian's consent {state}")
    token = secrets.token_hex(16)
    expires = time.time() + REQUEST_DAYS * 86400
    ctx.store.record_consent_request(token, request_for(participant, expires))
    subject, text = ctx.templates.email(
        participant.language, "consent_request", **_request_values(ctx, participant, token)
    )
    domain = ctx.config.relay.domain
    message = door.program_message(
        ctx,
        Address(participant.guardian_name, addr_spec=participant.guardian),
        subject,
        text,
        reply_to=Address(
            ctx.config.relay.program_name, addr_spec=f"{REPLY_PREFIX}{token}@{domain}"
        ),
    )
    item = f"consent-request-{participant.id}-{hashlib.sha256(token.encode()).hexdigest()[:12]}"
    door.queue(ctx, item, message, Notice("consent-request"), to=participant.guardian)
    _record(ctx, "consent-requested", participant, by=by, via=via)


def forget_requests(ctx: Context, participant: Participant) -> None:
    """The participant's consent requests lead nowhere any more (their guardian changed, or
    they need none): the tokens are forgotten and requests not yet sent are dropped from the
    outbox, so no earlier (perhaps mistyped) address gets the child's name afterwards."""
    ctx.store.forget_consent_requests(participant.id)
    prefix = f"consent-request-{participant.id}-"
    for item in ctx.spool.outbox():
        if item.id.startswith(prefix) and not ctx.spool.was_sent(item.id):
            ctx.spool.drop(item.id)
            log.info("dropped consent request %s: the guardian changed", item.id)


def request_for(participant: Participant, expires: float) -> ConsentRequest:
    """A request to the participant's guardian now: it answers for them only."""
    return ConsentRequest(participant.id, expires, guardian=address_digest(participant.guardian))


def _child_of(ctx: Context, request: ConsentRequest | None) -> Participant | None:
    """The participant a request is about, while the guardian it went to is still theirs:
    the link or reply of a guardian replaced since counts for nothing."""
    participant = ctx.store.participant(request.participant) if request else None
    if request is None or participant is None or not request.for_guardian(participant.guardian):
        return None
    return participant


def _request_values(ctx: Context, participant: Participant, token: str) -> dict[str, object]:
    config = ctx.config
    library = config.library(participant.library)
    partners = [config.library(i) for i in config.partners_of(participant.library)]
    base = config.web.public_url.rstrip("/") or f"http://{config.web.listen}"
    return {
        "name": participant.name,
        "guardian_name": participant.guardian_name,
        "program_name": config.relay.program_name,
        "library_name": library.name if library else participant.library,
        "partner_names": [p.name for p in partners if p is not None],
        "link": f"{base}/consent/{token}",
        "days": REQUEST_DAYS,
        "copies": participant.guardian_copies,
        "letters_months": config.retention.letters_months,
        "no_consent_months": config.retention.no_consent_months,
        "privacy_url": config.privacy_url(participant.language),
    }


# --- the answer ----------------------------------------------------------------------------


def page(ctx: Context, token: str) -> LinkPage:
    """What the consent link shows now, without answering anything (a GET)."""
    request = ctx.store.consent_request(token)
    participant = _child_of(ctx, request)
    if request is None or participant is None or participant.consent == "":
        return LinkPage("unknown")
    if participant.consent == "given":
        return LinkPage("given", participant)
    if request.used:
        withdrawn = participant.consent == "withdrawn" and request.answer == consent.GIVEN
        return LinkPage("withdrawn" if withdrawn else "answered", participant)
    if not request.usable(time.time()):
        return LinkPage("expired", participant)
    return LinkPage("ask", participant)


def answer_by_link(ctx: Context, token: str, answer: consent.Answer) -> LinkPage:
    """The guardian pressed a button on the consent page: the token is used (once) and the
    answer recorded; the page then says what is so."""
    shown = page(ctx, token)
    if shown.state != "ask":
        return shown
    now = time.time()
    request = ctx.store.answer_consent_request(token, answer, now)
    if request is None or not request.usable(now) or shown.participant is None:
        return page(ctx, token)  # used by a racing answer, or expired meanwhile
    with contextlib.suppress(UserError):  # consent no longer needed, changed meanwhile
        _answered(ctx, shown.participant, answer, "link", token)
    return page(ctx, token)


def withdraw_by_link(ctx: Context, token: str) -> LinkPage:
    """The guardian withdrew consent from the page their link opens (once it is given)."""
    shown = page(ctx, token)
    if shown.state == "given" and shown.participant is not None:
        withdraw(ctx, shown.participant, via="link", token=token)
        return LinkPage("withdrawn", ctx.store.participant(shown.participant.id))
    return shown


def handle_reply(ctx: Context, raw: bytes, envelope_from: str, rcpt: str, verdict: Verdict) -> None:
    """A reply to a consent request: its first line, from the guardian's own address (and
    vouched for, unless `[authentication] required = false`), answers it. Anything else
    changes nothing and is answered by nobody: a forged reply must not cause mail."""
    message = parse(raw)
    token = rcpt.partition("@")[0].lower().removeprefix(REPLY_PREFIX)
    participant = _child_of(ctx, ctx.store.consent_request(token))
    sender = from_address(message)
    if participant is None:
        refused = "unknown-token"
    elif is_automatic(message, envelope_from):
        refused = "automatic"
    elif not participant.guardian or sender != participant.guardian:
        refused = "not-the-guardian"
    elif ctx.config.authentication.required and not verdict.vouches_for(sender):
        refused = "unauthenticated"
    else:
        refused = _reply_answer(ctx, message, token, participant)
    if refused:
        who = {"participant": participant.id} if participant else {}
        ctx.store.audit("consent-reply-refused", reason=refused, **who)
        log.info(
            "consent reply refused reason=%s participant=%s", refused, who.get("participant", "-")
        )


def _reply_answer(ctx: Context, message: EmailMessage, token: str, participant: Participant) -> str:
    """Record the answer a reply gives; the reason it does not count, or ""."""
    line = first_instruction(body_text(message)) or ""
    answer = consent.read_answer(line, ctx.templates.consent_words())
    if answer is None:
        return "no-answer"
    if participant.consent == "":  # staff corrected the year of birth since the request
        return "not-needed"
    now = time.time()
    request = ctx.store.answer_consent_request(token, answer, now)
    if request is None or not request.usable(now):
        return "used-token" if request is not None and request.used else "expired-token"
    try:
        _answered(ctx, participant, answer, "reply", token)
    except UserError:  # no longer needed: changed by staff while this reply was read
        return "not-needed"
    return ""


def _answered(
    ctx: Context,
    participant: Participant,
    answer: consent.Answer,
    method: ConsentMethod,
    token: str,
) -> None:
    if answer == consent.GIVEN:
        give(ctx, participant, method=method, via=method, token=token)
    else:
        decline(ctx, participant, method=method, token=token)


# --- recording consent ---------------------------------------------------------------------


def give(
    ctx: Context,
    participant: Participant,
    *,
    method: ConsentMethod,
    by: str = "",
    via: str = "cli",
    token: str = "",
) -> Participant:
    """Consent given (by the link, a reply, or on paper as `by` recorded): letters may go to
    and from the participant; one paused because consent was withdrawn is active again. The
    audit entry lists the held letters that a moderator may now approve. `token`: the
    request's, when the guardian answered one."""
    stamp = now_iso()

    def given(current: Participant) -> Participant:
        if current.consent == "":
            raise UserError(f"{current.id} needs no guardian's consent")
        if current.consent == "given":
            return current
        again = current.status == PAUSED and current.pause_reason == WITHDRAWN
        resumed = {"status": ACTIVE, "pause_reason": ""} if again else {}
        return current.but(consent="given", consent_at=stamp, consent_method=method, **resumed)

    before, after = ctx.store.update_participant(participant.id, given)
    if after == before:
        return after
    waiting = waiting_letters(ctx, after)
    _record(ctx, "consent-given", after, by=by, via=via, method=method, letters=waiting)
    _tell_moderators(ctx, after, "given", method, len(waiting), token)
    welcomes.pending(ctx, after, by=by, via=via)  # pals made while consent was awaited
    return after


def decline(
    ctx: Context, participant: Participant, *, method: ConsentMethod, token: str = ""
) -> None:
    """The guardian said no: nothing changes for the participant (nothing is sent to or
    from them), and their library's moderators are told."""
    _record(ctx, "consent-declined", participant, by="", via=method, method=method)
    waiting = len(waiting_letters(ctx, participant))
    _tell_moderators(ctx, participant, "declined", method, waiting, token)


def withdraw(
    ctx: Context, participant: Participant, *, by: str = "", via: str = "cli", token: str = ""
) -> Participant:
    """Consent withdrawn (by the guardian's link, or as staff recorded): the participant is
    paused at once, so nothing more is sent to or from them; their records stay."""
    stamp = now_iso()

    def withdrawn(current: Participant) -> Participant:
        if current.consent == "withdrawn":
            return current
        paused = {"status": PAUSED, "pause_reason": WITHDRAWN} if current.status != LEFT else {}
        return current.but(consent="withdrawn", consent_at=stamp, **paused)

    before, after = ctx.store.update_participant(participant.id, withdrawn)
    if after != before:
        _record(ctx, "consent-withdrawn", after, by=by, via=via)
        if not by:
            waiting = len(waiting_letters(ctx, after))
            _tell_moderators(ctx, after, "withdrawn", via, waiting, token)
    return after


def waiting_letters(ctx: Context, participant: Participant) -> list[int]:
    """The held letters from or to a participant."""
    return [
        letter.id
        for letter in ctx.store.queue()
        if participant.id in (letter.sender, letter.recipient)
    ]


def _tell_moderators(
    ctx: Context, participant: Participant, answer: str, method: str, waiting: int, token: str
) -> None:
    """Queued once per answer: the same token's answer read again (a reply processed twice)
    names the same outbox item. `consent_at` tells apart a withdrawal by the same link after
    consent was given again; erasing the participant finds the item by their id."""
    once = hashlib.sha256(f"{token}|{participant.consent_at}".encode()).hexdigest()[:12]
    notices.tell_moderators(
        ctx,
        participant.library,
        "consent_answered",
        f"consent-{answer}-{participant.id}-{once}",
        private=(participant.guardian,) if participant.guardian else (),
        participant_name=participant.name,
        participant_id=participant.id,
        answer=answer,
        method=method,
        waiting=waiting,
    )


def _record(
    ctx: Context, event: str, participant: Participant, *, by: str, via: str, **more: object
) -> None:
    details = {"participant": participant.id, "library": participant.library, "via": via}
    ctx.store.audit(event, **details, **({"by": by} if by else {}), **more)
    extra = "".join(
        f" {key}={len(value) if isinstance(value, list) else value}" for key, value in more.items()
    )
    log.info(
        "%s participant=%s library=%s%s via=%s",
        event,
        participant.id,
        participant.library,
        extra,
        via,
    )
