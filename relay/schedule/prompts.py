"""Monthly topic prompts: each active participant gets the month's topic once, in their
language, at the configured local hour of their library.

Exactly once, across restarts and crashes. For each month a claim journal
(`<data_dir>/prompts/YYYY-MM.jsonl`, append-only, fsynced per batch) records "claimed"
before a participant's prompt enters the outbox and "queued" after; the relay records
"sent" when the transport confirmed it (under the store lock, before the entry is removed).
A participant with a claim is never claimed again; a claim without "queued" (a crash in
between) is queued again under the same outbox name and the same Message-ID, which the
outbox takes only once. Prompts enter the outbox `BATCH` at a time, with one group commit.

Scheduling is a pure decision (`due_month`) on an injected clock: the prompt is due in a
library's month once its local time has reached `[prompts] day` at `hour`; a relay that was
down at that hour sends on its next run the same month, it does not skip.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from relay import compose, guard
from relay.config import Config, Library, PromptSettings, Topic
from relay.context import Context
from relay.faults import crash_point
from relay.outbox import MonthlyPrompt, door
from relay.store.files import append_lines, read_lines
from relay.store.records import ACTIVE, Participant

log = logging.getLogger("relay")

BATCH = 500  # prompts per claim journal append and per outbox group commit
CLAIMED, QUEUED, SENT = "claimed", "queued", "sent"


def due_month(library: Library, settings: PromptSettings, now: datetime) -> str | None:
    """The month ("YYYY-MM") whose prompt is due for this library at `now`, if any."""
    local = now.astimezone(ZoneInfo(library.timezone))
    if (local.day, local.hour) >= (settings.day, settings.hour):
        return f"{local.year:04d}-{local.month:02d}"
    return None


def partnership_of(config: Config, library_id: str) -> str:
    return next((p.id for p in config.partnerships if library_id in p.libraries), "")


def _journal(ctx: Context, month: str) -> Path:
    folder = ctx.config.relay.data_dir / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{month}.jsonl"


def states(ctx: Context, month: str) -> dict[str, str]:
    """Participant id -> furthest state reached this month."""
    order = {CLAIMED: 0, QUEUED: 1, SENT: 2}
    found: dict[str, str] = {}
    for line in read_lines(_journal(ctx, month)):
        pid, state = str(line.get("p")), str(line.get("s"))
        if order.get(state, -1) > order.get(found.get(pid, ""), -1):
            found[pid] = state
    return found


def mark_sent(ctx: Context, month: str, participant_id: str) -> None:
    mark_sent_many(ctx, [(month, participant_id)])


def mark_sent_many(ctx: Context, sent: Iterable[tuple[str, str]]) -> None:
    """(month, participant id) pairs whose prompts were delivered, one fsync per month.
    Called under the store lock, before the prompts' outbox entries are removed."""
    months: dict[str, list[dict[str, Any]]] = {}
    for month, participant_id in sent:
        months.setdefault(month, []).append({"p": participant_id, "s": SENT})
    for month, lines in months.items():
        append_lines(_journal(ctx, month), lines)


def unsubscribe_token(ctx: Context, participant_id: str) -> str:
    return compose.unsubscribe_token(ctx.secret, participant_id)


def participant_of_token(ctx: Context, token: str) -> str | None:
    return compose.participant_of_unsubscribe(ctx.secret, token)


@dataclass(frozen=True)
class Prompt:
    participant: Participant
    subject: str
    text: str
    language: str


def _pick(texts: dict[str, str], languages: Iterable[str]) -> tuple[str, str]:
    for language in languages:
        if language in texts:
            return language, texts[language]
    first = next(iter(texts))
    return first, texts[first]


Lookup = Callable[[str], Participant | None]


