"""Videos: MP4, MOV, WebM and Matroska, picture and sound only, without any tag.

Phones write where a video was filmed (`©xyz` in MP4's udta, QuickTime's
`com.apple.quicktime.location.ISO6709`), the device's and owner's names, and sometimes
subtitle, data or attachment streams (Matroska attachments can be any file). ffmpeg copies
only the video and audio streams into a fresh container (`-c copy`: no re-encoding) with no
global, per-stream or chapter metadata, in bit-exact mode so it adds no encoder name of its
own; MP4 and MOV are written with `+faststart`, which builds a new `moov` without the old
`udta`. ffprobe then reads the result: it must have a duration and a picture or sound
stream, and no tag beyond the technical ones (brand, handler, language). Cover pictures
(`0:V` maps moving pictures only) are left out with the rest. Anything short of that and
the video is removed.

The container is recognised from the first bytes (`ftyp` box, or EBML's magic number);
ffmpeg is told which demuxer to use and never guesses.
"""

from __future__ import annotations

from relay.scrub.media import Cleaned, Uncleanable
from relay.scrub.media.runner import Container, duration, personal_tags, probe, remux

__all__ = ["clean_video"]


_MP4 = Container("mov", "mp4", "video/mp4", "mp4", ("-movflags", "+faststart"))
_MOV = Container("mov", "mov", "video/quicktime", "mov", ("-movflags", "+faststart"))
_WEBM = Container("matroska", "webm", "video/webm", "webm")
_MKV = Container("matroska", "matroska", "video/x-matroska", "mkv")
_QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip")

_REMUX = (
    "-map", "0:V?", "-map", "0:a?", "-c", "copy", "-dn", "-sn",
    "-map_metadata", "-1", "-map_metadata:s:v", "-1", "-map_metadata:s:a", "-1",
    "-map_chapters", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
    "-flags:a", "+bitexact",
)  # fmt: skip


def _container(data: bytes) -> Container | None:
    box = data[4:8]
    if box == b"ftyp":
        return _MOV if data[8:12] == b"qt  " else _MP4
    if box in _QUICKTIME_BOXES:
        return _MOV
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return _WEBM if b"webm" in data[:64] else _MKV
    return None


def _had_details(found: dict[str, object]) -> bool:
    streams = found.get("streams", [])
    kinds = (
        {s.get("codec_type") for s in streams if isinstance(s, dict)}
        if isinstance(streams, list)
        else set()
    )
    return bool(personal_tags(found)) or bool(kinds - {"video", "audio"})


def clean_video(data: bytes) -> Cleaned:
    """Picture and sound only, in the container they came in; raises `Uncleanable` otherwise."""
    container = _container(data)
    if container is None:
        raise Uncleanable("it is not a video the relay can clean (MP4, MOV, WebM, MKV)")
    before = probe(data, container.demuxer)
    cleaned = remux(data, container.demuxer, [*_REMUX, *container.extra], container.muxer)
    after = probe(cleaned, container.demuxer)
    if personal_tags(after):
        raise Uncleanable("its hidden details could not all be removed")
    streams = {s.get("codec_type") for s in after.get("streams", []) if isinstance(s, dict)}
    if duration(after) <= 0 or not streams or not streams <= {"video", "audio"}:
        raise Uncleanable("it could not be read back after cleaning")
    return Cleaned(cleaned, container.content_type, container.extension, _had_details(before))
