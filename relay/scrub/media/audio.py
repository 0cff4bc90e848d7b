"""Recordings: MP3, Ogg Vorbis and Opus, M4A/AAC, FLAC and WAV, without a single tag.

A recording can carry its maker's name in many places: ID3v1 and ID3v2 frames (artist,
comments, the cover picture and its description), APE tags, Vorbis comments (including
METADATA_BLOCK_PICTURE), MP4 atoms (©ART, covr, udta) and WAV's RIFF INFO chunk. Rather
than delete each kind with its own rules, the sound is copied into a fresh container by
ffmpeg (`-c copy`: no re-encoding, so no loss) with no metadata, chapters or picture
streams, and without ID3 headers at all. mutagen then reads the result as the player
would: the type must be the one the bytes started as, with no tags and no pictures, and
ffprobe must find a duration and no tag beyond the technical ones. Anything short of that
and the recording is removed.

mutagen was chosen to recognise the type (it reads the same headers a player does) and to
check the result; ffmpeg to rewrite, because it writes every one of these containers from
nothing and handles the cases mutagen cannot (RIFF INFO, MP4 atoms outside `ilst`).
"""

from __future__ import annotations

import io

import mutagen
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from relay.scrub.media import Cleaned, Uncleanable
from relay.scrub.media.runner import Container, duration, personal_tags, probe, remux

__all__ = ["clean_recording"]


_CONTAINERS: dict[type[mutagen.FileType], Container] = {
    # No ID3 header at all: an empty one would still be a place to hide a frame.
    MP3: Container("mp3", "mp3", "audio/mpeg", "mp3", ("-id3v2_version", "0", "-write_id3v1", "0")),
    OggVorbis: Container("ogg", "ogg", "audio/ogg", "ogg"),
    OggOpus: Container("ogg", "ogg", "audio/ogg", "opus"),
    MP4: Container("mov", "ipod", "audio/mp4", "m4a", ("-movflags", "+faststart")),
    FLAC: Container("flac", "flac", "audio/flac", "flac"),
    WAVE: Container("wav", "wav", "audio/wav", "wav"),
}

_REMUX = (
    "-map", "0:a", "-c", "copy", "-map_metadata", "-1", "-map_metadata:s:a", "-1",
    "-map_chapters", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
)  # fmt: skip


def _recognise(data: bytes) -> mutagen.FileType | None:
    try:
        return mutagen.File(io.BytesIO(data))  # type: ignore[no-any-return]
    except Exception:  # mutagen raises many kinds on broken input
        return None


def _has_pictures(found: mutagen.FileType) -> bool:
    # FLAC keeps pictures in blocks of their own, outside the Vorbis comment.
    return isinstance(found, FLAC) and bool(found.pictures)


def _had_details(found: mutagen.FileType, data: bytes) -> bool:
    # WAV's RIFF INFO chunk is invisible to mutagen; its tag is the chunk's own name.
    riff_info = isinstance(found, WAVE) and b"LIST" in data
    return bool(found.tags) or _has_pictures(found) or riff_info


def _check(cleaned: bytes, kind: type[mutagen.FileType], container: Container) -> None:
    again = _recognise(cleaned)
    if again is None or type(again) is not kind:
        raise Uncleanable("it could not be read back after cleaning")
    if again.tags or _has_pictures(again):
        raise Uncleanable("its hidden details could not all be removed")
    found = probe(cleaned, container.demuxer)
    if personal_tags(found) or duration(found) <= 0:
        raise Uncleanable("its hidden details could not all be removed")


def clean_recording(data: bytes) -> Cleaned:
    """The sound alone, in the container it came in; raises `Uncleanable` otherwise."""
    found = _recognise(data)
    container = None if found is None else _CONTAINERS.get(type(found))
    if found is None or container is None:
        raise Uncleanable("it is not a recording the relay can clean (MP3, Ogg, M4A, FLAC, WAV)")
    cleaned = remux(data, container.demuxer, [*_REMUX, *container.extra], container.muxer)
    _check(cleaned, type(found), container)
    return Cleaned(cleaned, container.content_type, container.extension, _had_details(found, data))
