"""A letter's files as they will be delivered, and their previews, for the letter's staff.

Served from the relay itself (the page's policy allows pictures and media from 'self'
only), behind the same sign-in and the same rule as the letter page: only staff of the
writer's library. A file is what the pal will receive, under its neutral name. Only
pictures, recordings and videos are shown in the browser; anything else (a PDF, an HTML
or text file) is offered as a download, so nothing a patron sent is ever rendered as a
page of the dashboard's own origin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from relay import letters
from relay.context import Context
from relay.letters.previews import Preview, preview_of
from relay.scrub import Attachment
from relay.web.dashboard import PageNotFound, dashboard_of
from relay.web.letters import of_library

T = TypeVar("T")

# Shown in the page (<img>, <audio>, <video>); everything else is a download.
_PICTURES_SHOWN = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def file_of(ctx: Context, library_id: str, letter_id: int, number: int) -> Attachment | None:
    """File `number` (from 1) of a letter of this library, as delivered; None otherwise."""
    letter = of_library(ctx, library_id, letter_id)
    if letter is None:
        return None
    attachments = letters.as_delivered(ctx, letter).attachments
    return attachments[number - 1] if 1 <= number <= len(attachments) else None


def preview_for(ctx: Context, library_id: str, letter_id: int, number: int) -> Preview | None:
    attachment = file_of(ctx, library_id, letter_id, number)
    return preview_of(attachment) if attachment is not None else None


def shown_inline(attachment: Attachment) -> bool:
    major = attachment.content_type.split("/", 1)[0]
    return attachment.content_type in _PICTURES_SHOWN or major in ("audio", "video")


def disposition(attachment: Attachment) -> str:
    """RFC 6266: an ASCII name for old clients and the exact one (RFC 5987) for the rest."""
    kind = "inline" if shown_inline(attachment) else "attachment"
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
        for c in attachment.filename
    )
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(attachment.filename, safe='')}"


async def _found(request: Request, fn: Callable[[Context, str, int, int], T | None]) -> T:
    """What `fn` finds for the visitor's library; 404 for a letter of another library."""
    dash = dashboard_of(request)
    visitor = dash.visitor(request)
    letter_id = int(request.path_params["letter_id"])
    number = int(request.path_params["number"])
    found = await dash.run(fn, dash.context(), visitor.library.id, letter_id, number)
    if found is None:
        raise PageNotFound()
    return cast(T, found)


async def letter_file(request: Request) -> Response:
    attachment = await _found(request, file_of)
    media_type = attachment.content_type
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"  # text files are delivered as UTF-8
    return Response(
        attachment.data,
        media_type=media_type,
        headers={"Content-Disposition": disposition(attachment)},
    )


async def file_preview(request: Request) -> Response:
    preview = await _found(request, preview_for)
    return Response(preview.data, media_type=preview.content_type)
