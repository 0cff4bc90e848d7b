"""The outbox: the one door out (`door`), the worker that sends and only reports outcomes
(`worker`), its transports (`smtp`, `maildir`), and the typed entries they share (`entries`).

Nothing here imports the relay's core (letters, notices, prompts): the core learns outcomes
through the `Outcomes` handlers that `serve` registers.
"""

from relay.outbox.entries import (
    DigestIssue,
    GuardianCopy,
    LetterCopy,
    ListPost,
    MonthlyPrompt,
    Notice,
    OutboxEntry,
    Purpose,
    TeammateCopy,
    Tries,
)

__all__ = [
    "DigestIssue",
    "GuardianCopy",
    "LetterCopy",
    "ListPost",
    "MonthlyPrompt",
    "Notice",
    "OutboxEntry",
    "Purpose",
    "TeammateCopy",
    "Tries",
]
