"""Staff newsletter: posts to `newsletter@` collected per partnership, sent as digests.

A post is kept as received in the spool and listed in `<data_dir>/newsletter/posts.jsonl`.
On the configured schedule (weekly or monthly, at the receiving library's local hour) each
library of a partnership gets one digest of every post its partners made since the last one,
as a MIME digest (RFC 2046 `multipart/digest` of `message/rfc822` parts, after a contents
list; attachments kept) or, per staff member's choice, as plain text in the RFC 1153 layout.
Digests carry volume (one per calendar year) and issue numbers, are archived under
`<data_dir>/newsletter/archive/`, and a period with no posts sends nothing.

Posts are not masked (staff write as themselves) but are rebuilt through the same scrubbing
as letters, so their HTML is sanitized and pictures, recordings, videos and PDFs lose their
metadata; a file no cleaner knows is kept as sent (`STAFF_POLICY`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from relay.config import Library, NewsletterSettings, Partnership, Staff
from relay.context import Context
from relay.outbox import DigestIssue, door
from relay.scrub import ScrubPolicy, scrub_letter
from relay.store import now_iso
from relay.store.files import append_lines, read_lines, write_atomic
from relay.store.records import DigestState

log = logging.getLogger("relay")

# Staff write to staff as themselves: a file no cleaner knows (a Word newsletter) is kept as
# sent rather than lost; pictures, recordings, videos and PDFs are cleaned as in letters.
STAFF_POLICY = ScrubPolicy(
    allowed_types=("*/*",),
    max_attachment_bytes=20 * 1024 * 1024,
    max_attachments=20,
    uncleanable_files="keep",
)


@dataclass(frozen=True)
class Post:
    number: int
    spool: str
    library: str
    author: str
    author_name: str
    subject: str
    at: str


def _folder(ctx: Context) -> Path:
    folder = ctx.config.relay.data_dir / "newsletter"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def posts(ctx: Context) -> list[Post]:
    return [
        Post(**{k: line[k] for k in Post.__dataclass_fields__})
        for line in read_lines(_folder(ctx) / "posts.jsonl")
    ]


def add_post(ctx: Context, spool_id: str, library: Library, author: Staff, subject: str) -> Post:
    def append() -> Post:
        # Numbered by position: counting and appending must not interleave with a CLI.
        number = len(posts(ctx)) + 1
        post = Post(number, spool_id, library.id, author.email, author.name, subject, now_iso())
        append_lines(_folder(ctx) / "posts.jsonl", [post.__dict__])
        return post

    post = ctx.store.exclusively(append)
    ctx.store.audit("newsletter-post", post=post.number, by=author.email)
    log.info("newsletter post=%d library=%s", post.number, library.id)
    return post


# --- when ---------------------------------------------------------------------------------


def last_scheduled(settings: NewsletterSettings, library: Library, now: datetime) -> datetime:
    """The latest scheduled digest time at or before `now`, in the library's time zone."""
    local = now.astimezone(ZoneInfo(library.timezone))

    def at_hour(day: datetime) -> datetime:
        return day.replace(hour=settings.hour, minute=0, second=0, microsecond=0)

    if settings.schedule == "weekly":
        days_back = (local.weekday() - settings.weekday) % 7
        candidate = at_hour(local - timedelta(days=days_back))
        return candidate if candidate <= local else candidate - timedelta(days=7)
    candidate = at_hour(local.replace(day=settings.day))
    if candidate <= local:
        return candidate
    previous_month = local.replace(day=1) - timedelta(days=1)
    return at_hour(previous_month.replace(day=settings.day))


def next_digest(settings: NewsletterSettings, library: Library, now: datetime) -> datetime:
    """The next scheduled digest time after `now`, in the library's time zone."""
    last = last_scheduled(settings, library, now)
    if settings.schedule == "weekly":
        return last + timedelta(days=7)
    following = (last.replace(day=28) + timedelta(days=4)).replace(day=settings.day)
    return following


def due(settings: NewsletterSettings, library: Library, now: datetime, last: str | None) -> bool:
    """Is a digest due at `now`, the previous one sent at `last` (ISO)? A run missed while the
    relay was down is caught up, not skipped."""
    scheduled = last_scheduled(settings, library, now)
    return last is None or datetime.fromisoformat(last) < scheduled


# --- building -----------------------------------------------------------------------------


def _post_message(ctx: Context, post: Post) -> EmailMessage:
    clean = scrub_letter(ctx.spool.original(post.spool), STAFF_POLICY)
    library = ctx.config.library(post.library)
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(
        f"{post.author_name} ({library.name if library else post.library})", addr_spec=post.author
    )
    message["Subject"] = clean.subject or post.subject
    message["Date"] = format_datetime(datetime.fromisoformat(post.at))
    message.set_content(clean.text or "")
    if clean.html:
        message.add_alternative(clean.html, subtype="html")
    for attachment in clean.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def _title(ctx: Context, volume: int, issue: int) -> str:
    return f"{ctx.config.newsletter.name} Digest, Vol {volume}, Issue {issue}"


