"""The `[web]` table of `config.toml`: where the dashboard listens and how sign-in behaves.

Parsed like the rest of the configuration: every problem is collected and named by its key
path (`web.listen: must be HOST:PORT, not 'nowhere'`), and unknown keys are problems too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_REJECT_REASONS = (
    "Please don't share your phone number, home address or other private details in letters.",
    "Please keep your letter kind and friendly to your pen pal.",
    "Please don't send links to other websites in letters.",
    "Please write the letter again in your own words.",
)


@dataclass(frozen=True)
class WebSettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8025
    session_idle_minutes: int = 60
    public_url: str = ""  # base of sign-in links; empty: http://<listen address>
    reject_reasons: tuple[str, ...] = DEFAULT_REJECT_REASONS
    secure_cookies: bool = False  # True behind TLS: cookies then travel only over https

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


def _listen(value: Any, problems: list[str]) -> tuple[str, int] | None:
    text = value if isinstance(value, str) else ""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        problems.append(f"web.listen: must be HOST:PORT, not {value!r}")
        return None
    return host.strip("[]"), int(port)


def _idle_minutes(value: Any, problems: list[str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append("web.session_idle_minutes: must be a whole number greater than 0")
        return None
    return value


def _public_url(value: Any, problems: list[str]) -> str | None:
    if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
        problems.append(f"web.public_url: must start with http:// or https://, not {value!r}")
        return None
    return value.rstrip("/")


def _reject_reasons(value: Any, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append("web.reject_reasons: must be a list of non-empty strings")
        return None
    return tuple(v.strip() for v in value)


def _secure_cookies(value: Any, problems: list[str]) -> bool | None:
    if not isinstance(value, bool):
        problems.append("web.secure_cookies: must be true or false")
        return None
    return value


def parse_web_section(data: dict[str, Any]) -> tuple[WebSettings, list[str]]:
    """Settings from the `[web]` table (defaults for what is missing) and its problems."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in data:
        if key not in ("listen", *_READERS):
            problems.append(f"web.{key}: unknown key")
    if "listen" in data and (address := _listen(data["listen"], problems)):
        values["listen_host"], values["listen_port"] = address
    for key, read in _READERS.items():
        if key in data and (value := read(data[key], problems)) is not None:
            values[key] = value
    return WebSettings(**values), problems


_READERS = {
    "session_idle_minutes": _idle_minutes,
    "public_url": _public_url,
    "reject_reasons": _reject_reasons,
    "secure_cookies": _secure_cookies,
}
