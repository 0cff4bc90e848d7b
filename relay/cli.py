"""The `penpal-relay` command.

Every mistake a person can make (a bad argument, an unknown letter, a config error) ends in
one line on stderr naming what is wrong, and exit status 1; argparse usage errors exit 2.
No traceback reaches the person at the keyboard.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from relay import (
    backup,
    closing,
    dkim_signing,
    guardians,
    letters,
    matching,
    notices,
    participants,
    quiet,
    reports,
    rights,
    welcomes,
)
from relay import config as config_module
from relay.config import Config
from relay.context import Context, open_context
from relay.errors import AlreadyEnrolled, ConfigError, InvalidField, NotFound, UserError
from relay.letters.previews import DeliveredFile, delivered_files
from relay.logfile import setup_logging
from relay.privileges import become_data_owner
from relay.schedule import digests, prompts, retention, run_purge, run_scheduled
from relay.store import Store, version
from relay.store.files import write_atomic
from relay.store.records import Letter, Participant
from relay.web.pages import LANGUAGES, Pages

PROG = "penpal-relay"
REFERENCE = "id, masked address or real email"
# How each field a participant error names was given on the command line.
FIELD_FLAGS = {
    "email": "--email",
    "library": "--library",
    "name": "--name",
    "language": "--language",
    "guardian": "--guardian",
    "guardian_name": "--guardian-name",
    "birth_year": "--birth-year",
    "age_band": "--age-band",
    "interests": "--interests",
    "members": "--members",
    "kind": "--group",
    "edit": "--edit",
    "file": "FILE",
    "by": "--by",
    "output": "--output",
}


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _load(args: argparse.Namespace) -> Config:
    """The configuration, read once per command (as root: before becoming the data owner)."""
    loaded = getattr(args, "loaded_config", None)
    if not isinstance(loaded, Config):
        loaded = args.loaded_config = config_module.load(config_module.locate(args.config))
    return loaded


# Commands that never open the data folder as its owner: `config init` writes no data,
# `restore` replaces the folder (as root: it may need to rename it aside in /var/lib).
STAY_ROOT = {("config", "init"), ("restore", None)}


def _as_data_owner(args: argparse.Namespace) -> None:
    """Run as root on a data folder owned by the relay's user: become that user first."""
    if os.geteuid() != 0 or (args.command, getattr(args, "action", None)) in STAY_ROOT:
        return
    try:
        config = _load(args)
    except ConfigError:
        return  # the command itself reports it
    become_data_owner(config.relay.data_dir)


def _context(args: argparse.Namespace) -> Context:
    config = _load(args)
    ctx = open_context(config)  # first: a store of a newer relay is refused, nothing written
    # Decisions made here are logged beside serve's own lines (only to the log file).
    setup_logging(config, to_stderr=False)
    return ctx


# --- serve and config ----------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from relay.app import serve

    path = config_module.locate(args.config)
    if args.config is None and not path.exists():
        raise UserError(
            f"no {path} here: run `{PROG} config init` to write the commented default, "
            "or pass --config PATH"
        )
    config = _load(args)
    version.refuse_newer(config.relay.data_dir / "store")  # before the log file is opened
    setup_logging(config, to_stderr=True)
    for warning in config.warnings:
        logging.getLogger("relay").warning("config: %s", warning)
    serve(path, config)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    path = config_module.locate(args.config)
    try:
        config = _load(args)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 1
    print(
        f"{path}: OK ({len(config.libraries)} libraries, {len(config.partnerships)} "
        f"partnerships, domain {config.relay.domain})"
    )
    for warning in config.warnings:
        print(f"{path}: warning: {warning}")
    store_folder = config.relay.data_dir / "store"
    enrolled = Store(store_folder).participants() if store_folder.exists() else []
    for warning in prompts.missing_languages(config, enrolled):
        print(f"{path}: warning: {warning}")
    if store_folder.exists():
        for line in _retention_forecast(open_context(config), datetime.now(UTC)):
            print(f"{path}: retention: {line}")
    return 0


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _retention_forecast(ctx: Context, now: datetime) -> list[str]:
    """What the next purges remove, kind by kind (`config check`)."""
    settings = ctx.config.retention
    found = retention.plan(ctx, now)
    day = retention.next_purge(ctx, now)
    when = "today" if day == now.astimezone(UTC).date() else f"on {day.isoformat()}"
    originals, letters, tokens = found.forecast_originals, found.forecast_letters, found.tokens
    expired_links = sum(
        (tokens.grants, tokens.commands, tokens.consent_requests, tokens.sign_in_links)
    )
    days = _n(settings.originals_days, "day", "days")
    months = _n(settings.letters_months, "month", "months")
    lines = [
        f"{_n(originals.due + len(found.failed), 'raw original', 'raw originals')} older than "
        f"{days} will be removed at the next purge ({when})",
        f"{_n(letters.due, 'letter', 'letters')} older than {months} will be reduced to "
        f"their dates at the next purge ({when})",
        f"{_n(len(found.set_aside), 'set-aside message', 'set-aside messages')} older "
        f"than {months} will be removed at the next purge ({when})",
        f"{_n(expired_links, 'expired link', 'expired links')} and "
        f"{_n(tokens.counters, 'old daily counter', 'old daily counters')} will be removed "
        f"at the next purge ({when})",
    ]
    leaving = found.forecast_participants
    if settings.left_months:
        left = _n(settings.left_months, "month", "months")
        lines.append(
            f"{_n(leaving.due, 'participant', 'participants')} who left more than {left} ago "
            f"will be erased at the next purge ({when})"
        )
    else:
        lines.append("participants who left are kept until staff erase them (left_months = 0)")
    if originals.next_day:
        reach = _n(originals.next_count, "raw original reaches", "raw originals reach")
        lines.append(f"{reach} {days} on {originals.next_day.isoformat()}")
    if letters.next_day:
        reach = _n(letters.next_count, "letter reaches", "letters reach")
        lines.append(f"{reach} {months} on {letters.next_day.isoformat()}")
    if leaving.next_day:
        goes = _n(leaving.next_count, "participant who left is", "participants who left are")
        lines.append(f"{goes} erased on {leaving.next_day.isoformat()}")
    awaited = found.forecast_unconsented
    if settings.no_consent_months:
        waited = _n(settings.no_consent_months, "month", "months")
        lines.append(
            f"{_n(awaited.due, 'participant', 'participants')} whose guardian has not consented "
            f"in {waited} will be erased at the next purge ({when})"
        )
        if awaited.next_day:
            goes = _n(awaited.next_count, "participant is", "participants are")
            lines.append(
                f"{goes} erased on {awaited.next_day.isoformat()} unless a guardian consents"
            )
    else:
        lines.append(
            "participants whose guardian has not consented are kept until staff erase them "
            "(no_consent_months = 0)"
        )
    if tokens.next_expiry is not None:
        expires = datetime.fromtimestamp(tokens.next_expiry, UTC).date().isoformat()
        lines.append(f"the next reply or sign-in link expires on {expires}")
    return lines


def cmd_config_init(args: argparse.Namespace) -> int:
    target = Path(args.config or "config.toml")
    if target.exists() and not args.force:
        raise UserError(f"{target} exists; use --force to replace it")
    source = config_module.shipped_default()
    if source is None:
        raise UserError("the shipped config.toml is missing from this installation")
    shutil.copyfile(source, target)
    print(f"wrote {target}; edit it, then run `{PROG} config check`")
    return 0


