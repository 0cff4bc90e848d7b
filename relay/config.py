"""Configuration: `config.toml` read once into one typed, immutable `Config`.

Nothing else in the relay reads TOML. Validation collects every problem, each named by its
key path (`libraries[1].timezone: unknown time zone 'Mars/Base'`), so a coordinator fixes the
file in one pass. Unknown keys are errors: a misspelt key silently ignored is a setting that
silently does not apply.

Relative paths. Files the coordinator writes (`[relay] data_dir` itself, `templates_dir`,
every `password_file`, `client_secret_file`) are relative to the folder of the config file.
Files the relay itself writes (`[relay] log_file`, `[delivery] maildir`, `[dkim] key_file`,
`[imap.oauth2] refresh_token_file`) are relative to `data_dir`: under systemd the config
folder (/etc/penpal-relay) is read-only and only the data folder is writable. A config
written for the old rule (`log_file = "var/relay.log"` beside `data_dir = "var"`) keeps its
old meaning, and `Config.warnings` says what to write instead.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from relay.config_web import WebSettings, parse_web_section
from relay.errors import ConfigError

ROLES = ("moderator", "coordinator", "newsletter")
DIGEST_FORMATS = ("mime", "text")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TRANSPORTS = ("maildir", "smtp")
ENV_VAR = "PENPAL_RELAY_CONFIG"
SYSTEM_CONFIG = Path("/etc/penpal-relay/config.toml")  # where docs/deploy.md installs it
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_LIBRARY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# A selector is one or more DNS labels (RFC 6376 3.1).
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_SELECTOR = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
# Fixed, not dated: a default that changed with the year would switch keys under a running
# relay. Numbered, so the next key has an obvious name ("penpal2").
DKIM_SELECTOR = "penpal1"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Staff:
    email: str
    name: str
    roles: tuple[str, ...]
    language: str
    digest: str = "mime"  # "mime" or "text" (RFC 1153): how newsletter digests arrive

    @property
    def may_post_news(self) -> bool:
        return "newsletter" in self.roles or "coordinator" in self.roles

    @property
    def is_moderator(self) -> bool:
        return "moderator" in self.roles

    @property
    def is_coordinator(self) -> bool:
        return "coordinator" in self.roles


# The age under which a child needs a parent's or guardian's consent to take part, by the
# library's country (ISO 3166): COPPA in the US, the GDPR's Article 8 as each member state set
# it, the UK's Data Protection Act, Chile's Law 21.719, Peru's data protection regulation,
# Brazil's LGPD (a child is under 12). A library's `consent_age` overrides it; a country not
# listed takes DEFAULT_CONSENT_AGE, the strictest of these.
CONSENT_AGES: dict[str, int] = {
    "US": 13, "GB": 13, "CA": 13, "AU": 13, "NZ": 13,
    "AT": 14, "BE": 13, "BG": 14, "CY": 14, "CZ": 15, "DE": 16, "DK": 13, "EE": 13,
    "ES": 14, "FI": 13, "FR": 15, "GR": 15, "HR": 16, "HU": 16, "IE": 16, "IT": 14,
    "LT": 14, "LU": 16, "LV": 13, "MT": 13, "NL": 16, "PL": 16, "PT": 13, "RO": 16,
    "SE": 13, "SI": 15, "SK": 16, "IS": 13, "LI": 16, "NO": 13, "CH": 16,
    "CL": 14, "PE": 14, "AR": 13, "CO": 14, "MX": 18, "BR": 12, "JP": 16, "KR": 14,
}  # fmt: skip
DEFAULT_CONSENT_AGE = 16


@dataclass(frozen=True)
class Library:
    id: str
    name: str
    country: str
    language: str
    timezone: str
    staff: tuple[Staff, ...]
    # Participants younger than this take part only with a guardian's consent.
    consent_age: int = DEFAULT_CONSENT_AGE

    @property
    def moderators(self) -> tuple[Staff, ...]:
        return tuple(s for s in self.staff if s.is_moderator)

    @property
    def coordinators(self) -> tuple[Staff, ...]:
        return tuple(s for s in self.staff if s.is_coordinator)

    def staff_member(self, email: str) -> Staff | None:
        wanted = email.strip().lower()
        return next((s for s in self.staff if s.email == wanted), None)


@dataclass(frozen=True)
class Partnership:
    id: str
    libraries: tuple[str, ...]


@dataclass(frozen=True)
class RelaySettings:
    domain: str
    data_dir: Path
    program_name: str
    templates_dir: Path | None
    log_level: str
    log_file: Path | None
    program_named: bool = True  # False: program_name is the default, no name was configured


@dataclass(frozen=True)
class SmtpSettings:
    listen: HostPort
    max_message_bytes: int
    max_recipients: int
    shutdown_grace_seconds: float
    intake_processes: int = 0
    max_backlog_letters: int = 2000
    max_backlog_bytes: int = 200 * 1024 * 1024
    max_control_bytes: int = 1024 * 1024  # mail to the relay's own addresses from non-staff
    max_refused_recipients: int = 20  # per client address and window, then 450 4.7.1
    refused_window_seconds: float = 600.0
    # Where Postfix asks the recipient check (relay/intake/policy.py); None: not offered.
    policy_listen: HostPort | None = None


@dataclass(frozen=True)
class DeliverySettings:
    transport: str
    maildir: Path
    smarthost: HostPort
    starttls: bool
    username: str
    password_file: Path | None
    timeout_seconds: float
    retry_first_seconds: float
    retry_max_seconds: float
    give_up_after_hours: float
    pause_after_bounces: int = 3  # 0: never pause a pal whose mail keeps coming back


@dataclass(frozen=True)
class DkimSettings:
    """How outgoing mail is signed: `selector` names the key in DNS
    (`<selector>._domainkey.<domain>`), `key_file` holds it (PEM); `sign` is off only on a
    closed test network."""

    sign: bool
    selector: str
    key_file: Path


@dataclass(frozen=True)
class ModerationSettings:
    token_days: float
    notify_partner_moderators: bool
    remind_after_hours: float
    reminder_hour: int
    tell_writer_after_hours: float  # 0: never tell a writer their letter is still waiting
    notices_per_writer_per_day: int


@dataclass(frozen=True)
class CommandSettings:
    """Participants' one-word commands by email (help@, or a reply to program mail)."""

    answers_per_day: int = 3  # answers to one address a day; beyond, commands act silently
    confirm_days: float = 7.0  # how long a request to confirm a command stays valid


