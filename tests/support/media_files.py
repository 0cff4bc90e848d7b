"""Recordings, videos and documents made the way phones and editors make them, with a
writer's name, a place and a script planted in every spot such files keep them.

Files are written by ffmpeg (`-f lavfi`: a one-second tone, a one-second test picture)
and tagged with ffmpeg and mutagen; PDFs are built with pikepdf. `PLANTED` lists what a
cleaned file must no longer contain, in any encoding (`planted_in`).
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pikepdf
from mutagen.apev2 import APEv2
from mutagen.flac import Picture
from mutagen.id3 import ID3, TPE1
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from tests.support.system import ensure_package

ARTIST = "Maya Castellanos"
TITLE = "Secret Treehouse Song"
PLACE = "+40.4168-003.7038/"
SECRET_LINK = "https://maya-castellanos.example/track"
SCRIPT = "app.alert('hello maya')"
EMBEDDED = "homework of Maya Castellanos, 12 Oak Lane"
PLANTED = (ARTIST, TITLE, PLACE, "40.4168", SECRET_LINK, SCRIPT, EMBEDDED, "Oak Lane")

_TAGS = ("-metadata", f"artist={ARTIST}", "-metadata", f"title={TITLE}",
         "-metadata", f"comment={ARTIST}")  # fmt: skip
_TONE = ("-f", "lavfi", "-i", "sine=frequency=440:duration=1")
_PICTURE = ("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1")


_CODECS = ("utf-8", "utf-16-le", "utf-16-be")


def planted_in(data: bytes, values: tuple[str, ...] = PLANTED) -> list[str]:
    """The planted values found in `data`: UTF-8 and UTF-16 (ID3 writes both), any case."""
    lowered = data.lower()
    return [
        value
        for value in values
        if any(
            value.lower().encode(codec) in lowered for codec in ("utf-8", "utf-16-le", "utf-16-be")
        )
    ]


def _ffmpeg(*arguments: str | Path) -> None:
    ffmpeg = ensure_package("ffmpeg", "ffmpeg")
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*command, *map(str, arguments)], check=True, timeout=60)


def _cover(folder: Path) -> Path:
    cover = folder / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=red:size=16x16", "-frames:v", "1", cover)
    return cover


def _flac_picture() -> str:
    picture = Picture()  # type: ignore[no-untyped-call]
    picture.type = 3
    picture.mime = "image/png"
    picture.desc = ARTIST
    picture.data = b"\x89PNG\r\n\x1a\n"
    return base64.b64encode(picture.write()).decode("ascii")  # type: ignore[no-untyped-call]


def _with_cover(cover: Path) -> tuple[str | Path, ...]:
    return ("-i", cover, "-map", "0:a", "-map", "1:v", "-disposition:v", "attached_pic")


def _mp3(path: Path, cover: Path) -> None:
    _ffmpeg(*_TONE, *_with_cover(cover), "-c:v", "mjpeg", *_TAGS, "-c:a", "libmp3lame",
            "-id3v2_version", "3", "-write_id3v1", "1", path)  # fmt: skip
    ape = APEv2()  # type: ignore[no-untyped-call]
    ape["Artist"] = ARTIST
    ape.save(path)


def _ogg(path: Path, cover: Path) -> None:
    _ffmpeg(*_TONE, *_TAGS, "-c:a", "libvorbis", path)
    vorbis = OggVorbis(path)  # type: ignore[no-untyped-call]
    vorbis["METADATA_BLOCK_PICTURE"] = [_flac_picture()]
    vorbis.save()


def _opus(path: Path, cover: Path) -> None:
    _ffmpeg(*_TONE, *_TAGS, "-c:a", "libopus", path)


def _m4a(path: Path, cover: Path) -> None:
    _ffmpeg(*_TONE, *_with_cover(cover), "-c:v", "png", *_TAGS, "-c:a", "aac", path)


def _flac(path: Path, cover: Path) -> None:
    _ffmpeg(*_TONE, *_with_cover(cover), "-c:v", "png", *_TAGS, "-c:a", "flac", path)


def _wav(path: Path, cover: Path) -> None:
    _ffmpeg(*_TONE, *_TAGS, "-c:a", "pcm_s16le", path)  # RIFF LIST INFO
    wave = WAVE(path)  # type: ignore[no-untyped-call]
    wave.add_tags()  # type: ignore[no-untyped-call]
    # UTF-16, as many taggers write it.
    tags: ID3 = wave.tags  # type: ignore[assignment]
    tags.add(TPE1(encoding=1, text=[ARTIST]))  # type: ignore[no-untyped-call]
    wave.save()


_RECORDINGS = {"mp3": _mp3, "ogg": _ogg, "opus": _opus, "m4a": _m4a, "flac": _flac, "wav": _wav}


def make_recordings(folder: Path, names: tuple[str, ...] = tuple(_RECORDINGS)) -> dict[str, Path]:
    """One tagged recording per container, by extension."""
    cover = _cover(folder)
    made = {name: folder / f"tagged.{name}" for name in names}
    for name, path in made.items():
        _RECORDINGS[name](path, cover)
    return made


_STREAM_TAGS = ("-metadata:s:v", f"title={ARTIST}", "-metadata:s:a", f"title={TITLE}")


def _mp4(path: Path, folder: Path) -> None:
    _ffmpeg(*_PICTURE, *_TONE, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            *_TAGS, "-metadata", f"location={PLACE}", *_STREAM_TAGS,
            "-movflags", "use_metadata_tags", "-shortest", path)  # fmt: skip


def _mov(path: Path, folder: Path) -> None:
    _ffmpeg(*_PICTURE, "-c:v", "libx264", "-preset", "ultrafast",
            "-metadata", f"com.apple.quicktime.location.ISO6709={PLACE}",
            "-metadata", f"com.apple.quicktime.author={ARTIST}",
            "-movflags", "use_metadata_tags", path)  # fmt: skip


def _mkv(path: Path, folder: Path) -> None:
    subtitles = folder / "words.srt"
    subtitles.write_text(f"1\n00:00:00,000 --> 00:00:01,000\n{EMBEDDED}\n", encoding="utf-8")
    note = folder / "note.txt"
    note.write_text(EMBEDDED, encoding="utf-8")
    _ffmpeg(*_PICTURE, *_TONE, "-i", subtitles, "-map", "0:v", "-map", "1:a", "-map", "2:s",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libvorbis", "-c:s", "srt",
            *_TAGS, "-attach", note, "-metadata:s:t", "mimetype=text/plain",
            "-shortest", path)  # fmt: skip


_VIDEOS = {"mp4": _mp4, "mov": _mov, "mkv": _mkv}


def make_videos(folder: Path, names: tuple[str, ...] = tuple(_VIDEOS)) -> dict[str, Path]:
    """An MP4 with a GPS position, a MOV with Apple's location key, an MKV with a subtitle
    and an attached file."""
    made = {name: folder / f"filmed.{name}" for name in names}
    for name, path in made.items():
        _VIDEOS[name](path, folder)
    return made


def _page(pdf: pikepdf.Pdf, text: str) -> None:
    pdf.add_blank_page(page_size=(300, 300))
    page = pdf.pages[-1]
    font = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                              BaseFont=pikepdf.Name.Helvetica)  # fmt: skip
    page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=pdf.make_indirect(font)))
    page.obj.Contents = pdf.make_stream(f"BT /F1 12 Tf 20 150 Td ({text}) Tj ET".encode())


def _link(pdf: pikepdf.Pdf) -> pikepdf.Object:
    action = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(SECRET_LINK))
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 50, 50], A=action
        )
    )


def _embedded_file(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    stream = pdf.make_stream(EMBEDDED.encode())
    stream.Type = pikepdf.Name.EmbeddedFile
    return pikepdf.Dictionary(Type=pikepdf.Name.Filespec, F=pikepdf.String("homework.txt"),
                              EF=pikepdf.Dictionary(F=stream))  # fmt: skip


def make_pdf(path: Path, text: str = "Hello pen pal", *, pages: int = 2) -> Path:
    """A PDF as an editor leaves it: author, XMP, a script run on opening, an embedded
    file, a link, and an attachment annotation."""
    pdf = pikepdf.new()
    for number in range(pages):
        _page(pdf, f"{text} {number + 1}")
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:creator"] = [ARTIST]
        meta["dc:title"] = TITLE
    pdf.docinfo["/Author"] = ARTIST
    pdf.docinfo["/Title"] = TITLE
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String(SCRIPT))
    names = pikepdf.Array([pikepdf.String("homework.txt"), _embedded_file(pdf)])
    pdf.Root.Names = pikepdf.Dictionary(EmbeddedFiles=pikepdf.Dictionary(Names=names))
    attached = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FileAttachment,
                                  Rect=[60, 0, 80, 20], FS=_embedded_file(pdf))  # fmt: skip
    pdf.pages[0].obj.Annots = pdf.make_indirect(
        pikepdf.Array([_link(pdf), pdf.make_indirect(attached)])
    )
    pdf.pages[0].obj.PieceInfo = pikepdf.Dictionary(Editor=pikepdf.String(ARTIST))
    if pages > 1:  # a filled-in form field that runs a script when touched
        script = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String(SCRIPT))
        field = pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Annot,
                Subtype=pikepdf.Name.Widget,
                FT=pikepdf.Name.Tx,
                T=pikepdf.String("name"),
                V=pikepdf.String(TITLE),
                Rect=[10, 10, 200, 40],
                AA=pikepdf.Dictionary(Fo=script),
            )
        )
        pdf.pages[1].obj.Annots = pdf.make_indirect(pikepdf.Array([field]))
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field]))
    pdf.save(path, compress_streams=False)
    return path


def make_locked_pdf(path: Path) -> Path:
    pdf = pikepdf.new()
    _page(pdf, "locked")
    pdf.save(path, encryption=pikepdf.Encryption(owner="owner", user="secret"))
    return path


HTML_WITH_SCRIPT = (
    "<html><head><script>fetch('https://tracker.example/?who=maya')</script></head>"
    "<body><h1>My poem</h1><p>The sea is wide.</p>"
    '<img src="x" onerror="alert(document.cookie)">'
    '<img src="https://tracker.example/pixel.gif">'
    "</body></html>"
)
HTML_PLANTED = ("<script", "onerror", "tracker.example", "document.cookie")