# --- dkim ----------------------------------------------------------------------------------


def _print_record(record: dkim_signing.DnsRecord, domain: str) -> None:
    print(f"Publish this TXT record in the DNS of {domain}:")
    print(f"  name:  {record.name}")
    print(f"  value: {record.value}")
    print("In a zone file (the value cut into strings of at most 255 characters):")
    print(record.zone_line())


def cmd_dkim_keygen(args: argparse.Namespace) -> int:
    config = _load(args)
    selector = (args.selector or config.dkim.selector).lower()
    problem = config_module.selector_problem(selector)
    if problem:
        raise UserError(f"--selector: {problem}")
    path = dkim_signing.key_path(config, selector)
    pem = dkim_signing.new_key(args.bits)
    dkim_signing.write_key(path, pem, replace=args.force)
    print(f"wrote {path} ({args.bits}-bit RSA, readable by this user only)")
    _print_record(dkim_signing.dns_record(pem, selector, config.relay.domain), config.relay.domain)
    if selector != config.dkim.selector:
        print(
            f'Once the record answers, set [dkim] selector = "{selector}" in {config.path}; '
            "keep the old record published for a week for mail still on its way."
        )
    else:
        print(
            "A running relay signs with this key from its next reload (SIGHUP) on; mail "
            "signed with it fails DKIM until the record above answers."
        )
    return 0


def cmd_dkim_record(args: argparse.Namespace) -> int:
    config = _load(args)
    if not config.dkim.sign:
        raise UserError("[dkim] sign = false: this relay signs nothing, so has no record")
    pem = dkim_signing.ensure_key(config.dkim.key_file)  # made here if serve never ran
    record = dkim_signing.dns_record(pem, config.dkim.selector, config.relay.domain)
    _print_record(record, config.relay.domain)
    return 0


# --- participants --------------------------------------------------------------------------


def _participant_json(participant: Participant) -> dict[str, Any]:
    return participant.to_dict() | {"pals": list(participant.pals)}


def _details(args: argparse.Namespace) -> participants.Details:
    """The enrolment details given on the command line; None for each one not given."""
    return participants.Details(
        birth_year=args.birth_year,
        age_band=args.age_band,
        interests=args.interests,
        guardian_name=getattr(args, "guardian_name", None),
        guardian_copies=getattr(args, "guardian_copies", None),
        kind="group" if getattr(args, "group", False) else None,
        members=args.members,
    )


def cmd_participants_add(args: argparse.Namespace) -> int:
    ctx = _context(args)
    participant = participants.enroll(
        ctx,
        args.library,
        args.name,
        args.email,
        language=args.language,
        guardian=args.guardian,
        details=_details(args),
    )
    if args.json:
        _print_json(_participant_json(participant))
    else:
        print(participant.masked)
        if participant.is_group:
            print(f"a group of {_n(len(participant.members), 'member', 'members')}")
        if participant.consent == "pending":
            print(f"under {args.library}'s consent age: waiting for the guardian's consent")
    return 0


def _age(participant: Participant) -> str:
    if participant.birth_year:
        return f"b.{participant.birth_year}"
    return participant.age_band or "-"


def _kind(participant: Participant) -> str:
    if participant.is_group:
        return f"group of {len(participant.members)}"
    return "person"


def cmd_participants_list(args: argparse.Namespace) -> int:
    ctx = _context(args)
    found = [p for p in ctx.store.participants() if args.library in (None, p.library)]
    if args.json:
        _print_json([_participant_json(p) for p in found])
        return 0
    for p in found:
        pals = ", ".join(p.pals) or "-"
        consent = f" consent: {p.consent}" if p.consent else ""
        print(
            f"{p.id:>6}  {p.library:<12} {p.name:<16} {p.masked:<36} {p.status:<7} "
            f"{_kind(p):<16} age: {_age(p):<7} pals: {pals}{consent}"
        )
    return 0


def cmd_participants_show(args: argparse.Namespace) -> int:
    ctx = _context(args)
    p = participants.find(ctx, args.participant)
    if args.json:
        _print_json(_participant_json(p))
        return 0
    guardian = f"{p.guardian_name} <{p.guardian}>".strip() if p.guardian else "-"
    copies = "" if not p.guardian else (" (copies)" if p.guardian_copies else " (no copies)")
    # How consent was given; a withdrawal's own time is shown without it.
    given_by = p.consent_method if p.consent == "given" else ""
    for label, value in (
        ("id", p.id),
        ("library", p.library),
        ("name", p.name),
        ("kind", _kind(p)),
        ("members", ", ".join(p.members) or "-"),
        ("email", p.email),
        ("masked", p.masked),
        ("language", p.language),
        ("status", p.status + (f" ({p.pause_reason})" if p.pause_reason else "")),
        ("born", str(p.birth_year) if p.birth_year else "-"),
        ("age band", p.age_band or "-"),
        ("interests", ", ".join(p.interests) or "-"),
        ("guardian", guardian + copies),
        ("consent", " ".join(x for x in (p.consent, p.consent_at, given_by) if x) or "-"),
        ("pals", ", ".join(p.pals) or "-"),
    ):
        print(f"{label + ':':<11}{value}")
    return 0


def cmd_participants_edit(args: argparse.Namespace) -> int:
    ctx = _context(args)
    details = _details(args)
    if all(value is None for value in vars(details).values()):
        raise UserError("give at least one of --birth-year, --age-band, --interests, --members")
    found = participants.find(ctx, args.participant)
    try:
        participant = participants.edit(ctx, found, details)
    except InvalidField as error:
        if error.field != "guardian":
            raise
        # `edit` has no --guardian: say which command sets one.
        raise UserError(
            f"{found.id}: {error.problem}; set one first with "
            f"`participants guardian {found.id} EMAIL`"
        ) from None
    print(f"{participant.id} ({participant.masked}): details saved")
    if participant.consent == "pending":
        print("under the library's consent age: waiting for the guardian's consent")
    return 0


def cmd_participants_status(args: argparse.Namespace) -> int:
    ctx = _context(args)
    change = {
        "pause": participants.pause,
        "resume": participants.resume,
        "leave": participants.leave,
    }[args.action]
    participant = change(ctx, participants.find(ctx, args.participant))
    print(f"{participant.id} ({participant.masked}) is {participant.status}")
    return 0


def cmd_participants_guardian(args: argparse.Namespace) -> int:
    ctx = _context(args)
    participant = participants.find(ctx, args.participant)
    if args.clear == bool(args.email):
        raise UserError("give either a guardian's address or --clear")
    if args.clear:
        participants.clear_guardian(ctx, participant)
        print(f"{participant.id} ({participant.masked}) has no guardian now")
        return 0
    changed = participants.set_guardian(
        ctx, participant, args.email, name=args.guardian_name, copies=not args.no_copies
    )
    if changed.guardian_copies:
        print(f"{participant.id} ({participant.masked}): the guardian gets a copy of every letter")
    else:
        print(f"{participant.id} ({participant.masked}): guardian saved; no copies of letters")
    return 0


def _asking(ctx: Context, participant: Participant, by: str | None, *, erasing: bool) -> str:
    """`--by` (required): a staff member of the participant's library (a coordinator, to
    erase), named in the audit log and, for an erasure, in the moderators' notice."""
    role = "a coordinator" if erasing else "staff"
    if not by:
        raise InvalidField("by", f"say who asks for this ({role} of {participant.library})")
    library = ctx.config.library(participant.library)
    member = library.staff_member(by) if library else None
    if member is None or (erasing and not member.is_coordinator):
        raise InvalidField("by", f"{by} is not {role} of {participant.library} in the config")
    return member.email