@dataclass(frozen=True)
class ScreeningSettings:
    keywords: dict[str, tuple[str, ...]]  # language (or "*" for all) -> words to flag


# What a person would call a file, as `relay.scrub.model.AttachmentKind` names them (kept in
# step by a test; importing scrubbing here would load every cleaner to read a config file).
FILE_KINDS = ("picture", "audio", "video", "document", "text", "file")
MB = 1024 * 1024
DEFAULT_MAX_BYTES = {
    "picture": 5 * MB,
    "audio": 20 * MB,
    "video": 25 * MB,
    "document": 5 * MB,
    "text": 1 * MB,
    "file": 5 * MB,
}
# Base64 makes a file about 1.37 times larger in a message (4/3 and line ends).
BASE64_GROWTH = 1.37


@dataclass(frozen=True)
class AttachmentSettings:
    """What a letter may carry: `allowed_types` (patterns like "audio/*"), at most
    `max_count` files, each no larger than `max_bytes[kind]`, together no larger than
    `max_total_bytes`."""

    max_count: int = 5
    allowed_types: tuple[str, ...] = ("image/*", "audio/*")
    max_bytes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_BYTES))
    max_total_bytes: int = 25 * MB

    def max_bytes_for(self, kind: str) -> int:
        return self.max_bytes.get(kind, DEFAULT_MAX_BYTES["file"])


AUTHENTICATION_MODES = ("front", "relay")
PATRON_POLICIES = ("flag", "refuse")


@dataclass(frozen=True)
class AuthenticationSettings:
    """Who vouches for a sender's address (see relay/authentication.py).

    `mode` "front": the mail server in front of the relay checks SPF, DKIM and DMARC and
    writes an Authentication-Results header with one of `trusted_authserv_ids`; only the
    topmost such header counts, and only on mail that came from one of `front_servers`
    (networks). `mode` "relay": the relay checks them itself, asking `resolvers` (empty: the
    system's). `patron_policy`: what happens to a patron's letter whose sender is not
    verified ("flag" for staff, or "refuse" at the end of DATA).
    """

    required: bool
    trusted_authserv_ids: tuple[str, ...]
    mode: str = "front"
    front_servers: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    patron_policy: str = "flag"
    resolvers: tuple[HostPort, ...] = ()

    def from_front(self, peer: str) -> bool:
        """Whether a connection from `peer` (an IP address) came from a front server."""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.front_servers)


@dataclass(frozen=True)
class OAuth2Settings:
    provider: str  # "google" | "microsoft"
    client_id: str
    client_secret_file: Path | None
    refresh_token_file: Path
    tenant: str


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    tls: str  # "implicit" | "starttls" | "off"
    username: str
    password_file: Path | None
    oauth2: OAuth2Settings | None
    folder: str
    processed_folder: str
    failed_folder: str
    recipient_headers: tuple[str, ...]
    idle_seconds: float
    timeout_seconds: float
    retry_max_seconds: float


@dataclass(frozen=True)
class Topic:
    """One month's prompt: `month` is "YYYY-MM" for one month, or "01".."12" for every year."""

    month: str
    subject: dict[str, str]
    body: dict[str, str]
    partnership: str = ""  # only for this partnership (overrides the general topic)


@dataclass(frozen=True)
class PromptSettings:
    day: int
    hour: int
    topics: tuple[Topic, ...]

    def topic_for(self, month: str, partnership: str) -> Topic | None:
        """The most specific topic: partnership before general, "YYYY-MM" before "MM"."""
        every_year = month[5:]
        for wanted in (
            (month, partnership),
            (every_year, partnership),
            (month, ""),
            (every_year, ""),
        ):
            for topic in self.topics:
                if (topic.month, topic.partnership) == wanted:
                    return topic
        return None


@dataclass(frozen=True)
class NewsletterSettings:
    schedule: str  # "weekly" | "monthly"
    weekday: int  # 0 = Monday (weekly)
    day: int  # day of month (monthly)
    hour: int
    name: str


