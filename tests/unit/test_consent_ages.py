"""Who needs a guardian's consent: ages counted cautiously, consent ages by country."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from relay import config as config_module
from relay import consent, participants
from relay.context import open_context
from relay.errors import InvalidField
from tests.conftest import MAYA, config_text

TODAY = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("birth_year", "band", "youngest"),
    [(2014, "", 11), (2013, "", 12), (2026, "", 0), (0, "9-11", 9), (0, "13+", 13), (0, "", None)],
)
def test_the_youngest_age_a_participant_can_have(
    birth_year: int, band: str, youngest: int | None
) -> None:
    assert consent.youngest_age(birth_year, band, TODAY) == youngest


@pytest.mark.parametrize(
    ("value", "field"), [("20x3", "birth_year"), ("1850", "birth_year"), ("2031", "birth_year")]
)
def test_a_year_of_birth_that_cannot_be_is_refused_by_name(value: str, field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        consent.check_birth_year(value, TODAY)
    assert raised.value.field == field


@pytest.mark.parametrize("band", ["11-9", "nine", "9-", "-3"])
def test_an_age_band_that_cannot_be_is_refused_by_name(band: str) -> None:
    with pytest.raises(InvalidField) as raised:
        consent.check_age_band(band)
    assert raised.value.field == "age_band"


def test_consent_age_comes_from_the_country_unless_the_library_sets_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    text = config_text(tmp_path / "data")
    path.write_text(text)
    loaded = config_module.load(path)
    us, chile = loaded.library("riverside"), loaded.library("valparaiso")
    assert us is not None and chile is not None
    assert (us.consent_age, chile.consent_age) == (13, 14)
    path.write_text(text.replace('country = "CL"', 'country = "CL"\nconsent_age = 16', 1))
    chile = config_module.load(path).library("valparaiso")
    assert chile is not None and chile.consent_age == 16
    path.write_text(text.replace('country = "CL"', 'country = "CL"\nconsent_age = 40', 1))
    with pytest.raises(config_module.ConfigError, match=r"libraries\[1\]\.consent_age"):
        config_module.load(path)


def test_a_child_under_the_consent_age_is_enrolled_pending_and_needs_a_guardian(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path / "data"))
    ctx = open_context(config_module.load(path))
    young = participants.Details(birth_year=TODAY.year - 9)
    with pytest.raises(InvalidField) as raised:
        participants.enroll(ctx, "riverside", "Maya", MAYA, details=young)
    assert raised.value.field == "guardian"
    maya = participants.enroll(
        ctx,
        "riverside",
        "Maya",
        MAYA,
        guardian="parent@example.net",
        details=participants.Details(
            birth_year=str(TODAY.year - 9), interests="Football; drawing, football"
        ),
    )
    assert (maya.consent, maya.may_correspond) == ("pending", False)
    assert maya.interests == ("football", "drawing")
    adult = participants.enroll(
        ctx, "riverside", "Lee", "lee@example.net", details=participants.Details(age_band="18+")
    )
    assert (adult.consent, adult.may_correspond) == ("", True)