def cmd_participants_export(args: argparse.Namespace) -> int:
    ctx = _context(args)
    participant = participants.find(ctx, args.participant)
    by = _asking(ctx, participant, args.by, erasing=False)
    output = Path(args.output or f"{participant.id}-data.zip")
    if output.is_dir():
        raise InvalidField("output", f"{output} is a folder; give a file name ending in .zip")
    if not output.parent.is_dir():
        raise InvalidField("output", f"no folder {output.parent}")
    data = rights.export(ctx, participant, by=by, handed=False)
    try:
        write_atomic(output, data)
    except OSError as error:
        raise InvalidField("output", f"cannot write {output}: {error.strerror}") from None
    rights.export_handed_over(ctx, participant, by=by, via="cli")
    print(f"wrote {output}: everything held about {participant.id} ({participant.masked})")
    return 0


def _confirm(question: str, nothing_done: str) -> None:
    """Ask before a change that cannot be undone: anything but "yes" (or no terminal to
    answer from) stops the command with `nothing_done` and how to go on."""
    try:
        answer = input(question)
    except EOFError:
        answer = ""
    if answer.strip().lower() != "yes":
        raise UserError(f"{nothing_done} (answer yes, or pass --yes)")


def cmd_participants_erase(args: argparse.Namespace) -> int:
    ctx = _context(args)
    participant = participants.find(ctx, args.participant)
    by = _asking(ctx, participant, args.by, erasing=True)
    if not args.yes:
        preview = rights.erasure_preview(ctx, participant)
        print(
            f"Erase {participant.id} ({participant.name}, {participant.masked}, "
            f"{participant.library}): their record, guardian, {preview.written} letters "
            f"written and {preview.received} received ({preview.waiting} not sent yet, "
            "which will not be), their spool and Maildir copies. This cannot be undone."
        )
        _confirm("Type yes to erase: ", "nothing erased")
    erased = rights.erase(ctx, participant, by=by)
    print(
        f"erased {erased.participant}: {erased.letters} letters kept as figures only, "
        f"{erased.files} files removed"
    )
    return 0


def cmd_participants_consent(args: argparse.Namespace) -> int:
    ctx = _context(args)
    participant = participants.find(ctx, args.participant)
    who = f"{participant.id} ({participant.masked})"
    by = _staff_of(ctx, participant, args.by) if args.by else ""
    if args.paper:
        if not by:
            raise UserError("--by: say which staff member received the consent on paper")
        given = guardians.give(ctx, participant, method="paper", by=by)
        waiting = len(guardians.waiting_letters(ctx, given))
        print(
            f"{who}: consent received on paper is recorded; {waiting} held letters may be approved"
        )
    elif args.withdraw:
        if not by:  # without it, the record would read as the guardian's own withdrawal
            raise UserError("--by: say which staff member recorded the withdrawal")
        withdrawn = guardians.withdraw(ctx, participant, by=by)
        print(f"{who}: consent withdrawn; {withdrawn.id} is {withdrawn.status}")
    else:
        guardians.ask(ctx, participant, by=by)
        print(f"{who}: the consent request was sent to the guardian again")
    return 0


def _staff_of(ctx: Context, participant: Participant, email: str) -> str:
    library = ctx.config.library(participant.library)
    member = library.staff_member(email) if library else None
    if member is None:
        raise UserError(f"--by: {email} is not listed as staff of {participant.library}")
    return member.email


def cmd_pair(args: argparse.Namespace) -> int:
    ctx = _context(args)
    first, second = participants.find(ctx, args.a), participants.find(ctx, args.b)
    participants.pair(ctx, first, second)
    print(f"paired {first.id} ({first.masked}) with {second.id} ({second.masked})")
    if args.welcome:
        if welcomes.welcome(ctx, first, second, via="cli"):
            print("welcome emails queued")
        else:
            print(f"no welcome now: {welcomes.not_sent(ctx, first, second)}")
    return 0


def cmd_unpair(args: argparse.Namespace) -> int:
    ctx = _context(args)
    first, second = participants.find(ctx, args.a), participants.find(ctx, args.b)
    participants.unpair(ctx, first, second)
    print(f"unpaired {first.id} ({first.masked}) and {second.id} ({second.masked})")
    return 0


# --- quiet pairs ---------------------------------------------------------------------------


def _quiet_json(pair: quiet.QuietPair) -> dict[str, Any]:
    def who(p: Participant) -> dict[str, str]:
        return {"id": p.id, "name": p.name, "masked": p.masked, "library": p.library}

    return {
        "pair": pair.key,
        "first": who(pair.first),
        "second": who(pair.second),
        "since": pair.since.isoformat(),
        "weeks": pair.weeks,
        "owing": [p.id for p in pair.owing],
        "last_letter": pair.last_letter,
        "nudged_at": pair.nudged_at.isoformat() if pair.nudged_at else None,
    }


