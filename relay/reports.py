"""The program report: figures for a board or a funder, with no personal data in them.

`build` reads the store (the hot letter shards and the archive, reduced letters included:
they keep their libraries, status and dates) and the monthly prompts' journals, and counts
for the months `start`..`end` (inclusive, "YYYY-MM"), of a partnership's libraries (the
letters between them: a library may be in two partnerships) or of every library:

- letters per month per writer's library: `held` (sent by the writer), `approved`,
  `rejected`, `delivered`, `bounced`, `failed`, each counted in the month the event happened
  (its first step of that kind in the letter's history);
- the median hours from held to approval, of the letters approved in the period;
- active pairs: pairs of participants between whom a letter was delivered in the period;
- the reply rate: of the letters delivered in the period, the share the pal answered (wrote
  back to the writer) after delivery and before the period's end;
- participants by age band (`relay.consent.youngest_age` at the period's end) and language:
  those enrolled by the period's end (`created_at`) who had not left before its start
  (`left_at`);
- prompts sent per month, and the letters their receivers wrote within `PROMPT_FOLLOW_DAYS`
  after the prompt day.

A reduced letter has lost who wrote it: it counts in the letters and the approval time, not
in pairs, replies or letters after a prompt. Names, addresses, masked addresses and
subjects never enter a `Report`; rendering (md, csv, html) uses only its figures.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from relay.config import Config
from relay.consent import youngest_age
from relay.store import Store
from relay.store.files import read_lines
from relay.store.records import LEFT, Letter, Participant

EVENTS = ("held", "approved", "rejected", "delivered", "bounced", "failed")
PROMPT_FOLLOW_DAYS = 14
UNKNOWN = "unknown"
# (lowest age, band); a participant falls in the last band whose lowest age they have.
AGE_BANDS = ((0, "0-8"), (9, "9-11"), (12, "12-14"), (15, "15-17"), (18, "18+"))
FORMATS = ("md", "csv", "html")
# The longest period a report covers, and its earliest year: each month adds rows, tables
# and chart bars, and the relay kept no letter before then.
MOST_MONTHS = 60
FIRST_YEAR = 2000


@dataclass(frozen=True)
class Report:
    start: str  # "YYYY-MM"
    end: str
    partnership: str  # "" for every library
    libraries: tuple[str, ...]
    months: tuple[str, ...]
    # (month, library) -> event -> letters
    letters: dict[tuple[str, str], dict[str, int]]
    approval_hours: float | None  # median, held to approval; None when none was approved
    approval_hours_by_library: dict[str, float | None]
    active_pairs: int
    delivered: int  # delivered in the period, whose writer and pal are known
    answered: int  # of those, answered by the pal within the period
    age_bands: dict[str, int]
    languages: dict[str, int]
    prompts: dict[str, int]  # month -> prompts sent
    after_prompts: dict[str, int]  # month -> letters within PROMPT_FOLLOW_DAYS of the prompt

    @property
    def reply_rate(self) -> float | None:
        return self.answered / self.delivered if self.delivered else None


def months_between(start: str, end: str) -> tuple[str, ...]:
    year, month = int(start[:4]), int(start[5:])
    found = []
    while f"{year:04d}-{month:02d}" <= end:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(found)


def period_problem(start: str, end: str) -> str:
    """ "early" for a period that starts before `FIRST_YEAR`, "long" for one of more than
    `MOST_MONTHS` months, "" otherwise (both "YYYY-MM", `start` <= `end`)."""
    if int(start[:4]) < FIRST_YEAR:
        return "early"
    months = (int(end[:4]) - int(start[:4])) * 12 + int(end[5:]) - int(start[5:]) + 1
    return "long" if months > MOST_MONTHS else ""


def year_ending(end: str) -> str:
    """The first of the twelve months that end with `end` ("YYYY-MM")."""
    first = int(end[:4]) * 12 + int(end[5:]) - 1 - 11
    return f"{first // 12:04d}-{first % 12 + 1:02d}"


def _last_day(month: str) -> date:
    year, number = int(month[:4]), int(month[5:])
    following = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return following - timedelta(days=1)


def age_band(participant: Participant, today: date) -> str:
    age = youngest_age(participant.birth_year, participant.age_band, today)
    if age is None:
        return UNKNOWN
    return [band for lowest, band in AGE_BANDS if age >= lowest][-1]


def _month_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"  # strftime takes five times as long


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def events_of(letter: Letter) -> dict[str, datetime]:
    """When each reported event first happened to the letter; a record without a history
    (written before histories were kept) reads its dates."""
    found: dict[str, datetime] = {}
    for step in letter.history:
        at = _when(step.at)
        if step.event in EVENTS and at is not None and step.event not in found:
            found[step.event] = at
    fallbacks = [("held", letter.received_at)]
    if letter.status != "held":
        fallbacks.append((letter.status, letter.final_at or letter.decided_at))
    if letter.status not in ("held", "rejected"):
        fallbacks.append(("approved", letter.decided_at))
    for event, text in fallbacks:
        at = _when(text)
        if event in EVENTS and event not in found and at is not None:
            found[event] = at
    if letter.status == "bounced" and "delivered" not in found:
        at = _when(letter.delivered_at)
        if at is not None:
            found["delivered"] = at
    return found


def prompts_sent(data_dir: Path, month: str) -> set[str]:
    """Who was sent the month's prompt: the participants the journal kept by
    `relay.schedule.prompts` marks "sent" (`<data_dir>/prompts/YYYY-MM.jsonl`)."""
    lines = read_lines(data_dir / "prompts" / f"{month}.jsonl")
    return {str(line.get("p")) for line in lines if line.get("s") == "sent"}


@dataclass
class _Tally:
    """What the period's letters add up to, counted one letter at a time."""

    start: str
    end: str
    libraries: tuple[str, ...]
    letters: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    waits: dict[str, list[float]] = field(default_factory=dict)  # library -> hours
    pairs: set[frozenset[str]] = field(default_factory=set)
    delivered: list[tuple[Letter, datetime]] = field(default_factory=list)
    written: dict[tuple[str, str], list[datetime]] = field(default_factory=dict)  # held times

    def __post_init__(self) -> None:
        months = months_between(self.start, self.end)
        self.letters = {(m, x): dict.fromkeys(EVENTS, 0) for m in months for x in self.libraries}
        self.waits = {library: [] for library in self.libraries}

    def in_period(self, at: datetime) -> bool:
        return self.start <= _month_of(at) <= self.end

    def add(self, letter: Letter) -> None:
        events = events_of(letter)
        for event, at in events.items():
            if self.in_period(at):
                self.letters[(_month_of(at), letter.sender_library)][event] += 1
        approved, held = events.get("approved"), events.get("held")
        if approved is not None and held is not None and self.in_period(approved):
            self.waits[letter.sender_library].append((approved - held).total_seconds() / 3600)
        if not letter.sender or not letter.recipient:
            return  # reduced: who wrote to whom is not known any more
        if held is not None:
            self.written.setdefault((letter.sender, letter.recipient), []).append(held)
        arrived = events.get("delivered")
        if arrived is not None and self.in_period(arrived):
            self.pairs.add(frozenset((letter.sender, letter.recipient)))
            self.delivered.append((letter, arrived))

    def answered(self) -> int:
        """Delivered letters the pal wrote back to, after delivery, by the period's end."""
        last_day = _last_day(self.end)
        return sum(
            any(
                at <= reply and reply.date() <= last_day
                for reply in self.written.get((letter.recipient, letter.sender), [])
            )
            for letter, at in self.delivered
        )