def mime_digest(
    ctx: Context, items: list[tuple[Post, EmailMessage]], volume: int, issue: int, contents: str
) -> MIMEMultipart:
    outer = MIMEMultipart("mixed", policy=SMTP)
    outer.attach(MIMEText(contents, "plain", "utf-8", policy=SMTP))
    digest = MIMEMultipart("digest", policy=SMTP)
    for _, message in items:
        digest.attach(MIMEMessage(message, policy=SMTP))
    outer.attach(digest)
    return outer


def rfc1153_digest(
    ctx: Context,
    items: list[tuple[Post, EmailMessage]],
    volume: int,
    issue: int,
    contents: str,
    date: datetime,
) -> str:
    """Plain text in the RFC 1153 layout: header, topics, 70 dashes, messages separated by
    30 dashes, and the closing line with asterisks."""
    name = ctx.config.newsletter.name
    lines = [
        f"{name} Digest    {format_datetime(date)}    Volume {volume} : Issue {issue}",
        "",
        contents.rstrip(),
        "",
        "-" * 70,
        "",
    ]
    for index, (_, message) in enumerate(items):
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        lines += [
            f"Date: {message['Date']}",
            f"From: {message['From']}",
            f"Subject: {message['Subject']}",
            "",
            text.rstrip(),
            "",
        ]
        lines += ["-" * 30, ""] if index < len(items) - 1 else []
    trailer = f"End of {name} Digest V{volume} #{issue}"
    lines += ["-" * 30, "", trailer, "*" * len(trailer), ""]
    return "\n".join(lines)


# --- sending ------------------------------------------------------------------------------


def send_digest(
    ctx: Context,
    partnership: Partnership,
    library: Library,
    now: datetime,
    *,
    dry_run: bool = False,
) -> int:
    """One digest of the partners' new posts to `library`'s staff; returns posts included."""
    state = ctx.store.digest_state(partnership.id, library.id)
    fresh = [
        p
        for p in posts(ctx)
        if p.number > state.last_post
        and p.library != library.id
        and p.library in partnership.libraries
    ]
    if not fresh or dry_run:
        return len(fresh)
    year = now.year
    volume = state.volume + (1 if state.year != year else 0)
    issue = state.issue + 1 if state.year == year else 1
    items = [(post, _post_message(ctx, post)) for post in fresh]
    for member in library.staff:
        _send_one(ctx, partnership, library, member, items, volume, issue, now)
    sent = DigestState(fresh[-1].number, volume, issue, year, now.isoformat())
    ctx.store.set_digest_state(partnership.id, library.id, sent)
    ctx.store.audit(
        "digest",
        partnership=partnership.id,
        library=library.id,
        volume=volume,
        issue=issue,
        posts=[p.number for p in fresh],
    )
    log.info(
        "digest partnership=%s library=%s volume=%d issue=%d posts=%d",
        partnership.id,
        library.id,
        volume,
        issue,
        len(fresh),
    )
    return len(fresh)


def _send_one(
    ctx: Context,
    partnership: Partnership,
    library: Library,
    member: Staff,
    items: list[tuple[Post, EmailMessage]],
    volume: int,
    issue: int,
    now: datetime,
) -> None:
    contents = ctx.templates.render(
        "email",
        member.language,
        "digest_contents.txt",
        posts=[p for p, _ in items],
        library_name=library.name,
        title=_title(ctx, volume, issue),
        program_name=ctx.config.relay.program_name,
    )
    if member.digest == "text":
        text = rfc1153_digest(ctx, items, volume, issue, contents, now)
        message: MIMEText | MIMEMultipart = MIMEText(text, "plain", "utf-8", policy=SMTP)
    else:
        message = mime_digest(ctx, items, volume, issue, contents)
    domain = ctx.config.relay.domain
    message["From"] = str(Address(ctx.config.newsletter.name, addr_spec=f"newsletter@{domain}"))
    message["To"] = str(Address(member.name, addr_spec=member.email))
    message["Subject"] = _title(ctx, volume, issue)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=domain)
    message["List-Id"] = f"{ctx.config.newsletter.name} <newsletter.{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    raw = message.as_bytes()
    archive = _folder(ctx) / "archive" / partnership.id / library.id
    archive.mkdir(parents=True, exist_ok=True)
    suffix = "txt" if member.digest == "text" else "eml"
    path = archive / f"v{volume}-{issue:03d}.{suffix}"
    if not path.exists():
        write_atomic(path, raw)
    reader = hashlib.sha256(member.email.encode()).hexdigest()[:10]
    item = f"digest-{partnership.id}-{library.id}-v{volume}-{issue}-{reader}"
    door.queue(ctx, item, raw, DigestIssue(), to=member.email, what="a digest")


def send_due(
    ctx: Context,
    now: datetime,
    *,
    force: bool = False,
    partnership_id: str | None = None,
    dry_run: bool = False,
) -> dict[str, int]:
    sent: dict[str, int] = {}
    for partnership in ctx.config.partnerships:
        if partnership_id not in (None, partnership.id):
            continue
        for library_id in partnership.libraries:
            library = ctx.config.library(library_id)
            if library is None:
                continue
            state = ctx.store.digest_state(partnership.id, library.id)
            if force or due(ctx.config.newsletter, library, now, state.sent_at):
                count = send_digest(ctx, partnership, library, now.astimezone(UTC), dry_run=dry_run)
                if count:
                    sent[f"{partnership.id}/{library.id}"] = count
    return sent