def cmd_quiet(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if args.library and ctx.config.library(args.library) is None:
        raise UserError(f"--library: no library {args.library!r} in the config")
    found = quiet.read(ctx, datetime.now(UTC), library_id=args.library)
    if args.json:
        _print_json([_quiet_json(pair) for pair in found])
        return 0
    weeks = ctx.config.matching.quiet_weeks
    print(f"{len(found)} quiet pair(s): no letter either way for {weeks} weeks or more")
    for pair in found:
        owing = "nobody wrote yet" if len(pair.owing) > 1 else f"{pair.owing[0].name} owes a letter"
        nudged = f"; nudged {pair.nudged_at.date()}" if pair.nudged_at else ""
        print(
            f"  {pair.key}  {_who(pair.first)} and {_who(pair.second)}: "
            f"quiet {pair.weeks} weeks since {pair.since.date()}; {owing}{nudged}"
        )
    return 0


def cmd_quiet_nudge(args: argparse.Namespace) -> int:
    ctx = _context(args)
    libraries = ctx.config.staff_libraries(args.by)
    if not libraries:
        raise UserError(f"--by: {args.by} is not listed as staff of any library")
    # As on the dashboard: moderators and coordinators (who pair and unpair) nudge.
    libraries = tuple((lib, m) for lib, m in libraries if m.is_moderator or m.is_coordinator)
    if not libraries:
        raise UserError(f"--by: {args.by} is neither a moderator nor a coordinator")
    theirs: quiet.NotOurs | None = None
    for library, member in libraries:
        try:
            pair = quiet.nudge(ctx, args.pair, library.id, by=member.email, via="cli")
        except NotFound:
            continue
        except quiet.NotOurs as refused:  # the partner library's patron owes: theirs to nudge
            theirs = refused
            continue
        names = " and ".join(_who(p) for p in pair.owing)
        print(f"nudged {pair.key}: a kind email to {names}")
        return 0
    if theirs is not None:
        raise theirs
    raise NotFound(f"{args.pair}: no quiet pair with a participant of your library")


# --- match ---------------------------------------------------------------------------------


def _partnership(ctx: Context, wanted: str) -> config_module.Partnership:
    found = next((p for p in ctx.config.partnerships if p.id == wanted), None)
    if found is None:
        known = ", ".join(p.id for p in ctx.config.partnerships) or "none"
        raise UserError(f"--partnership: no partnership {wanted!r} (known: {known})")
    return found


def _staff_of_partnership(ctx: Context, partnership: config_module.Partnership, email: str) -> str:
    for library_id in partnership.libraries:
        library = ctx.config.library(library_id)
        member = library.staff_member(email) if library else None
        if member is not None:
            return member.email
    raise UserError(f"--by: {email} is not listed as staff of {partnership.id}'s libraries")


def _who(participant: Participant) -> str:
    return f"{participant.id} {participant.name} <{participant.masked}>"


def _pair_json(pair: matching.ProposedPair) -> dict[str, Any]:
    return {
        "participants": [pair.first.id, pair.second.id],
        "names": [pair.first.name, pair.second.name],
        "masked": [pair.first.masked, pair.second.masked],
        "libraries": [pair.first.library, pair.second.library],
        "writes_to_two": pair.writes_to_two or None,
        "writes_together_with": pair.teammate.id if pair.teammate else None,
        "explanation": matching.explain(pair),
    }


def _proposal_json(proposal: matching.Proposal) -> dict[str, Any]:
    gap = proposal.settings.max_age_gap
    return {
        "partnership": proposal.partnership,
        "max_age_gap": gap,
        "uneven": proposal.settings.uneven,
        "pairs": [_pair_json(pair) for pair in proposal.pairs],
        "unmatched": [
            {
                "participant": left.participant.id,
                "name": left.participant.name,
                "masked": left.participant.masked,
                "library": left.participant.library,
                "reason": left.reason,
                "explanation": matching.why_not(left, gap),
            }
            for left in proposal.unmatched
        ],
    }


def _pair_text(pair: matching.ProposedPair) -> str:
    first, second = (_who(pair.first), _who(pair.second))
    if pair.teammate is not None:  # "together": the teammate is named beside the other
        with_mate = f" with {pair.teammate.id} {pair.teammate.name}"
        if pair.first.library == pair.teammate.library:
            first += with_mate
        else:
            second += with_mate
    return f"{first}  +  {second}"


def _print_proposal(proposal: matching.Proposal) -> None:
    gap = proposal.settings.max_age_gap
    print(
        f"{proposal.partnership}: {_n(len(proposal.pairs), 'pair', 'pairs')} proposed, "
        f"{len(proposal.unmatched)} without a pal (max_age_gap {gap}, "
        f"uneven {proposal.settings.uneven})"
    )
    for pair in proposal.pairs:
        print(f"  {_pair_text(pair)}")
        print(f"      {matching.explain(pair)}")
    if proposal.unmatched:
        print("without a pal:")
    for left in proposal.unmatched:
        print(f"  {_who(left.participant)}: {matching.why_not(left, gap)}")


def cmd_match(args: argparse.Namespace) -> int:
    ctx = _context(args)
    partnership = _partnership(ctx, args.partnership)
    if len(partnership.libraries) != 2:
        raise UserError(
            f"--partnership: {partnership.id} has {len(partnership.libraries)} libraries; "
            "match pairs the two libraries of a partnership"
        )
    by = _staff_of_partnership(ctx, partnership, args.by) if args.by else ""
    if args.json and not (args.dry_run or args.yes):
        raise UserError("--json: add --dry-run to see the proposal, or --yes to accept it")
    today = datetime.now(UTC).date()
    proposal = matching.propose(partnership, ctx.store.participants(), ctx.config.matching, today)
    if not args.json:
        _print_proposal(proposal)
    if args.dry_run or not proposal.pairs:
        if args.json:
            _print_json(_proposal_json(proposal) | _accepted_json(not args.dry_run, [], []))
        return 0
    if not args.yes:
        _confirm(
            f"Pair these {_n(len(proposal.pairs), 'pair', 'pairs')}? Type yes: ", "nothing paired"
        )
    made, skipped = participants.accept_matches(ctx, proposal, by=by)
    if args.json:
        _print_json(_proposal_json(proposal) | _accepted_json(True, made, skipped))
        return 0
    print(f"paired {_n(len(made), 'pair', 'pairs')}", end="")
    print(f"; {len(skipped)} not paired (changed since)" if skipped else "")
    for pair in made:
        print(f"  paired      {_pair_text(pair)}")
    for pair in skipped:
        print(f"  not paired  {_pair_text(pair)}")
    return 0


def _accepted_json(
    accepted: bool, made: list[matching.ProposedPair], skipped: list[matching.ProposedPair]
) -> dict[str, Any]:
    """What accepting did: the pairs made and those skipped as changed since the proposal."""
    if not accepted:
        return {"accepted": False}
    return {
        "accepted": True,
        "paired": [_pair_json(pair) for pair in made],
        "not_paired": [_pair_json(pair) for pair in skipped],
    }


# --- queue ---------------------------------------------------------------------------------


def cmd_queue_list(args: argparse.Namespace) -> int:
    ctx = _context(args)
    letters = ctx.store.queue(args.library)
    if args.json:
        _print_json([letter.summary() for letter in letters])
        return 0
    if not letters:
        print("no letters waiting")
    for letter in letters:
        marks = " SENDER-NOT-VERIFIED" if letter.sender_unverified else ""
        marks += f" flags={len(letter.flags)}" if letter.flags else ""
        marks += f" notes={len(letter.notes)}" if letter.notes else ""
        sender = f"{letter.sender_masked} ({letter.sender_library})"
        recipient = f"{letter.recipient_masked} ({letter.recipient_library})"
        print(f"{letter.id:>5}  {letter.received_at}  {sender} -> {recipient}", end="")
        print(f"  {letter.subject!r}{marks}")
    return 0


def _letter(ctx: Context, letter_id: int) -> Letter:
    letter = ctx.store.letter(letter_id)
    if letter is None:
        raise NotFound(f"letter {letter_id} not found")
    if not letter.sender:
        raise NotFound(f"letter {letter_id} was erased with its writer or pal; only its dates stay")
    return letter


SENDER_NOT_VERIFIED = (
    "SENDER NOT VERIFIED: we could not confirm this letter really comes from the writer's "
    "own email account; check with the family before approving."
)


_FILE_KINDS = {"audio": "recording", "text": "text file"}


def _file_line(file: DeliveredFile) -> str:
    kind = _FILE_KINDS.get(file.kind, file.kind)
    flags = f"  [check: {'; '.join(file.flags)}]" if file.flags else ""
    return f"{file.number}. {file.name} ({kind}, {file.size_text}){flags}"


def _file_json(file: DeliveredFile) -> dict[str, Any]:
    return {
        "number": file.number,
        "name": file.name,
        "kind": file.kind,
        "content_type": file.content_type,
        "size": file.size,
        "flags": list(file.flags),
    }


def cmd_queue_show(args: argparse.Namespace) -> int:
    ctx = _context(args)
    letter = _letter(ctx, args.id)
    clean = letters.as_delivered(ctx, letter)
    if args.json:
        _print_json(
            letter.summary()
            | {
                "text": clean.text,
                "html": clean.html,
                "files": [_file_json(f) for f in delivered_files(clean, previews=False)],
                "removed": [asdict(r) for r in letter.removed],
                "history": [asdict(step) for step in letter.history],
            }
        )
        return 0
    print(f"letter {letter.id}: {letter.status}")
    print(f"from:     {letter.sender_masked} ({letter.sender_library})")
    print(f"to:       {letter.recipient_masked} ({letter.recipient_library})")
    print(f"subject:  {letter.subject}")
    print(f"received: {letter.received_at}")
    if letter.decided_by:
        print(f"decided:  {letter.decided_at} by {letter.decided_by} {letter.reason}".rstrip())
    if letter.sender_unverified:
        print(f"flag:     {SENDER_NOT_VERIFIED}")
    if letter.sender_results:
        print(f"checked:  {letter.sender_results}")
    for flag in letter.flags:
        print(f"flag:     {flag.kind}: {flag.text!r}")
    for note in letter.notes:
        print(f"note:     {note}")
    for removal in letter.removed:
        print(f"removed:  {removal.detail}")
    for file in delivered_files(clean, previews=False):
        print(f"file:     {_file_line(file)}")
    print("--- as it will be delivered ---")
    print(clean.text if clean.text is not None else "(HTML only)\n" + (clean.html or ""))
    return 0


def _edited_text(source: str | None) -> str | None:
    """The text of `--edit FILE` ("-": standard input), or None without the option."""
    if source is None:
        return None
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidField("edit", f"cannot read {source}: {error}") from None
    if not text.strip():
        raise InvalidField("edit", f"{source} is empty; an edited letter needs its text")
    return text.replace("\r\n", "\n")


def cmd_queue_approve(args: argparse.Namespace) -> int:
    ctx = _context(args)
    edited = _edited_text(args.edit)
    letter = letters.approve(
        ctx, args.id, args.by, via="cli", edited_text=edited, redact=args.redact_flags
    )
    how = " with your edit" if edited is not None else ""
    if args.redact_flags:
        how += " with the flagged details removed"
    print(f"letter {letter.id} approved{how}; it is in the outbox")
    return 0


def cmd_queue_remove_file(args: argparse.Namespace) -> int:
    ctx = _context(args)
    name = letters.remove_file(ctx, args.id, args.by, args.file, via="cli")
    print(f"{name} removed from letter {args.id}; the letter stays held")
    return 0


def cmd_queue_reject(args: argparse.Namespace) -> int:
    ctx = _context(args)
    letter = letters.reject(ctx, args.id, args.by, args.reason, via="cli")
    print(f"letter {letter.id} rejected; the writer will be told why")
    return 0


def cmd_reminders_send(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if args.library and ctx.config.library(args.library) is None:
        raise UserError(f"--library: no library {args.library!r} in the config")
    reminded = notices.send_reminders(ctx, datetime.now(UTC), force=True, library_id=args.library)
    if not reminded:
        print("no letters waiting long enough and no quiet pairs to remind anyone of")
    for library_id, (count, silent) in reminded.items():
        pairs = f" and {silent} quiet pair(s)" if silent else ""
        print(f"{library_id}: reminded its moderators of {count} waiting letter(s){pairs}")
    return 0


def _month(text: str | None) -> str:
    if text is None:
        return datetime.now(UTC).strftime("%Y-%m")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise UserError(f"--month: expected YYYY-MM, not {text!r}")
    return text


def cmd_prompts_preview(args: argparse.Namespace) -> int:
    ctx = _context(args)
    month = _month(args.month)
    chosen = (
        [participants.find(ctx, args.participant)] if args.participant else prompts.eligible(ctx)
    )
    shown = 0
    for participant in chosen:
        topic = ctx.config.prompts.topic_for(
            month, prompts.partnership_of(ctx.config, participant.library)
        )
        if topic is None:
            continue
        shown += 1
        if not prompts.active_pals(participant, ctx.store.participant):
            print(f"=== {participant.id} {participant.name}: no active pal, so no prompt yet")
            continue
        prompt = prompts.render(ctx, participant, topic)
        print(
            f"=== {participant.id} {participant.name} ({participant.library}, "
            f"{prompt.language}): {prompt.subject}"
        )
        print(prompt.text)
    if not shown:
        print(f"no topic for {month} in the config ([[prompts.topics]])")
    return 0


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="",
        file=sys.stderr,
        flush=True,
    )
    if done >= total:
        print(file=sys.stderr)


def cmd_prompts_send(args: argparse.Namespace) -> int:
    ctx = _context(args)
    month = _month(args.month)
    count = prompts.send_month(
        ctx,
        month,
        prompts.eligible(ctx),
        dry_run=args.dry_run,
        progress=None if args.dry_run else _progress,
    )
    verb = "would queue" if args.dry_run else "queued"
    print(f"{verb} the {month} prompt for {count} participant(s); nobody gets it twice")
    return 0


def cmd_digest_send(args: argparse.Namespace) -> int:
    ctx = _context(args)
    known = {p.id for p in ctx.config.partnerships}
    if args.partnership and args.partnership not in known:
        raise UserError(
            f"--partnership: no partnership {args.partnership!r} "
            f"(known: {', '.join(sorted(known))})"
        )
    sent = digests.send_due(
        ctx, datetime.now(UTC), force=True, partnership_id=args.partnership, dry_run=args.dry_run
    )
    if not sent:
        print("no new posts: no digest sent")
    for where, count in sent.items():
        verb = "would send" if args.dry_run else "sent"
        print(f"{where}: {verb} a digest of {count} post(s)")
    return 0


def cmd_schedule_run(args: argparse.Namespace) -> int:
    ctx = _context(args)
    try:
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    except ValueError:
        raise UserError(
            f"--now: expected an ISO time such as 2027-01-01T09:00+13:00, not {args.now!r}"
        ) from None
    if now.tzinfo is None:
        raise UserError("--now: give a time zone offset (for example +00:00)")
    run_scheduled(ctx, now)
    run_purge(ctx, now)
    print(f"ran the work due at {now.isoformat()}")
    return 0


def _now(text: str | None) -> datetime:
    try:
        now = datetime.fromisoformat(text) if text else datetime.now(UTC)
    except ValueError:
        raise UserError(
            f"--now: expected an ISO time such as 2027-01-01T09:00+13:00, not {text!r}"
        ) from None
    if now.tzinfo is None:
        raise UserError("--now: give a time zone offset (for example +00:00)")
    return now


PURGED_WORDS = (
    ("originals", "raw original", "raw originals"),
    ("letters", "letter reduced to its dates", "letters reduced to their dates"),
    ("failed", "refused message", "refused messages"),
    ("set_aside", "set-aside message", "set-aside messages"),
    ("participants", "participant who left erased", "participants who left erased"),
    ("unconsented", "participant without consent erased", "participants without consent erased"),
    ("grants", "expired reply link", "expired reply links"),
    ("commands", "unconfirmed emailed command", "unconfirmed emailed commands"),
    ("consent_requests", "expired consent link", "expired consent links"),
    ("sign_in_links", "expired sign-in link", "expired sign-in links"),
    ("counters", "old daily counter", "old daily counters"),
    ("audit_entries", "audit entry without its free text", "audit entries without free text"),
)


def cmd_retention_run(args: argparse.Namespace) -> int:
    ctx = _context(args)
    purged = retention.purge(ctx, _now(args.now).astimezone(UTC), dry_run=args.dry_run)
    counts = purged.fields()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} " + ", ".join(_n(counts[key], one, many) for key, one, many in PURGED_WORDS))
    return 0