def build(
    config: Config,
    store: Store,
    start: str,
    end: str,
    partnership: str = "",
    letters: Sequence[Letter] | None = None,
) -> Report:
    """The report of `start`..`end` ("YYYY-MM", months in UTC) for one partnership's
    libraries ("": every library). Reads every letter kept (`Store.all_letters`, unless the
    caller read them already: `letters`), every archive file once: about 12 s per 100,000
    letters, most of it reading the records."""
    if partnership:
        chosen = next(p for p in config.partnerships if p.id == partnership)
        libraries = tuple(chosen.libraries)
    else:
        libraries = tuple(library.id for library in config.libraries)
    tally = _Tally(start, end, libraries)
    for letter in store.all_letters() if letters is None else letters:
        # a partnership's report counts only letters between its own libraries: one of
        # them may be in another partnership too
        within = not partnership or letter.recipient_library in libraries
        if letter.sender_library in libraries and within:
            tally.add(letter)
    people = [p for p in store.participants() if p.library in libraries]
    everyone = [p for p in people if _taking_part(p, start, end)]
    months = months_between(start, end)
    prompts, after = _prompt_figures(config, months, people, tally.written)
    all_waits = [hours for found in tally.waits.values() for hours in found]
    return Report(
        start=start,
        end=end,
        partnership=partnership,
        libraries=libraries,
        months=months,
        letters=tally.letters,
        approval_hours=_median(all_waits),
        approval_hours_by_library={x: _median(found) for x, found in tally.waits.items()},
        active_pairs=len(tally.pairs),
        delivered=len(tally.delivered),
        answered=tally.answered(),
        age_bands=_ordered(
            Counter(age_band(p, _last_day(end)) for p in everyone),
            [band for _, band in AGE_BANDS] + [UNKNOWN],
        ),
        languages=dict(sorted(Counter(p.language for p in everyone).items())),
        prompts=prompts,
        after_prompts=after,
    )


