"""When scheduled work is due: pure decisions on an injected clock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from relay import config as config_module
from relay.config import Library, NewsletterSettings, PromptSettings, Topic
from relay.schedule.digests import due, last_scheduled, next_digest
from relay.schedule.prompts import due_month, next_prompt

WELLINGTON = Library("wellington", "Wellington", "NZ", "en", "Pacific/Auckland", ())
DELAWARE = Library("dover", "Dover Public Library", "US", "en", "America/New_York", ())
PROMPTS = PromptSettings(day=1, hour=9, topics=())


@pytest.mark.parametrize(
    ("now", "wellington", "delaware"),
    [
        ("2027-01-01T08:59+13:00", None, "2026-12"),  # not yet in Wellington
        ("2027-01-01T09:00+13:00", "2027-01", "2026-12"),  # Delaware: 31 Dec, 15:00
        ("2027-01-01T08:59-05:00", "2027-01", None),
        ("2027-01-01T09:00-05:00", "2027-01", "2027-01"),
        ("2027-01-20T03:00+00:00", "2027-01", "2027-01"),  # missed: caught up, not skipped
    ],
)
def test_each_library_gets_the_month_at_its_own_morning(
    now: str, wellington: str | None, delaware: str | None
) -> None:
    moment = datetime.fromisoformat(now)
    assert due_month(WELLINGTON, PROMPTS, moment) == wellington
    assert due_month(DELAWARE, PROMPTS, moment) == delaware


def test_most_specific_topic_wins() -> None:
    general = Topic("01", {"en": "every January"}, {"en": "x"})
    this_year = Topic("2027-01", {"en": "January 2027"}, {"en": "x"})
    ours = Topic("01", {"en": "our January"}, {"en": "x"}, partnership="a+b")
    settings = PromptSettings(1, 9, (general, this_year, ours))
    assert settings.topic_for("2027-01", "a+b") == ours
    assert settings.topic_for("2027-01", "c+d") == this_year
    assert settings.topic_for("2028-01", "c+d") == general
    assert settings.topic_for("2028-02", "c+d") is None


WEEKLY = NewsletterSettings("weekly", weekday=0, day=1, hour=9, name="News")
MONTHLY = NewsletterSettings("monthly", weekday=0, day=15, hour=9, name="News")


def test_weekly_digest_on_monday_morning_local_time() -> None:
    wednesday = datetime.fromisoformat("2027-03-03T12:00-05:00")
    assert last_scheduled(WEEKLY, DELAWARE, wednesday).isoformat() == "2027-03-01T09:00:00-05:00"
    assert due(WEEKLY, DELAWARE, wednesday, last=None)
    assert not due(WEEKLY, DELAWARE, wednesday, last="2027-03-01T14:00:00+00:00")
    next_monday = datetime.fromisoformat("2027-03-08T09:00-05:00")
    assert due(WEEKLY, DELAWARE, next_monday, last="2027-03-01T14:00:00+00:00")


def test_monthly_digest_before_the_day_looks_at_last_month() -> None:
    early = datetime.fromisoformat("2027-03-10T12:00+13:00")
    assert last_scheduled(MONTHLY, WELLINGTON, early).date().isoformat() == "2027-02-15"
    assert not due(MONTHLY, WELLINGTON, early, last="2027-02-15T09:30:00+13:00")
    on_the_day = datetime.fromisoformat("2027-03-15T09:00+13:00")
    assert due(MONTHLY, WELLINGTON, on_the_day, last="2027-02-15T09:30:00+13:00")


def test_next_digest_and_next_prompt_for_the_program_page() -> None:
    config = config_module.load(Path(__file__).resolve().parents[2] / "config.toml")
    riverside = config.library("riverside")
    assert riverside is not None
    now = datetime.fromisoformat("2027-01-10T12:00-05:00")
    upcoming = next_prompt(config, riverside, now)
    assert upcoming is not None
    assert upcoming[0].isoformat() == "2027-02-01T09:00:00-05:00"  # February's topic
    assert upcoming[1] == "This month: the place where you live"
    assert next_digest(MONTHLY, DELAWARE, now).isoformat() == "2027-01-15T09:00:00-05:00"
    assert next_digest(WEEKLY, DELAWARE, now).isoformat() == "2027-01-11T09:00:00-05:00"