@dataclass(frozen=True)
class RetentionSettings:
    """How long what the relay keeps about letters stays (see relay/schedule/retention.py).

    `originals_days`: raw originals as received (real addresses, mail headers) are removed
    this many days after their letter reached a final state (delivered, rejected, failed,
    bounced); 0: at the next daily purge. `letters_months`: a letter's contents (the scrubbed
    version, moderators' changes, its subject, flags and notes) are removed this many months
    after its final state, leaving a record of its number, libraries, status and dates;
    messages set aside after failing processing go that long after they arrived.
    `left_months`: a participant who left the program is erased this many months after
    (0: kept until staff erase them). `no_consent_months`: a participant whose guardian's
    consent is still awaited (declined or never answered) this many months after their
    enrolment or the last request to their guardian is erased (0: kept until staff erase
    them).
    """

    originals_days: int = 7
    letters_months: int = 12
    left_months: int = 12
    no_consent_months: int = 3


UNEVEN_RULES: Final = ("two-pals", "leave-out", "together")
UnevenRule = Literal["two-pals", "leave-out", "together"]


@dataclass(frozen=True)
class MatchingSettings:
    """How `penpal-relay match` proposes pals (see relay/matching.py).

    `max_age_gap`: pals are never more than this many years apart. `uneven`: when one
    library has more participants to match than the other, "two-pals" gives those left
    over a second pal (someone who already has one in the proposal), "leave-out" lets them
    wait for the next enrolment, "together" teams each with someone of their own library who
    has a pal, and the two write together to that pal. `quiet_weeks`: a pair where nobody
    has written for this many weeks counts as quiet.
    """

    max_age_gap: int = 2
    uneven: UnevenRule = "two-pals"
    quiet_weeks: int = 6


