"""The [web] table: defaults, every problem named by its key path, and the words per language."""

from __future__ import annotations

from relay.config_web import WebSettings, parse_web_section
from relay.web.pages import LANGUAGES, Pages


def test_an_empty_web_table_gives_the_defaults() -> None:
    settings, problems = parse_web_section({})
    assert problems == []
    assert settings == WebSettings()
    assert settings.listen == "127.0.0.1:8025" and settings.reject_reasons


def test_every_key_is_read() -> None:
    settings, problems = parse_web_section(
        {
            "listen": "[::1]:9000",
            "session_idle_minutes": 20,
            "public_url": "https://pals.example.org/",
            "reject_reasons": ["Be kind."],
            "secure_cookies": True,
        }
    )
    assert problems == []
    assert (settings.listen_host, settings.listen_port) == ("::1", 9000)
    assert settings.public_url == "https://pals.example.org"
    assert settings.reject_reasons == ("Be kind.",) and settings.secure_cookies


def test_problems_are_named_by_key_path() -> None:
    _, problems = parse_web_section(
        {
            "listen": "nowhere",
            "session_idle_minutes": 0,
            "public_url": "pals.example.org",
            "reject_reasons": ["", 3],
            "secure_cookies": "yes",
            "colour": "blue",
        }
    )
    assert problems == [
        "web.colour: unknown key",
        "web.listen: must be HOST:PORT, not 'nowhere'",
        "web.session_idle_minutes: must be a whole number greater than 0",
        "web.public_url: must start with http:// or https://, not 'pals.example.org'",
        "web.reject_reasons: must be a list of non-empty strings",
        "web.secure_cookies: must be true or false",
    ]


def test_every_language_words_everything_english_does() -> None:
    pages = Pages(None)
    english = set(pages.words("en"))
    for language in LANGUAGES:
        module = pages.env.get_template(f"web/{language}/words.html").module
        assert {k for k in vars(module) if not k.startswith("_")} == english, language
    assert pages.words("pt-BR") == pages.words("en")  # no Portuguese yet: English, not an error