# --- program report ------------------------------------------------------------------------

REPORT_HELP = (
    "figures of the program for a board or a funder, without personal data: letters per "
    "month per library, time to approval, active pairs, reply rate, participants by age and "
    "language, prompts and the letters that followed them"
)


LANGUAGE_HELP = (
    "en, es or fr (default: the language of the partnership's first library, or en); the csv "
    "keeps its machine-readable keys"
)


def _month_flag(flag: str, text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise UserError(f"{flag}: expected YYYY-MM, not {text!r}")
    return text


def _report_wording(config: Config, partnership: str, language: str | None) -> reports.Wording:
    """The words of `--language`; by default the language of the partnership's first
    library, or English."""
    if language is not None and language not in LANGUAGES:
        raise UserError(f"--language: expected one of {', '.join(LANGUAGES)}, not {language!r}")
    if language is None:
        chosen = next((p for p in config.partnerships if p.id == partnership), None)
        first = config.library(chosen.libraries[0]) if chosen else None
        language = first.language.split("-")[0] if first else "en"
        language = language if language in LANGUAGES else "en"
    names = {library.id: library.name for library in config.libraries}
    words = Pages(config.relay.templates_dir).words(language)
    return reports.Wording(words, language, names)


def cmd_report(args: argparse.Namespace) -> int:
    this_month = datetime.now(UTC).strftime("%Y-%m")
    end = _month_flag("--to", args.to or this_month)
    start = reports.year_ending(end) if args.start is None else _month_flag("--from", args.start)
    if start > end:
        raise UserError(f"--from: {start} is after --to {end}")
    problem = reports.period_problem(start, end)
    if problem == "early":
        raise UserError(f"--from: {start} is before {reports.FIRST_YEAR}")
    if problem == "long":
        raise UserError(f"--from/--to: {start} to {end} is more than {reports.MOST_MONTHS} months")
    config = _load(args)
    if args.partnership and args.partnership not in {p.id for p in config.partnerships}:
        raise UserError(f"--partnership: no partnership {args.partnership!r} in the config")
    wording = _report_wording(config, args.partnership or "", args.language)
    ctx = _context(args)
    report = reports.build(config, ctx.store, start, end, args.partnership or "")
    text = reports.render(report, args.format, wording)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    target = Path(args.output)
    if target.is_dir():
        raise UserError(f"--output: {target} is a folder")
    target.write_text(text, encoding="utf-8")
    print(f"report {start} to {end} written to {target}")
    return 0


# --- the end of a program year -------------------------------------------------------------

CLOSE_HELP = (
    "end a partnership's program year: a goodbye to each active participant in their "
    'language, everyone paused ("program-closed"), and the final report'
)


def cmd_program_close(args: argparse.Namespace) -> int:
    ctx = _context(args)
    partnership = _partnership(ctx, args.partnership)
    by = _staff_of_partnership(ctx, partnership, args.by) if args.by else ""
    wording = _report_wording(ctx.config, partnership.id, args.language)
    end = datetime.now(UTC).strftime("%Y-%m")
    target = Path(args.output or f"program-report-{partnership.id}-{end}.html")
    if target.is_dir() or not target.parent.is_dir():
        raise UserError(f"--output: {target} is a folder, or its folder does not exist")
    letters = ctx.store.all_letters()  # counted for the goodbyes, then the final report
    farewells = closing.plan(ctx, partnership, letters=letters)
    _print_farewells(ctx, partnership.id, farewells)
    for person in closing.kept(ctx, partnership):
        print(f"  {_who(person)}: kept: paired in another partnership")
    if args.dry_run:
        return 0
    if farewells and not args.yes:
        _confirm(
            f"Send the goodbyes and pause {len(farewells)}? Type yes: ", "nothing sent or paused"
        )
    done = closing.close(ctx, partnership, farewells, by=by, via="cli")
    print(
        f"sent {_n(done.goodbyes, 'goodbye', 'goodbyes')} and "
        f"{_n(done.guardian_copies, 'copy', 'copies')} to guardians; paused {done.paused}"
    )
    report = reports.build(
        ctx.config, ctx.store, reports.year_ending(end), end, partnership.id, letters
    )
    form = target.suffix.lstrip(".") if target.suffix.lstrip(".") in reports.FORMATS else "html"
    target.write_text(reports.render(report, form, wording), encoding="utf-8")
    print(f"final report ({report.start} to {report.end}) written to {target}")
    return 0


def _print_farewells(ctx: Context, partnership: str, farewells: list[closing.Farewell]) -> None:
    if not farewells:
        print(f"{partnership}: nobody is active; no goodbye to send (closed already?)")
    else:
        print(f"{partnership}: {_n(len(farewells), 'active participant', 'active participants')}")
        print("each is paused (program-closed) and gets:")
    stay = " with the offer to stay in touch" if ctx.config.program.stay_in_touch else ""
    for farewell in farewells:
        person = farewell.participant
        if farewell.unsent:
            what = "no goodbye (a guardian's consent is awaited)"
        else:
            pals = ", ".join(farewell.pals) or "no pal"
            copy = ", a copy to their guardian" if farewell.guardian_copy else ""
            what = (
                f"goodbye in {person.language}{stay} (pal {pals}, "
                f"{_n(farewell.letters, 'letter', 'letters')} delivered){copy}"
            )
        print(f"  {_who(person)}: {what}")


# --- backup and restore --------------------------------------------------------------------

BACKUP_HELP = (
    "copy the whole data folder (store, spool, outbox, keys, Maildir; not the log) into DEST, "
    "a new or empty folder, while serve keeps running"
)
RESTORE_HELP = (
    "replace the data folder with the backup in SRC; serve must be stopped. The relay goes "
    "back to the moment of the backup: letters accepted after it are gone (their senders "
    "were answered 250), and letters and notices delivered after it may be delivered again "
    "(they were still in the outbox copy or not yet marked delivered)"
)


def cmd_backup(args: argparse.Namespace) -> int:
    made = backup.backup(_load(args), Path(args.dest))
    print(
        f"backed up {made.files} files ({made.bytes / 1e6:.1f} MB) into {made.folder} in "
        f"{made.seconds:.1f} s (the store was locked for {made.store_seconds:.2f} s)"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    config = _load(args)
    restored = backup.restore(config, Path(args.src), force=args.force)
    if restored.moved_aside is not None:
        print(f"moved the previous data folder aside to {restored.moved_aside}")
    print(
        f"restored {restored.data_dir} from the backup made at "
        f"{restored.manifest.get('made_at', '?')}; start serve again"
    )
    return 0


# --- demo ----------------------------------------------------------------------------------

DEMO = (
    ("Maya", "maya@example.net", "Tomás", "tomas@example.net"),
    ("Leo", "leo@example.net", "Sofía", "sofia@example.net"),
)


def cmd_demo(args: argparse.Namespace) -> int:
    ctx = _context(args)
    pairs = [p for p in ctx.config.partnerships if len(p.libraries) >= 2]
    if not pairs:
        raise UserError("the config has no partnership to seed")
    left_id, right_id = pairs[0].libraries[:2]
    shown = []
    for left_name, left_email, right_name, right_email in DEMO:
        left = _demo_participant(ctx, left_id, left_name, left_email)
        right = _demo_participant(ctx, right_id, right_name, right_email)
        participants.pair(ctx, left, right, via="demo")
        shown.append((left, right))
    listen = ctx.config.smtp.listen
    writer, pal = shown[0]
    library = ctx.config.library(writer.library)
    moderator = library.moderators[0].email if library and library.moderators else "STAFF_EMAIL"
    print("Demo participants (paired):")
    for left, right in shown:
        print(f"  {left.name:<6} {left.masked:<36} <-> {right.name:<6} {right.masked}")
    print(f"""
With `{PROG} serve` running, send a first letter from {writer.name} to {pal.name}:

  swaks --server {listen} --from {writer.email} --to {pal.masked} \\
        --header 'Subject: Hello from {writer.name}' --body 'Hi! What is school like for you?'

or, without swaks:

  python3 -c "import smtplib; smtplib.SMTP('{listen.host}', {listen.port}).sendmail(\\
'{writer.email}', ['{pal.masked}'], 'Subject: Hello\\n\\nHi! What is school like for you?')"

Then, as a moderator of {writer.library}:

  {PROG} queue list
  {PROG} queue approve 1 --by {moderator}

and read what {pal.name} received in {ctx.config.delivery.maildir}/new/.""")
    return 0


def _demo_participant(ctx: Context, library: str, name: str, email: str) -> Participant:
    try:
        return participants.enroll(ctx, library, name, email, via="demo")
    except AlreadyEnrolled:
        return participants.find(ctx, email)  # seeded by an earlier run


# --- wiring --------------------------------------------------------------------------------


def _letter_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a letter id is a number, not {text!r}")
    return int(text)


def _detail_flags(sub: argparse.ArgumentParser, clear: str = "") -> None:
    sub.add_argument("--birth-year", metavar="YYYY", help=f"the year of birth{clear}")
    sub.add_argument(
        "--age-band", metavar="BAND", help=f"an age band such as 9-11 or 13+ instead{clear}"
    )
    sub.add_argument(
        "--interests", metavar="LIST", help=f'interests, such as "football, drawing"{clear}'
    )
    sub.add_argument(
        "--members",
        metavar="LIST",
        help=f"a group's members' first names, such as \"Ana, Luis\" (staff only){clear}",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description="Moderated pen-pal email relay.")
    top.add_argument(
        "--config",
        help=(
            f"config file (default: ${config_module.ENV_VAR}, else ./config.toml, else "
            f"{config_module.SYSTEM_CONFIG})"
        ),
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: Any, name: str, run: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=text, description=text)
        sub.set_defaults(run=run)
        return sub

    def group(name: str, text: str) -> Any:
        """A command with actions of its own (`queue list`, `queue approve`, ...)."""
        parent = commands.add_parser(name, help=text)
        return parent.add_subparsers(dest="action", required=True, metavar="ACTION")

    command(commands, "serve", cmd_serve, "run the relay (intake, delivery, reload)")
    config_sub = group("config", "check or create the configuration")
    command(config_sub, "check", cmd_config_check, "validate the config file; exit 0 or 1")
    init = command(config_sub, "init", cmd_config_init, "write the commented default config.toml")
    init.add_argument("--force", action="store_true", help="replace an existing file")

    dkim_sub = group("dkim", "the key outgoing mail is signed with, and its DNS record")
    keygen = command(
        dkim_sub, "keygen", cmd_dkim_keygen, "make a new signing key and print its DNS record"
    )
    keygen.add_argument("--selector", help="the key's name in DNS (default: [dkim] selector)")
    keygen.add_argument("--bits", type=int, default=dkim_signing.BITS, help="RSA key size")
    keygen.add_argument("--force", action="store_true", help="replace an existing key")
    command(dkim_sub, "record", cmd_dkim_record, "print the DNS record of the current key")

    people_sub = group("participants", "enrol, list, pause, resume or remove participants")
    add = command(people_sub, "add", cmd_participants_add, "enrol a participant")
    add.add_argument("--library", required=True)
    add.add_argument("--name", required=True, help="display name pals see (a first name)")
    add.add_argument("--email", required=True, help="the participant's real address (private)")
    add.add_argument("--language", help="default: the library's language")
    add.add_argument(
        "--guardian",
        help="a parent's address: gets a copy of every letter; required under the library's "
        "consent age (the guardian is asked for consent)",
    )
    add.add_argument("--guardian-name", help="the guardian's name")
    add.add_argument(
        "--group",
        action="store_true",
        help="a class or a club: --name is the group's, --email its teacher's or leader's; "
        "no guardian or consent; an age band rather than a year of birth",
    )
    add.add_argument(
        "--no-guardian-copies",
        dest="guardian_copies",
        action="store_const",
        const=False,
        help="the guardian gets no copies of letters",
    )
    _detail_flags(add)
    add.add_argument("--json", action="store_true")
    listing = command(people_sub, "list", cmd_participants_list, "list participants")
    listing.add_argument("--library")
    listing.add_argument("--json", action="store_true")
    showing = command(people_sub, "show", cmd_participants_show, "one participant in full")
    showing.add_argument("participant", help=REFERENCE)
    showing.add_argument("--json", action="store_true")
    editing = command(
        people_sub,
        "edit",
        cmd_participants_edit,
        "change the year of birth, age band, interests or members of a participant",
    )
    editing.add_argument("participant", help=REFERENCE)
    _detail_flags(editing, clear=' ("" removes it)')
    for action, text in (
        ("pause", "refuse letters from and to a participant until resumed"),
        ("resume", "make a paused participant (or one who left) active again"),
        ("leave", "a participant leaves the program; their record stays"),
    ):
        changing = command(people_sub, action, cmd_participants_status, text)
        changing.add_argument("participant", help=REFERENCE)
    guardian = command(
        people_sub, "guardian", cmd_participants_guardian, "set or clear a participant's guardian"
    )
    guardian.add_argument("participant", help=REFERENCE)
    guardian.add_argument(
        "email", nargs="?", help="a parent's address: gets a copy of every letter"
    )
    guardian.add_argument("--name", dest="guardian_name", help="the guardian's name")
    guardian.add_argument(
        "--no-copies", action="store_true", help="the guardian gets no copies of letters"
    )
    guardian.add_argument("--clear", action="store_true", help="no guardian any more")
    guardian.set_defaults(field_flags={"guardian_name": "--name"})

    exporting = command(
        people_sub,
        "export",
        cmd_participants_export,
        "write everything held about a participant to a zip (records, letters, audit)",
    )
    exporting.add_argument("participant", help=REFERENCE)
    exporting.add_argument("--output", metavar="FILE.zip", help="default: <id>-data.zip here")
    exporting.add_argument("--by", help="your staff email, for the audit log (required)")
    erasing = command(
        people_sub,
        "erase",
        cmd_participants_erase,
        "remove a participant and everything about them; letters stay as figures only",
    )
    erasing.add_argument("participant", help=REFERENCE)
    erasing.add_argument("--yes", action="store_true", help="do not ask to confirm")
    erasing.add_argument(
        "--by", help="your staff email (a coordinator), for the audit log (required)"
    )
    consenting = command(
        people_sub,
        "consent",
        cmd_participants_consent,
        "a guardian's consent: ask again, record it received on paper, or record a withdrawal",
    )
    consenting.add_argument("participant", help=REFERENCE)
    what = consenting.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--ask-again", action="store_true", help="email the guardian a new consent request"
    )
    what.add_argument("--paper", action="store_true", help="consent was received on paper")
    what.add_argument(
        "--withdraw", action="store_true", help="consent is withdrawn: the participant is paused"
    )
    consenting.add_argument("--by", help="your staff email, as listed in the config")

    pairing = command(commands, "pair", cmd_pair, "make two participants pals")
    pairing.add_argument("a", help=REFERENCE)
    pairing.add_argument("b", help=REFERENCE)
    welcome_help = "send each a welcome email with the other's masked address (once per pair)"
    pairing.add_argument("--welcome", action="store_true", help=welcome_help)
    unpairing = command(commands, "unpair", cmd_unpair, "end the pairing of two pals")
    unpairing.add_argument("a", help=REFERENCE)
    unpairing.add_argument("b", help=REFERENCE)

    quiet_help = "pairs where nobody has written for [matching] quiet_weeks"
    quiet_pairs = command(commands, "quiet", cmd_quiet, quiet_help)
    quiet_pairs.add_argument("--library", metavar="ID", help="only pairs with this library's")
    quiet_pairs.add_argument("--json", action="store_true")
    quiet_sub = quiet_pairs.add_subparsers(dest="action", metavar="ACTION")
    nudging = command(
        quiet_sub, "nudge", cmd_quiet_nudge, "email whoever owes a letter in a quiet pair, once"
    )
    nudging.add_argument("pair", metavar="PAIR", help="the pair as listed, such as p3-p41")
    nudging.add_argument("--by", required=True, help="your staff email, as listed in the config")

    matching_help = "propose pals across a partnership's two libraries, then pair them"
    match = command(commands, "match", cmd_match, matching_help)
    match.add_argument("--partnership", required=True, metavar="ID", help="a partnership's id")
    match.add_argument("--dry-run", action="store_true", help="only show the proposal")
    match.add_argument("--yes", action="store_true", help="accept the proposal without asking")
    match.add_argument("--json", action="store_true")
    match.add_argument("--by", help="your staff email, for the audit log")

    queue_sub = group("queue", "letters held for a decision")
    qlist = command(queue_sub, "list", cmd_queue_list, "letters waiting, oldest first")
    qlist.add_argument("--library")
    qlist.add_argument("--json", action="store_true")
    show = command(queue_sub, "show", cmd_queue_show, "one letter as it will be delivered")
    show.add_argument("id", type=_letter_id)
    show.add_argument("--json", action="store_true")
    ok = command(queue_sub, "approve", cmd_queue_approve, "approve a held letter")
    ok.add_argument("id", type=_letter_id)
    ok.add_argument("--by", required=True, help="your staff email, as listed in the config")
    ok.add_argument(
        "--redact-flags",
        action="store_true",
        help="replace every flagged phone number, address, link, handle or surname by a mark",
    )
    ok.add_argument(
        "--edit",
        metavar="FILE",
        help="deliver the text in FILE ('-': standard input) instead; see `queue show`",
    )
    rm = command(
        queue_sub, "remove-file", cmd_queue_remove_file, "take one file out of a held letter"
    )
    rm.add_argument("id", type=_letter_id)
    rm.add_argument("file", metavar="FILE", help="its name (drawing-1.jpg) or number, from 1")
    rm.add_argument("--by", required=True, help="your staff email, as listed in the config")
    no = command(queue_sub, "reject", cmd_queue_reject, "reject a held letter with a reason")
    no.add_argument("id", type=_letter_id)
    no.add_argument("--by", required=True, help="your staff email, as listed in the config")
    no.add_argument("--reason", required=True, help="sent to the writer, kindly worded")

    reminders_sub = group("reminders", "remind moderators of waiting letters")
    remind = command(
        reminders_sub, "send", cmd_reminders_send, "send the daily list of waiting letters now"
    )
    remind.add_argument("--library")

    prompts_sub = group("prompts", "the monthly topic emails")
    preview = command(
        prompts_sub, "preview", cmd_prompts_preview, "show what each participant would get"
    )
    preview.add_argument("--month", help="YYYY-MM (default: this month)")
    preview.add_argument("--participant", help=REFERENCE)
    send = command(
        prompts_sub,
        "send",
        cmd_prompts_send,
        "send a month's prompt now (still once per participant)",
    )
    send.add_argument("--month", required=True, help="YYYY-MM")
    send.add_argument("--dry-run", action="store_true")

    digest_sub = group("digest", "staff newsletter digests")
    dsend = command(digest_sub, "send", cmd_digest_send, "send the digests of new posts now")
    dsend.add_argument("--partnership")
    dsend.add_argument("--dry-run", action="store_true")

    schedule_sub = group("schedule", "scheduled work")
    run = command(
        schedule_sub,
        "run",
        cmd_schedule_run,
        "do what the scheduler in serve would do at a given time",
    )
    run.add_argument("--now", help="ISO time with offset (default: now)")

    retention_sub = group("retention", "remove what [retention] says is kept no longer")
    purge = command(
        retention_sub,
        "run",
        cmd_retention_run,
        "purge now what is due (serve does it once a day); one audit entry says how much",
    )
    purge.add_argument("--dry-run", action="store_true", help="only count what would go")
    purge.add_argument("--now", help="ISO time with offset (default: now)")

    report = command(commands, "report", cmd_report, REPORT_HELP)
    report.add_argument(
        "--from", dest="start", metavar="YYYY-MM", help="first month (default: 11 before --to)"
    )
    report.add_argument("--to", metavar="YYYY-MM", help="last month (default: this month)")
    report.add_argument("--partnership", metavar="ID", help="only this partnership's libraries")
    report.add_argument("--format", choices=reports.FORMATS, default="md", help="default: md")
    report.add_argument("--output", metavar="FILE", help="write here (default: standard output)")
    report.add_argument("--language", help=LANGUAGE_HELP)

    program_sub = group("program", "the program year")
    closing_year = command(program_sub, "close", cmd_program_close, CLOSE_HELP)
    closing_year.add_argument("--partnership", required=True, metavar="ID")
    closing_year.add_argument("--dry-run", action="store_true", help="only show who gets what")
    closing_year.add_argument("--yes", action="store_true", help="do not ask to confirm")
    closing_year.add_argument("--by", help="your staff email, for the audit log")
    closing_year.add_argument("--language", help=f"of the final report: {LANGUAGE_HELP}")
    closing_year.add_argument(
        "--output",
        metavar="FILE.html",
        help="the final report (.html with charts, or .md, .csv); default: "
        "program-report-<partnership>-<month>.html here",
    )

    saving = command(commands, "backup", cmd_backup, BACKUP_HELP)
    saving.add_argument("dest", metavar="DEST", help="a folder that does not exist or is empty")
    restoring = command(commands, "restore", cmd_restore, RESTORE_HELP)
    restoring.add_argument("src", metavar="SRC", help="a folder made by `backup`")
    restoring.add_argument(
        "--force",
        action="store_true",
        help="move a non-empty data folder aside to <data_dir>.before-restore-<time> first",
    )

    command(commands, "demo", cmd_demo, "seed the demo libraries with paired participants")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        _as_data_owner(args)
        code: int = args.run(args)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{PROG}: config: {problem}", file=sys.stderr)
        return 1
    except InvalidField as error:
        flags = FIELD_FLAGS | getattr(args, "field_flags", {})
        flag = flags.get(error.field, error.field)
        print(f"{PROG}: {flag}: {error.problem}", file=sys.stderr)
        return 1
    except UserError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        print(
            f"{PROG}: {error.strerror or error}: {error.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 1
    except jinja2.TemplateError as error:
        print(f"{PROG}: a template could not be used: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        # A bug of ours: one line for the person, the traceback only when asked for.
        if os.environ.get("PENPAL_RELAY_DEBUG"):
            raise
        print(
            f"{PROG}: internal error ({type(error).__name__}: {error}); "
            "run again with PENPAL_RELAY_DEBUG=1 for details",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
