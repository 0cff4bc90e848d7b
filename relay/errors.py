"""One family of exceptions for the relay.

Every error a person can cause (a bad config key, an unknown participant, a decision by
someone who is not a moderator) is a `UserError`: the CLI prints its message on one line and
exits 1, `serve` logs it and keeps running. Subclasses also inherit the builtin they are, so
callers may catch either.
"""

from __future__ import annotations


class RelayError(Exception):
    """Base of every error raised on purpose by the relay."""


class UserError(RelayError):
    """Something a person asked for cannot be done; the message says why, in one line."""


class ConfigError(UserError, ValueError):
    """The configuration does not validate; `problems` lists `key.path: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class InvalidField(UserError, ValueError):
    """One field of a request (`email`, `library`, `name`, `guardian`, ...) is not acceptable.

    The message names the field, not the way it was entered: the CLI shows it as its flag
    (`--email: ...`), the dashboard beside the field's label.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class AlreadyEnrolled(InvalidField):
    """This person is already enrolled at this library under this display name."""

    def __init__(self, problem: str) -> None:
        super().__init__("email", problem)


class NotFound(UserError, LookupError):
    """A participant, letter or pairing that does not exist."""


class NotAllowed(UserError, PermissionError):
    """The person asking may not do this (for example, not a moderator of that library)."""


class DeliveryError(RelayError):
    """A transport could not hand a message over."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class DeliveryTimeout(DeliveryError, TimeoutError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False)