def render(
    ctx: Context, participant: Participant, topic: Topic, lookup: Lookup | None = None
) -> Prompt:
    """The prompt for one participant, in their language (then the library's, then English)."""
    library = ctx.config.library(participant.library)
    wanted = [
        participant.language,
        participant.language.split("-")[0],
        library.language if library else "en",
        "en",
    ]
    language, subject = _pick(topic.subject, wanted)
    _, body = _pick(topic.body, [language, *wanted])
    pals = active_pals(participant, lookup or ctx.store.participant)
    values: dict[str, Any] = {
        "name": participant.name,
        "library_name": library.name if library else participant.library,
        "pals": [
            {
                "name": p.name,
                "masked": p.masked,
                "library_name": _library_name(ctx.config, p.library),
            }
            for p in pals
        ],
        "program_name": ctx.config.relay.program_name,
        "privacy_url": ctx.config.privacy_url(language),
    }
    text = _body_template(body).render(**values)
    footer = ctx.templates.render("email", language, "prompt_footer.txt", **values)
    return Prompt(participant, subject, f"{text.rstrip()}\n\n{footer}", language)


@functools.lru_cache(maxsize=256)
def _body_template(body: str) -> jinja2.Template:
    """Topic bodies come from config; each is compiled once, not once per participant."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 -- plain text
    return environment.from_string(body)


def _library_name(config: Config, library_id: str) -> str:
    library = config.library(library_id)
    return library.name if library else library_id


def compose_prompt(ctx: Context, prompt: Prompt, month: str) -> bytes:
    """One participant's prompt as sent: a program message with the list headers that let
    a mail client offer one-click unsubscribe (RFC 2369, RFC 8058)."""
    config = ctx.config
    domain = config.relay.domain
    participant = prompt.participant
    token = unsubscribe_token(ctx, participant.id)
    base = config.web.public_url.rstrip("/") or f"http://{config.web.listen}"
    return compose.compose_notice(
        sender=Address(config.relay.program_name, addr_spec=config.program_address),
        to=Address(participant.name, addr_spec=participant.email),
        subject=prompt.subject,
        text=prompt.text,
        domain=domain,
        date=datetime.now(UTC),
        message_id=prompt_message_id(ctx, month, participant.id),
        extra=(
            (
                "List-Id",
                compose.text_header(f"{config.relay.program_name} topics <prompts.{domain}>"),
            ),
            (
                "List-Unsubscribe",
                f"<mailto:unsubscribe+{token}@{domain}>, <{base}/unsubscribe/{token}>",
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )


def prompt_message_id(ctx: Context, month: str, participant_id: str) -> str:
    """Deterministic: the same prompt composed again after a crash is the same message."""
    signature = hmac.new(ctx.secret, f"prompt:{month}:{participant_id}".encode(), hashlib.sha256)
    domain = ctx.config.relay.domain
    return f"<prompt-{month}-{participant_id}.{signature.hexdigest()[:12]}@{domain}>"


def eligible(ctx: Context, library_ids: set[str] | None = None) -> list[Participant]:
    """Active participants with at least one pal (a topic with nobody to write to would only
    confuse a child) who have not paused the topic emails, and whose guardian has consented
    where consent is needed (nothing is sent to a child before)."""
    return [
        p
        for p in ctx.store.participants()
        if p.status == ACTIVE
        and p.may_correspond
        and p.pals
        and not p.prompts_paused
        and ctx.config.library(p.library) is not None
        and (library_ids is None or p.library in library_ids)
    ]


def send_month(
    ctx: Context,
    month: str,
    participants: list[Participant],
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Queue the month's prompt for each participant who has not had it; returns how many."""
    done = states(ctx, month)
    queued = 0
    todo = [p for p in participants if done.get(p.id) not in (QUEUED, SENT)]
    people = {p.id: p for p in ctx.store.participants()} if todo else {}  # pals, read once
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        queued += _send_batch(ctx, month, batch, done, dry_run, people.get)
        if progress is not None:
            progress(min(start + BATCH, len(todo)), len(todo))
    return queued


def active_pals(participant: Participant, lookup: Lookup) -> list[Participant]:
    """The pals a prompt may name: never one whose letters are paused, who has left, or
    whose guardian has not consented yet (a child would write to someone who cannot
    receive it)."""
    pals = (lookup(pid) for pid in participant.pals)
    return [p for p in pals if p is not None and p.status == ACTIVE and p.may_correspond]