@dataclass(frozen=True)
class Config:
    path: Path
    relay: RelaySettings
    smtp: SmtpSettings
    delivery: DeliverySettings
    moderation: ModerationSettings
    authentication: AuthenticationSettings
    libraries: tuple[Library, ...]
    partnerships: tuple[Partnership, ...]
    imap: ImapSettings | None = None
    screening: ScreeningSettings = field(default_factory=lambda: ScreeningSettings({}))
    attachments: AttachmentSettings = field(default_factory=AttachmentSettings)
    web: WebSettings = field(default_factory=WebSettings)
    prompts: PromptSettings = field(default_factory=lambda: PromptSettings(1, 9, ()))
    newsletter: NewsletterSettings = field(
        default_factory=lambda: NewsletterSettings("monthly", 0, 1, 9, "Staff news")
    )
    # Parsed from a file, signing is on unless turned off; a Config built by hand (tests of
    # single modules) signs nothing, so no key is made for it.
    dkim: DkimSettings = field(
        default_factory=lambda: DkimSettings(False, DKIM_SELECTOR, Path("dkim.key"))
    )
    # What a coordinator should change though it still works (logged once at start).
    warnings: tuple[str, ...] = ()
    commands: CommandSettings = field(default_factory=CommandSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    matching: MatchingSettings = field(default_factory=MatchingSettings)
    _by_id: dict[str, Library] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({library.id: library for library in self.libraries})

    def library(self, library_id: str) -> Library | None:
        return self._by_id.get(library_id)

    def partners_of(self, library_id: str) -> tuple[str, ...]:
        found: list[str] = []
        for partnership in self.partnerships:
            if library_id in partnership.libraries:
                found += [other for other in partnership.libraries if other != library_id]
        return tuple(dict.fromkeys(found))

    def staff_libraries(self, email: str) -> tuple[tuple[Library, Staff], ...]:
        """Every library that lists this address as staff (a person may serve two)."""
        hits = []
        for library in self.libraries:
            member = library.staff_member(email)
            if member is not None:
                hits.append((library, member))
        return tuple(hits)

    @property
    def coordinators(self) -> tuple[Staff, ...]:
        return tuple(s for library in self.libraries for s in library.coordinators)

    @property
    def program_address(self) -> str:
        return f"program@{self.relay.domain}"

    @property
    def public_url(self) -> str:
        """Where the relay's pages are reached from outside (no trailing slash)."""
        return self.web.public_url.rstrip("/") or f"http://{self.web.listen}"

    def privacy_url(self, language: str) -> str:
        """The public privacy notice in one language, as every patron email links to it."""
        return f"{self.public_url}/privacy?lang={language}"


# --- reading -------------------------------------------------------------------------------

T = TypeVar("T")


class _Section:
    """A view on one TOML table that records problems under its key path."""

    def __init__(self, data: dict[str, Any], path: str, problems: list[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, text: str) -> None:
        self.problems.append(f"{self.key(name)}: {text}")

    def get(self, name: str, kind: type[T], default: T | None = None) -> T | None:
        self.seen.add(name)
        if name not in self.data:
            if default is None:
                self.problem(name, "is required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(name, f"must be {_kind_name(kind)}, not {_kind_name(type(value))}")
            return default
        return value

    def section(self, name: str) -> _Section:
        self.seen.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, "must be a table")
            value = {}
        return _Section(value, self.key(name), self.problems)

    def items(self, name: str) -> Iterator[_Section]:
        self.seen.add(name)
        value = self.data.get(name, [])
        if not isinstance(value, list):
            self.problem(name, "must be a list of tables")
            return
        for index, entry in enumerate(value):
            where = f"{self.key(name)}[{index}]"
            if not isinstance(entry, dict):
                self.problems.append(f"{where}: must be a table")
                continue
            yield _Section(entry, where, self.problems)

    def finish(self) -> None:
        for name in self.data:
            if name not in self.seen:
                self.problem(name, "unknown key")


def _kind_name(kind: type) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    return names.get(
        kind, "a list" if kind is list else "a table" if kind is dict else kind.__name__
    )


def _host_port(section: _Section, name: str, default: str) -> HostPort:
    text = section.get(name, str, default) or default
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        section.problem(name, f"must be HOST:PORT, not {text!r}")
        return HostPort("127.0.0.1", 0)
    return HostPort(host.strip("[]"), int(port))


def _path(section: _Section, name: str, base: Path, default: str | None) -> Path | None:
    text = section.get(name, str, default)
    if not text:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


@dataclass
class _DataPaths:
    """Resolves the paths of files the relay writes: relative ones inside `data_dir`.

    `written` is `data_dir` as the file spells it (when relative): a state path that starts
    with it was written for the old rule (relative to the config file) and keeps that
    meaning, with a warning naming the value to write instead.
    """

    base: Path
    data_dir: Path
    written: tuple[str, ...]
    warnings: list[str]

    def resolve(self, section: _Section, name: str, default: str | None) -> Path | None:
        text = section.get(name, str, default)
        if not text:
            return None
        path = Path(text).expanduser()
        if path.is_absolute():
            return path
        parts = tuple(p for p in path.parts if p != ".")
        if self.written and parts[: len(self.written)] == self.written:
            inside = Path(*parts[len(self.written) :]) if len(parts) > len(self.written) else None
            self.warnings.append(
                f"{section.key(name)}: {text!r} is read relative to the config file as before; "
                f"paths the relay writes are now relative to data_dir, so write "
                f'{name} = "{inside or "."}"'
            )
            return self.base / path
        return self.data_dir / path


def _written_data_dir(section: _Section) -> tuple[str, ...]:
    """`data_dir` as the config file spells it, by parts; empty when it is absolute."""
    text = section.data.get("data_dir", "var")
    if not isinstance(text, str) or not text or Path(text).expanduser().is_absolute():
        return ()
    return tuple(p for p in Path(text).parts if p != ".")


def _positive(section: _Section, name: str, kind: type[T], default: T) -> T:
    value = section.get(name, kind, default)
    if value is None or not isinstance(value, int | float) or value <= 0:
        section.problem(name, "must be greater than 0")
        return default
    return value


def _language(section: _Section, name: str, default: str | None) -> str:
    value = section.get(name, str, default) or (default or "en")
    if not _LANGUAGE.match(value):
        section.problem(name, f"must be a language code such as 'en' or 'pt-BR', not {value!r}")
    return value


def _relay(root: _Section, base: Path) -> tuple[RelaySettings, _DataPaths]:
    s = root.section("relay")
    domain = (s.get("domain", str) or "").lower()
    if domain and not _DOMAIN.match(domain):
        s.problem("domain", f"is not a domain name: {domain!r}")
    level = (s.get("log_level", str, "INFO") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        s.problem("log_level", "must be one of DEBUG, INFO, WARNING, ERROR")
    data_dir = _path(s, "data_dir", base, "var") or base / "var"
    paths = _DataPaths(base, data_dir, _written_data_dir(s), [])
    named = s.get("program_name", str, "") or ""
    settings = RelaySettings(
        domain=domain,
        data_dir=data_dir,
        program_name=named or "Pen Pals",
        templates_dir=_path(s, "templates_dir", base, ""),
        log_level=level,
        log_file=paths.resolve(s, "log_file", ""),
        program_named=bool(named),
    )
    s.finish()
    return settings, paths


def _smtp(root: _Section) -> SmtpSettings:
    s = root.section("smtp")
    settings = SmtpSettings(
        listen=_host_port(s, "listen", "127.0.0.1:2525"),
        max_message_bytes=_positive(s, "max_message_bytes", int, 36 * MB),
        max_recipients=_positive(s, "max_recipients", int, 10),
        shutdown_grace_seconds=_positive(s, "shutdown_grace_seconds", float, 30.0),
        intake_processes=_intake_processes(s),
        max_backlog_letters=_positive(s, "max_backlog_letters", int, 2000),
        max_backlog_bytes=_positive(s, "max_backlog_bytes", int, 200 * 1024 * 1024),
        max_control_bytes=_positive(s, "max_control_bytes", int, 1024 * 1024),
        max_refused_recipients=_positive(s, "max_refused_recipients", int, 20),
        refused_window_seconds=_positive(s, "refused_window_seconds", float, 600.0),
        policy_listen=_policy_listen(s),
    )
    s.finish()
    return settings


def _policy_listen(section: _Section) -> HostPort | None:
    """Empty or absent: no policy service (the relay is not behind Postfix)."""
    if not section.get("policy_listen", str, ""):
        return None
    return _host_port(section, "policy_listen", "")


def _intake_processes(section: _Section) -> int:
    value = section.get("intake_processes", int, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 8:
        section.problem("intake_processes", "must be a whole number from 0 to 8")
        return 0
    return value


def _delivery(root: _Section, base: Path, paths: _DataPaths) -> DeliverySettings:
    s = root.section("delivery")
    transport = s.get("transport", str, "maildir") or "maildir"
    if transport not in TRANSPORTS:
        s.problem("transport", f"must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
    password_file = _path(s, "password_file", base, "")
    if transport == "smtp" and password_file is not None and not password_file.is_file():
        s.problem("password_file", f"no such file: {password_file}")
    settings = DeliverySettings(
        transport=transport,
        maildir=paths.resolve(s, "maildir", "maildir") or paths.data_dir / "maildir",
        smarthost=_host_port(s, "smarthost", "127.0.0.1:25"),
        starttls=bool(s.get("starttls", bool, True)),
        username=s.get("username", str, "") or "",
        password_file=password_file,
        timeout_seconds=_positive(s, "timeout_seconds", float, 60.0),
        retry_first_seconds=_positive(s, "retry_first_seconds", float, 60.0),
        retry_max_seconds=_positive(s, "retry_max_seconds", float, 3600.0),
        give_up_after_hours=_positive(s, "give_up_after_hours", float, 72.0),
        pause_after_bounces=_pause_after_bounces(s),
    )
    if settings.username and settings.password_file is None:
        s.problem("password_file", "is required when username is set")
    s.finish()
    return settings


def _pause_after_bounces(section: _Section) -> int:
    value = section.get("pause_after_bounces", int, 3)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        section.problem("pause_after_bounces", "must be a whole number, 0 or more")
        return 3
    return value


def selector_problem(selector: str) -> str | None:
    """What is wrong with a DKIM selector, or None."""
    if _SELECTOR.match(selector):
        return None
    return (
        f"must be a DNS label such as {DKIM_SELECTOR!r} (letters, digits, dashes), not {selector!r}"
    )


def dkim_key_file(data_dir: Path, selector: str) -> Path:
    """Where the relay keeps the key of `selector` unless `[dkim] key_file` says otherwise."""
    return data_dir / "dkim" / f"{selector}.key"


def _dkim(root: _Section, paths: _DataPaths) -> DkimSettings:
    s = root.section("dkim")
    selector = (s.get("selector", str, DKIM_SELECTOR) or DKIM_SELECTOR).lower()
    problem = selector_problem(selector)
    if problem:
        s.problem("selector", problem)
    key_file = paths.resolve(s, "key_file", "") or dkim_key_file(paths.data_dir, selector)
    if key_file.exists() and not key_file.is_file():
        s.problem("key_file", f"is not a file: {key_file}")
    settings = DkimSettings(
        sign=bool(s.get("sign", bool, True)), selector=selector, key_file=key_file
    )
    s.finish()
    return settings


def _moderation(root: _Section) -> ModerationSettings:
    s = root.section("moderation")
    hour = s.get("reminder_hour", int, 9)
    if hour is None or not 0 <= hour <= 23:
        s.problem("reminder_hour", "must be an hour from 0 to 23")
        hour = 9
    settings = ModerationSettings(
        token_days=_positive(s, "token_days", float, 14.0),
        notify_partner_moderators=bool(s.get("notify_partner_moderators", bool, False)),
        remind_after_hours=_at_least_zero(s, "remind_after_hours", 24.0),
        reminder_hour=hour,
        tell_writer_after_hours=_at_least_zero(s, "tell_writer_after_hours", 0.0),
        notices_per_writer_per_day=_positive(s, "notices_per_writer_per_day", int, 5),
    )
    s.finish()
    return settings


def _commands(root: _Section) -> CommandSettings:
    s = root.section("commands")
    settings = CommandSettings(
        answers_per_day=_positive(s, "answers_per_day", int, 3),
        confirm_days=_positive(s, "confirm_days", float, 7.0),
    )
    s.finish()
    return settings


def _at_least_zero(section: _Section, name: str, default: float) -> float:
    value = section.get(name, float, default)
    if value is None or value < 0:
        section.problem(name, "must be 0 or more")
        return default
    return value


def _screening(root: _Section) -> ScreeningSettings:
    s = root.section("screening")
    table = s.get("keywords", dict, {}) or {}
    keywords: dict[str, tuple[str, ...]] = {}
    for language, words in table.items():
        if language != "*" and not _LANGUAGE.match(language):
            s.problem(f"keywords.{language}", 'must be keyed by a language code or "*"')
        elif not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            s.problem(f"keywords.{language}", "must be a list of words")
        else:
            keywords[language] = tuple(w for w in words if w.strip())
    s.finish()
    return ScreeningSettings(keywords)


def _max_bytes(section: _Section) -> dict[str, int]:
    """`max_bytes`: one number for every kind (the older form), or a table by kind."""
    section.seen.add("max_bytes")
    value = section.data.get("max_bytes")
    if value is None:
        return dict(DEFAULT_MAX_BYTES)
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            section.problem("max_bytes", "must be greater than 0")
        return dict.fromkeys(FILE_KINDS, value) if value > 0 else dict(DEFAULT_MAX_BYTES)
    if not isinstance(value, dict):
        section.problem("max_bytes", "must be a whole number or a table of sizes by kind")
        return dict(DEFAULT_MAX_BYTES)
    table = section.section("max_bytes")
    sizes = {kind: _positive(table, kind, int, DEFAULT_MAX_BYTES[kind]) for kind in FILE_KINDS}
    table.finish()
    return sizes


def _fitting_total(smtp: SmtpSettings) -> int:
    """Unless written, the files of a letter may fill what one SMTP message can carry."""
    return min(25 * MB, int(smtp.max_message_bytes / BASE64_GROWTH))


def _attachments(root: _Section, smtp: SmtpSettings, warnings: list[str]) -> AttachmentSettings:
    s = root.section("attachments")
    types = s.get("allowed_types", list, ["image/*", "audio/*"]) or []
    for index, kind in enumerate(types):
        if not isinstance(kind, str) or not re.match(r"^[a-z]+/([a-z0-9.+-]+|\*)$", kind):
            s.problem(f"allowed_types[{index}]", f'must be a type like "audio/*", not {kind!r}')
    settings = AttachmentSettings(
        max_count=_positive(s, "max_count", int, 5),
        allowed_types=tuple(str(t) for t in types),
        max_bytes=_max_bytes(s),
        max_total_bytes=_positive(s, "max_total_bytes", int, _fitting_total(smtp)),
    )
    s.finish()
    media = [t for t in settings.allowed_types if t.startswith(("audio/", "video/", "*/"))]
    if media and shutil.which("ffmpeg") is None:
        warnings.append(
            f"attachments.allowed_types: {', '.join(media)} needs ffmpeg, which is not "
            "installed; such files are removed from letters until it is (apt-get install ffmpeg)"
        )
    encoded = int(settings.max_total_bytes * BASE64_GROWTH)
    if "max_total_bytes" in s.data and encoded > smtp.max_message_bytes:
        warnings.append(
            f"attachments.max_total_bytes: {settings.max_total_bytes} bytes of files take about "
            f"{encoded} bytes in a message, more than smtp.max_message_bytes "
            f"({smtp.max_message_bytes}); such letters are refused when they arrive"
        )
    return settings


def _authentication(root: _Section) -> AuthenticationSettings:
    s = root.section("authentication")
    mode = s.get("mode", str, "front") or "front"
    if mode not in AUTHENTICATION_MODES:
        s.problem("mode", f'must be "front" or "relay", not {mode!r}')
    ids = s.get("trusted_authserv_ids", list, []) or []
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not value.strip():
            s.problem(f"trusted_authserv_ids[{index}]", "must be a host name")
    networks = []
    for index, value in enumerate(s.get("front_servers", list, []) or []):
        try:
            networks.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError:
            s.problem(f"front_servers[{index}]", f"must be an IP address or network, not {value!r}")
    policy = s.get("patron_policy", str, "flag") or "flag"
    if policy not in PATRON_POLICIES:
        s.problem("patron_policy", f'must be "flag" or "refuse", not {policy!r}')
    resolvers = []
    for index, value in enumerate(s.get("resolvers", list, []) or []):
        text = str(value)
        if text.startswith("["):  # [IPv6]:port
            host, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif text.count(":") == 1:  # IPv4:port
            host, _, port = text.partition(":")
        else:  # a bare address, IPv4 or IPv6
            host, port = text, "53"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            s.problem(
                f"resolvers[{index}]", f"must be an IP address (optionally :PORT), not {text!r}"
            )
            continue
        if not port.isdigit() or not 0 < int(port) < 65536:
            s.problem(f"resolvers[{index}]", f"has a bad port: {text!r}")
            continue
        resolvers.append(HostPort(host, int(port)))
    required = bool(s.get("required", bool, True))
    if required and mode == "front" and not ids:
        s.problem(
            "trusted_authserv_ids",
            "list the authserv-id of the mail server in front of the relay "
            '(or set mode = "relay", or required = false on a closed test network)',
        )
    s.finish()
    return AuthenticationSettings(
        required,
        tuple(str(v).lower() for v in ids),
        mode=mode,
        front_servers=tuple(networks),
        patron_policy=policy,
        resolvers=tuple(resolvers),
    )


TLS_MODES = ("implicit", "starttls", "off")
OAUTH2_PROVIDERS = ("google", "microsoft")


def _oauth2(parent: _Section, base: Path, paths: _DataPaths) -> OAuth2Settings | None:
    if "oauth2" not in parent.data:
        parent.seen.add("oauth2")
        return None
    s = parent.section("oauth2")
    provider = s.get("provider", str, "") or ""
    if provider not in OAUTH2_PROVIDERS:
        s.problem("provider", f"must be one of {', '.join(OAUTH2_PROVIDERS)}, not {provider!r}")
    refresh = paths.resolve(s, "refresh_token_file", None)
    if refresh is not None and not refresh.is_file():
        s.problem("refresh_token_file", f"no such file: {refresh}")
    settings = OAuth2Settings(
        provider=provider,
        client_id=s.get("client_id", str) or "",
        client_secret_file=_path(s, "client_secret_file", base, ""),
        refresh_token_file=refresh or base,
        tenant=s.get("tenant", str, "common") or "common",
    )
    s.finish()
    return settings


def _imap(root: _Section, base: Path, paths: _DataPaths) -> ImapSettings | None:
    if "imap" not in root.data:
        root.seen.add("imap")
        return None
    s = root.section("imap")
    tls = s.get("tls", str, "implicit") or "implicit"
    if tls not in TLS_MODES:
        s.problem("tls", f"must be one of {', '.join(TLS_MODES)}, not {tls!r}")
    port = s.get("port", int, 993 if tls == "implicit" else 143) or 993
    if not 0 < port < 65536:
        s.problem("port", "must be a port number")
    password_file = _path(s, "password_file", base, "")
    oauth2 = _oauth2(s, base, paths)
    if password_file is None and oauth2 is None:
        s.problem("password_file", "is required (or an [imap.oauth2] table)")
    elif password_file is not None and not password_file.is_file():
        s.problem("password_file", f"no such file: {password_file}")
    idle = _positive(s, "idle_seconds", float, 300.0)
    if idle > 600:
        s.problem("idle_seconds", "must be at most 600 (IMAP servers drop idle clients at 30 min)")
    headers = s.get("recipient_headers", list, ["Delivered-To", "X-Original-To"]) or []
    settings = ImapSettings(
        host=s.get("host", str) or "",
        port=port,
        tls=tls,
        username=s.get("username", str) or "",
        password_file=password_file,
        oauth2=oauth2,
        folder=s.get("folder", str, "INBOX") or "INBOX",
        processed_folder=s.get("processed_folder", str, "Processed") or "Processed",
        failed_folder=s.get("failed_folder", str, "Failed") or "Failed",
        recipient_headers=tuple(str(h) for h in headers),
        idle_seconds=idle,
        timeout_seconds=_positive(s, "timeout_seconds", float, 60.0),
        retry_max_seconds=_positive(s, "retry_max_seconds", float, 300.0),
    )
    s.finish()
    return settings


def _staff(entry: _Section, library_language: str, seen: set[str]) -> Staff | None:
    address = entry.get("email", str) or ""
    try:
        address = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        entry.problem("email", f"{error}")
    name = entry.get("name", str) or ""
    roles = entry.get("roles", list, []) or []
    for role in roles:
        if role not in ROLES:
            entry.problem("roles", f"unknown role {role!r} (known: {', '.join(ROLES)})")
    language = _language(entry, "language", library_language)
    digest = entry.get("digest", str, "mime") or "mime"
    if digest not in DIGEST_FORMATS:
        entry.problem("digest", f"must be one of {', '.join(DIGEST_FORMATS)}, not {digest!r}")
    entry.finish()
    if address in seen:
        entry.problem("email", f"{address!r} is listed twice in this library")
    seen.add(address)
    return Staff(address, name, tuple(str(r) for r in roles), language, digest)


def _library(entry: _Section) -> Library:
    library_id = entry.get("id", str) or ""
    if library_id and not _LIBRARY_ID.match(library_id):
        entry.problem("id", "must be lower-case letters, digits and dashes")
    name = entry.get("name", str) or library_id
    country = (entry.get("country", str) or "").upper()
    if country and country not in phonenumbers.SUPPORTED_REGIONS:
        entry.problem("country", f"unknown ISO 3166 country code {country!r}")
    language = _language(entry, "language", None)
    timezone = entry.get("timezone", str) or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        entry.problem("timezone", f"unknown time zone {timezone!r}")
    seen: set[str] = set()
    staff = [_staff(member, language, seen) for member in entry.items("staff")]
    default_age = CONSENT_AGES.get(country, DEFAULT_CONSENT_AGE)
    consent_age = entry.get("consent_age", int, default_age)
    if consent_age is None or not 0 <= consent_age <= 21:
        entry.problem("consent_age", "must be an age from 0 (nobody needs consent) to 21")
        consent_age = default_age
    entry.finish()
    members = tuple(s for s in staff if s)
    return Library(library_id, name, country, language, timezone, members, consent_age)


def _partnerships(root: _Section, libraries: dict[str, Library]) -> tuple[Partnership, ...]:
    found = []
    for entry in root.items("partnerships"):
        members = [str(m) for m in entry.get("libraries", list, []) or []]
        for member in members:
            if member not in libraries:
                entry.problem("libraries", f"no library has id {member!r}")
        if len(set(members)) < 2:
            entry.problem("libraries", "a partnership needs at least two different libraries")
        countries = {libraries[m].country for m in members if m in libraries}
        if len(members) >= 2 and len(countries) == 1:
            entry.problem("libraries", "partner libraries are in the same country")
        partnership_id = entry.get("id", str, "+".join(members)) or "+".join(members)
        entry.finish()
        found.append(Partnership(partnership_id, tuple(members)))
    return tuple(found)


def _hour(section: _Section, name: str, default: int) -> int:
    value = section.get(name, int, default)
    if value is None or not 0 <= value <= 23:
        section.problem(name, "must be an hour from 0 to 23")
        return default
    return value


def _day(section: _Section, name: str, default: int) -> int:
    value = section.get(name, int, default)
    if value is None or not 1 <= value <= 28:
        section.problem(name, "must be a day from 1 to 28 (every month has it)")
        return default
    return value


def _texts(entry: _Section, name: str) -> dict[str, str]:
    table = entry.get(name, dict, {}) or {}
    texts: dict[str, str] = {}
    for language, text in table.items():
        if not _LANGUAGE.match(language) or not isinstance(text, str):
            entry.problem(f"{name}.{language}", "must be text keyed by a language code")
        else:
            texts[language] = text
    if not texts:
        entry.problem(name, 'needs the text in at least one language, e.g. { en = "..." }')
    return texts


def _topic(entry: _Section, partnerships: set[str]) -> Topic:
    month = entry.data.get("month")
    entry.seen.add("month")
    if isinstance(month, int) and not isinstance(month, bool) and 1 <= month <= 12:
        key = f"{month:02d}"
    elif isinstance(month, str) and _MONTH.match(month):
        key = month
    else:
        entry.problem("month", f'must be "YYYY-MM" or a month number 1-12, not {month!r}')
        key = "??"
    partnership = entry.get("partnership", str, "") or ""
    if partnership and partnership not in partnerships:
        entry.problem("partnership", f"no partnership has id {partnership!r}")
    topic = Topic(key, _texts(entry, "subject"), _texts(entry, "body"), partnership)
    entry.finish()
    return topic


def _prompts(root: _Section, partnerships: tuple[Partnership, ...]) -> PromptSettings:
    s = root.section("prompts")
    ids = {p.id for p in partnerships}
    topics = tuple(_topic(entry, ids) for entry in s.items("topics"))
    settings = PromptSettings(_day(s, "day", 1), _hour(s, "hour", 9), topics)
    s.finish()
    return settings


def _newsletter(root: _Section) -> NewsletterSettings:
    s = root.section("newsletter")
    schedule = s.get("schedule", str, "monthly") or "monthly"
    if schedule not in ("weekly", "monthly"):
        s.problem("schedule", f"must be weekly or monthly, not {schedule!r}")
    weekday = (s.get("weekday", str, "monday") or "monday").lower()
    if weekday not in WEEKDAYS:
        s.problem("weekday", f"must be a day of the week in English, not {weekday!r}")
        weekday = "monday"
    settings = NewsletterSettings(
        schedule=schedule,
        weekday=WEEKDAYS.index(weekday),
        day=_day(s, "day", 1),
        hour=_hour(s, "hour", 9),
        name=s.get("name", str, "Staff news") or "Staff news",
    )
    s.finish()
    return settings


def _count(section: _Section, name: str, default: int, low: int, high: int, unit: str) -> int:
    """A whole number of `unit` from `low` to `high`; the default, and a problem named by
    key, for anything else."""
    value = section.get(name, int, default)
    if value is None or not low <= value <= high:
        section.problem(name, f"must be a whole number of {unit} from {low} to {high}")
        return default
    return value


def _retention(root: _Section) -> RetentionSettings:
    s = root.section("retention")
    settings = RetentionSettings(
        originals_days=_count(s, "originals_days", 7, 0, 3650, "days"),
        letters_months=_count(s, "letters_months", 12, 1, 120, "months"),
        left_months=_count(s, "left_months", 12, 0, 120, "months"),
        no_consent_months=_count(s, "no_consent_months", 3, 0, 120, "months"),
    )
    s.finish()
    return settings


def _matching(root: _Section) -> MatchingSettings:
    s = root.section("matching")
    gap = _count(s, "max_age_gap", 2, 0, 100, "years")
    uneven = s.get("uneven", str, "two-pals")
    if uneven not in UNEVEN_RULES:
        s.problem("uneven", f"must be one of {', '.join(UNEVEN_RULES)}, not {uneven!r}")
        uneven = "two-pals"
    weeks = _count(s, "quiet_weeks", 6, 1, 104, "weeks")
    s.finish()
    rules: dict[str, UnevenRule] = {"leave-out": "leave-out", "together": "together"}
    rule = rules.get(uneven, "two-pals")
    return MatchingSettings(max_age_gap=gap, uneven=rule, quiet_weeks=weeks)


def _web(root: _Section) -> WebSettings:
    section = root.section("web")
    settings, problems = parse_web_section(section.data)
    root.problems.extend(problems)
    return settings


def parse(data: dict[str, Any], path: Path) -> Config:
    """Build a `Config` from parsed TOML, or raise `ConfigError` listing every problem."""
    problems: list[str] = []
    root = _Section(data, "", problems)
    base = path.parent
    relay, paths = _relay(root, base)
    smtp = _smtp(root)
    delivery = _delivery(root, base, paths)
    moderation = _moderation(root)
    authentication = _authentication(root)
    imap = _imap(root, base, paths)
    screening = _screening(root)
    attachments = _attachments(root, smtp, paths.warnings)
    libraries = [_library(entry) for entry in root.items("libraries")]
    by_id: dict[str, Library] = {}
    for index, library in enumerate(libraries):
        if library.id in by_id:
            problems.append(f"libraries[{index}].id: {library.id!r} is used twice")
        by_id[library.id] = library
    if not libraries:
        problems.append("libraries: at least one library is required")
    partnerships = _partnerships(root, by_id)
    web = _web(root)
    prompts = _prompts(root, partnerships)
    newsletter = _newsletter(root)
    dkim = _dkim(root, paths)
    commands = _commands(root)
    retention = _retention(root)
    matching = _matching(root)
    root.finish()
    if problems:
        raise ConfigError(problems)
    return Config(
        path,
        relay,
        smtp,
        delivery,
        moderation,
        authentication,
        tuple(libraries),
        partnerships,
        imap,
        screening,
        attachments,
        web,
        prompts,
        newsletter,
        dkim,
        tuple(paths.warnings),
        commands=commands,
        retention=retention,
        matching=matching,
    )


def load(path: Path) -> Config:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot be read ({error})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    return parse(data, path)


def locate(explicit: str | None) -> Path:
    """--config, then $PENPAL_RELAY_CONFIG, then ./config.toml, then the installed server's
    /etc/penpal-relay/config.toml (so `sudo penpal-relay queue list` works on the server from
    any folder). Without any of them, ./config.toml, for the error message."""
    chosen = explicit or os.environ.get(ENV_VAR)
    if chosen:
        return Path(chosen)
    here = Path("config.toml")
    if not here.exists() and SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return here


def shipped_default() -> Path | None:
    """The commented default `config.toml` as shipped (checkout or installed data files)."""
    candidates = [
        Path(__file__).resolve().parents[1] / "config.toml",
        Path(sysconfig.get_path("data")) / "share" / "penpal-relay" / "config.toml",
        Path(sys.prefix) / "share" / "penpal-relay" / "config.toml",
    ]
    return next((p for p in candidates if p.is_file()), None)