def _taking_part(person: Participant, start: str, end: str) -> bool:
    """Enrolled by the period's end and not left before its start (someone who left at an
    unknown time counts as gone; someone enrolled at an unknown time as there)."""
    enrolled = _when(person.created_at)
    if enrolled is not None and enrolled.date() > _last_day(end):
        return False
    left = _when(person.left_at)
    if left is None:
        return person.status != LEFT
    return _month_of(left) >= start


def _prompt_figures(
    config: Config,
    months: Iterable[str],
    people: list[Participant],
    written: dict[tuple[str, str], list[datetime]],
) -> tuple[dict[str, int], dict[str, int]]:
    """Prompts sent per month to `people` (those who left since included), and the letters
    each receiver wrote from the prompt's hour (`[prompts] day` and `hour`, their library's
    time) to `PROMPT_FOLLOW_DAYS` later."""
    zones = {library.id: ZoneInfo(library.timezone) for library in config.libraries}
    by_id = {p.id: p for p in people}
    by_writer: dict[str, list[datetime]] = {}
    for (writer, _pal), times in written.items():
        by_writer.setdefault(writer, []).extend(times)
    settings = config.prompts
    prompts: dict[str, int] = {}
    after: dict[str, int] = {}
    for month in months:
        receivers = [
            by_id[pid] for pid in sorted(prompts_sent(config.relay.data_dir, month)) if pid in by_id
        ]
        prompts[month] = len(receivers)
        count = 0
        for person in receivers:
            day = min(settings.day, _last_day(month).day)
            sent = datetime(
                int(month[:4]),
                int(month[5:]),
                day,
                settings.hour,
                tzinfo=zones.get(person.library, ZoneInfo("UTC")),
            )
            until = sent + timedelta(days=PROMPT_FOLLOW_DAYS)
            count += sum(sent <= at < until for at in by_writer.get(person.id, []))
        after[month] = count
    return prompts, after


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _ordered(counts: Counter[str], order: list[str]) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in order}


# --- rendering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Wording:
    """The words a rendered report reads in: the `report_*` words of
    `templates/web/<lang>/words.html` (the staff member's language), and library names."""

    words: Mapping[str, Any]
    language: str = "en"
    names: Mapping[str, str] = field(default_factory=dict)  # library id -> name

    def text(self, key: str, *arguments: object) -> str:
        """A word as plain text (a macro called with `arguments`, unescaped)."""
        value = self.words[key]
        return html.unescape(str(value(*arguments) if arguments else value))

    def library(self, library: str) -> str:
        return self.names.get(library, library)


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _rate(report: Report, wording: Wording) -> str:
    rate = report.reply_rate
    if rate is None:
        return "-"
    return wording.text("report_rate", round(rate * 100), report.answered, report.delivered)


def _title(report: Report, wording: Wording) -> str:
    if report.partnership:
        scope = " ⇄ ".join(wording.library(x) for x in report.libraries)
    else:
        scope = wording.text("report_scope_all")
    return f"{wording.text('report_heading', report.start, report.end)}, {scope}"


def rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """Every figure as (figure, month, library, group, value): the csv's lines."""
    found: list[tuple[str, str, str, str, str]] = []
    for (month, library), counts in report.letters.items():
        found += [("letters", month, library, event, str(n)) for event, n in counts.items()]
    found.append(("approval_hours_median", "", "", "", _hours(report.approval_hours)))
    for library, hours in report.approval_hours_by_library.items():
        found.append(("approval_hours_median", "", library, "", _hours(hours)))
    found.append(("active_pairs", "", "", "", str(report.active_pairs)))
    found.append(("delivered", "", "", "", str(report.delivered)))
    found.append(("answered", "", "", "", str(report.answered)))
    rate = report.reply_rate
    found.append(("reply_rate", "", "", "", "" if rate is None else f"{rate:.4f}"))
    found += [("participants_by_age", "", "", b, str(n)) for b, n in report.age_bands.items()]
    found += [("participants_by_language", "", "", k, str(n)) for k, n in report.languages.items()]
    found += [("prompts_sent", m, "", "", str(n)) for m, n in report.prompts.items()]
    found += [("letters_after_prompt", m, "", "", str(n)) for m, n in report.after_prompts.items()]
    return found


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("figure", "month", "library", "group", "value"))
    writer.writerows(rows(report))
    return out.getvalue()