def _send_batch(
    ctx: Context,
    month: str,
    batch: list[Participant],
    done: dict[str, str],
    dry_run: bool,
    lookup: Lookup,
) -> int:
    messages = []
    for participant in batch:
        if not active_pals(participant, lookup):
            # Nobody to write to this month (yet): not claimed, so a later run of the same
            # month sends it once a pal is resumed.
            log.info("prompt not sent month=%s participant=%s no-active-pal", month, participant.id)
            continue
        topic = ctx.config.prompts.topic_for(month, partnership_of(ctx.config, participant.library))
        if topic is None:
            continue
        try:
            prompt = render(ctx, participant, topic, lookup)
        except jinja2.TemplateError as error:
            # One participant's odd data must not hold back everyone else's prompt.
            log.warning(
                "prompt not written month=%s participant=%s error=%r",
                month,
                participant.id,
                str(error),
            )
            continue
        # A prompt holds no words a patron wrote: the coordinator's topic, first names and
        # masked addresses. The guard still seals the bytes, but searching them for each
        # pal's real address compiled a pattern per participant (40 ms each: over an hour
        # for 100,000 participants) to look where no such address can come from.
        checked = guard.checked(compose_prompt(ctx, prompt, month), (), what=f"the {month} prompt")
        messages.append((participant, checked))
    if dry_run or not messages:
        return len(messages)
    journal = _journal(ctx, month)
    fresh = [p for p, _ in messages if done.get(p.id) != CLAIMED]
    append_lines(journal, [{"p": p.id, "s": CLAIMED} for p in fresh])  # the durable claim
    entries = [
        (p.id, door.entry(ctx, f"prompt-{month}-{p.id}", MonthlyPrompt(month, p.id), p.email), c)
        for p, c in messages
    ]
    if len(fresh) == len(messages):  # nobody claimed before: none can be sent already
        door.queue_many(ctx, [(entry, checked) for _, entry, checked in entries])
    else:

        def unsent_only() -> None:
            # A claim left by a crash may have been delivered meanwhile by a running serve:
            # look again, under the lock the relay holds while it records "sent" and
            # removes the entry (so a prompt is either still queued or marked sent here).
            sent = states(ctx, month)
            door.queue_many(
                ctx, [(entry, checked) for pid, entry, checked in entries if sent.get(pid) != SENT]
            )

        ctx.store.exclusively(unsent_only)
    crash_point("prompts-after-first-enqueue")
    append_lines(journal, [{"p": p.id, "s": QUEUED} for p, _ in messages])
    log.info("prompts queued month=%s count=%d", month, len(messages))
    return len(messages)


def send_due(ctx: Context, now: datetime) -> int:
    """The scheduler's step: every library whose local time has reached this month's hour."""
    total = 0
    for library in ctx.config.libraries:
        month = due_month(library, ctx.config.prompts, now)
        if (
            month is None
            or ctx.config.prompts.topic_for(month, partnership_of(ctx.config, library.id)) is None
        ):
            continue
        total += send_month(ctx, month, eligible(ctx, {library.id}))
    return total


def next_prompt(config: Config, library: Library, now: datetime) -> tuple[datetime, str] | None:
    """When the library's next topic email goes out (local time) and its subject."""
    local = now.astimezone(ZoneInfo(library.timezone))
    year, month = local.year, local.month
    partnership = partnership_of(config, library.id)
    for _ in range(13):
        moment = local.replace(
            year=year,
            month=month,
            day=config.prompts.day,
            hour=config.prompts.hour,
            minute=0,
            second=0,
            microsecond=0,
        )
        topic = config.prompts.topic_for(f"{year:04d}-{month:02d}", partnership)
        if moment > local and topic is not None:
            return moment, _pick(topic.subject, [library.language, "en"])[1]
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def missing_languages(config: Config, participants: list[Participant]) -> list[str]:
    """For `config check`: topics lacking a language that their participants read."""
    problems = []
    for topic in config.prompts.topics:
        readers = [
            p
            for p in participants
            if not topic.partnership or partnership_of(config, p.library) == topic.partnership
        ]
        languages = sorted({p.language.split("-")[0] for p in readers})
        for language in languages:
            if language not in topic.subject or language not in topic.body:
                problems.append(
                    f"prompts.topics month {topic.month}"
                    f"{' for ' + topic.partnership if topic.partnership else ''}: "
                    f"no text in {language!r}, which participants read"
                )
    return problems
