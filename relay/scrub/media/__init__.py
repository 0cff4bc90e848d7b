"""Cleaning files per medium: recordings, videos, documents and text, each its own way.

Every cleaner takes the bytes of one attachment and returns a `Cleaned` file or raises
`Uncleanable` with a reason in plain words for staff. A file that cannot be proven clean is
never delivered as sent: the caller removes it and tells staff why. Types are read from the
bytes, never from the headers. Pictures are rebuilt in `relay.scrub.attachments`.

- `audio`: MP3, Ogg Vorbis and Opus, M4A/AAC, FLAC and WAV, remuxed by ffmpeg without any
  tag, cover picture or chapter, then checked by mutagen and ffprobe.
- `video`: MP4, MOV, WebM and Matroska, remuxed by ffmpeg keeping only picture and sound
  streams, then checked by ffprobe.
- `documents`: PDF, rewritten by pikepdf without metadata, scripts, actions, links or
  embedded files, then checked again; its text is read with pypdfium2 for staff.
- `text`: plain text (private values redacted) and HTML (sanitized like a letter's HTML).

`runner` runs ffmpeg and ffprobe with a time limit, a memory limit and no network; it is the
only place in scrubbing that starts a process or writes a temporary file.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Cleaned", "Uncleanable"]


class Uncleanable(Exception):
    """The file could not be proven clean; `reason` says why, in plain words for staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Cleaned:
    """A cleaned file: new bytes, the type they really are, and what staff should check.

    `had_hidden_details` says whether the original carried tags, metadata or scripts that
    were taken out (staff see it in the letter's removals). `text` is the visible text read
    from a document, for the caller to look for private values in.
    """

    data: bytes
    content_type: str
    extension: str
    had_hidden_details: bool = False
    flags: tuple[str, ...] = ()
    text: str = ""