def _tables(report: Report, wording: Wording) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, header, rows) of every table, shared by md and html."""
    words = wording.words
    letters = [
        [
            month,
            wording.library(library),
            *(str(report.letters[(month, library)][e]) for e in EVENTS),
        ]
        for month in report.months
        for library in report.libraries
    ]
    summary = [
        [wording.text("report_median_hours"), _hours(report.approval_hours)],
        *[
            [wording.text("report_median_at", wording.library(library)), _hours(hours)]
            for library, hours in report.approval_hours_by_library.items()
        ],
        [wording.text("report_active_pairs"), str(report.active_pairs)],
        [wording.text("report_reply_rate"), _rate(report, wording)],
    ]
    prompts = [
        [month, str(report.prompts[month]), str(report.after_prompts[month])]
        for month in report.months
    ]
    unknown = wording.text("report_unknown")
    return [
        (
            wording.text("report_letters"),
            [
                wording.text("report_month"),
                wording.text("report_library"),
                *(str(words["report_events"][e]) for e in EVENTS),
            ],
            letters,
        ),
        (
            wording.text("report_summary"),
            [wording.text("report_figure"), wording.text("report_value")],
            summary,
        ),
        (
            wording.text("report_by_age"),
            [wording.text("report_age"), wording.text("report_participants")],
            [[unknown if k == UNKNOWN else k, str(n)] for k, n in report.age_bands.items()],
        ),
        (
            wording.text("report_by_language"),
            [wording.text("report_language"), wording.text("report_participants")],
            [[k, str(n)] for k, n in report.languages.items()],
        ),
        (
            wording.text("report_prompts"),
            [
                wording.text("report_month"),
                wording.text("report_prompts_sent"),
                wording.text("report_after_prompts", PROMPT_FOLLOW_DAYS),
            ],
            prompts,
        ),
    ]


def to_markdown(report: Report, wording: Wording) -> str:
    lines = [f"# {_title(report, wording)}", ""]
    for heading, header, body in _tables(report, wording):
        lines += [f"## {heading}", "", "| " + " | ".join(header) + " |"]
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(row) + " |" for row in body]
        lines.append("")
    return "\n".join(lines)


def _png(figure: object) -> str:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, bbox_inches="tight")  # type: ignore[attr-defined]
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def charts(report: Report, wording: Wording) -> dict[str, str]:
    """The charts as PNG data URIs: letters per month per library, participants by age;
    keyed by their English captions (`report_charts` words translate them), their axes and
    legends in the wording's language, libraries by name."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no display needed
    from matplotlib.figure import Figure

    found = {}
    figure = Figure(figsize=(8, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    width = 0.8 / max(len(report.libraries), 1)
    for index, library in enumerate(report.libraries):
        sent = [report.letters[(m, library)]["held"] for m in report.months]
        positions = [i + index * width for i in range(len(report.months))]
        axes.bar(positions, sent, width=width, label=wording.library(library))
    axes.set_xticks([i + 0.4 - width / 2 for i in range(len(report.months))], report.months)
    axes.tick_params(axis="x", labelrotation=45)
    _counting(axes, wording.text("report_axis_letters"))
    axes.legend()
    found["Letters sent per month per library"] = _png(figure)
    figure = Figure(figsize=(6, 3))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    unknown = wording.text("report_unknown")
    bands = [unknown if band == UNKNOWN else band for band in report.age_bands]
    axes.bar(bands, list(report.age_bands.values()))
    _counting(axes, wording.text("report_participants"))
    found["Participants by age"] = _png(figure)
    return found


def _counting(axes: Any, label: str) -> None:
    """A y axis of whole numbers from 0, even when every count is 0."""
    from matplotlib.ticker import MaxNLocator

    axes.set_ylabel(label)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0, top=max(axes.get_ylim()[1], 1))


def to_html(report: Report, wording: Wording) -> str:
    title = html.escape(_title(report, wording))
    captions = wording.words["report_charts"]
    parts = [
        "<!doctype html>",
        f'<html lang="{html.escape(wording.language)}"><head><meta charset="utf-8">',
        f"<title>{title}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
        "table{border-collapse:collapse;margin-bottom:1.5rem}"
        "td,th{border:1px solid #999;padding:.2rem .5rem;text-align:left}</style>",
        f"</head><body><h1>{title}</h1>",
    ]
    for key, uri in charts(report, wording).items():
        caption = str(captions.get(key, key))
        parts.append(f'<figure><img src="{uri}" alt="{html.escape(caption)}">')
        parts.append(f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    for heading, header, body in _tables(report, wording):
        parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>")
        parts += [f"<th>{html.escape(cell)}</th>" for cell in header]
        parts.append("</tr>")
        for row in body:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render(report: Report, form: str, wording: Wording) -> str:
    """The report as csv (figure keys, event keys and library ids as they are: for a
    spreadsheet or a program to read), md or html (in the wording's words)."""
    if form == "csv":
        return to_csv(report)
    if form == "html":
        return to_html(report, wording)
    return to_markdown(report, wording)
