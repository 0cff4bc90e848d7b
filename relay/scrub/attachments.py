"""Attachments: decide what may travel, and clean each file by its kind of its hidden details.

Pictures (JPEG, PNG, GIF, WebP, and HEIC when pillow-heif is installed) are decoded and
drawn again into a fresh image: EXIF (GPS position, camera owner, artist), XMP, IPTC,
comments and colour profiles stay behind, and the EXIF orientation is applied first so the
drawing stands the right way up. Recordings, videos, PDF documents and text files are
cleaned by `relay.scrub.media` (each module there says what it removes and how it checks);
a cleaned file is searched once more for the writer's private values, and a document's
text too. The type is read from the bytes, never trusted from the headers.

Nothing is delivered as sent: a file that cannot be proven clean, or of a kind no cleaner
knows yet (someone allows application/msword), is removed with a plain-words reason for
staff. Contact cards, keys and signatures, Outlook's winmail.dat, programs and archives are
always removed; other types follow the policy's allow-list, its per-kind size limits, the
count and the letter's total. Every kept file gets a neutral name by kind (`drawing-1.jpg`,
`recording-1.mp3`, `video-1.mp4`, `document-1.pdf`, `file-1.txt`) and, when the HTML shows
it inline, a neutral Content-ID.

Cost: decoding is refused before any pixel is read when the declared size exceeds
`max_image_pixels` (decompression bombs), so one picture costs at most that many pixels;
recordings and videos cost one ffmpeg copy and two probes each, bounded in time and memory
(`relay.scrub.media.runner`).
"""

from __future__ import annotations

import fnmatch
import io
import mimetypes
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import unquote

from PIL import Image, ImageOps

from relay.scrub.media import Cleaned, Uncleanable
from relay.scrub.media.audio import clean_recording
from relay.scrub.media.documents import clean_document
from relay.scrub.media.text import clean_text
from relay.scrub.media.video import clean_video
from relay.scrub.mime import content_type_of, filename_of, part_bytes, part_text
from relay.scrub.model import Attachment, AttachmentKind, Removal, ScrubPolicy, kind_of
from relay.scrub.private import PrivateMatcher, contains_private, redact, values_in_bytes

__all__ = ["AttachmentResult", "forbidden_reason", "rebuild_picture", "take_attachments"]

_PICTURE_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
_PICTURE_TYPES = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                  "webp": "image/webp"}  # fmt: skip

_PROGRAM = "a computer program (these are never delivered)"
_ARCHIVE = "an archive (its contents cannot be checked)"
_FORBIDDEN_TYPES: dict[str, str] = {
    "text/vcard": "a contact card (it holds names, addresses and phone numbers)",
    "text/x-vcard": "a contact card (it holds names, addresses and phone numbers)",
    "text/directory": "a contact card (it holds names, addresses and phone numbers)",
    "text/calendar": "a calendar invitation (it holds the sender's address)",
    "application/ms-tnef": "an Outlook winmail.dat file (it can hide the sender's details)",
    "application/vnd.ms-tnef": "an Outlook winmail.dat file (it can hide the sender's details)",
    "message/rfc822": "an attached email (another message, with its sender's details)",
    "message/partial": "a piece of another email",
    "message/external-body": "a link to content outside the letter",
}
_FORBIDDEN_PREFIXES: dict[str, str] = {
    "application/pgp": "an encryption key or signature (it names the sender)",
    "application/pkcs7": "a digital signature (it names the sender and their address)",
    "application/x-pkcs7": "a digital signature (it names the sender and their address)",
    "application/pkcs10": "a digital certificate (it names the sender)",
    "application/x-pkcs12": "a digital certificate (it names the sender)",
    "application/x-msdownload": _PROGRAM,
    "application/x-ms": _PROGRAM,
    "application/x-executable": _PROGRAM,
    "application/x-sh": _PROGRAM,
    "application/x-bat": _PROGRAM,
    "application/java": _PROGRAM,
    "application/vnd.android": _PROGRAM,
    "application/javascript": _PROGRAM,
    "text/javascript": _PROGRAM,
    "application/zip": "an archive (its contents cannot be checked)",
    "application/x-zip": "an archive (its contents cannot be checked)",
    "application/x-rar": "an archive (its contents cannot be checked)",
    "application/vnd.rar": "an archive (its contents cannot be checked)",
    "application/x-7z": "an archive (its contents cannot be checked)",
    "application/x-tar": "an archive (its contents cannot be checked)",
    "application/gzip": "an archive (its contents cannot be checked)",
    "application/x-gzip": "an archive (its contents cannot be checked)",
    "application/x-bzip": "an archive (its contents cannot be checked)",
    "application/x-xz": "an archive (its contents cannot be checked)",
}
_FORBIDDEN_EXTENSIONS: dict[str, str] = {
    **dict.fromkeys(("vcf", "vcard"), _FORBIDDEN_TYPES["text/vcard"]),
    **dict.fromkeys(("ics",), _FORBIDDEN_TYPES["text/calendar"]),
    **dict.fromkeys(("asc", "gpg", "pgp", "sig"), _FORBIDDEN_PREFIXES["application/pgp"]),
    **dict.fromkeys(
        ("p7s", "p7m", "p7c", "p7b", "p12", "pfx", "cer", "crt"),
        _FORBIDDEN_PREFIXES["application/pkcs7"],
    ),
    "dat": _FORBIDDEN_TYPES["application/ms-tnef"],
    "eml": _FORBIDDEN_TYPES["message/rfc822"],
    **dict.fromkeys(
        (
            "exe",
            "com",
            "bat",
            "cmd",
            "scr",
            "msi",
            "pif",
            "js",
            "jse",
            "vbs",
            "vbe",
            "wsf",
            "ps1",
            "jar",
            "apk",
            "app",
            "dmg",
            "sh",
            "dll",
            "lnk",
            "hta",
            "cpl",
            "reg",
        ),
        _PROGRAM,
    ),
    **dict.fromkeys(("zip", "rar", "7z", "tar", "gz", "tgz", "bz2", "xz", "cab", "iso"), _ARCHIVE),
}
_ZIP_BASED_DOCUMENTS = (
    "application/vnd.openxmlformats",
    "application/vnd.oasis.opendocument",
    "application/epub",
)
_FORBIDDEN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"MZ", _PROGRAM),
    (b"\x7fELF", _PROGRAM),
    (b"\xcf\xfa\xed\xfe", _PROGRAM),
    (b"#!", _PROGRAM),
    (b"PK\x03\x04", _ARCHIVE),
    (b"Rar!", _ARCHIVE),
    (b"7z\xbc\xaf\x27\x1c", _ARCHIVE),
    (b"\x1f\x8b", _ARCHIVE),
    (b"\x78\x9f\x3e\x22", _FORBIDDEN_TYPES["application/ms-tnef"]),
    (b"-----BEGIN PGP", _FORBIDDEN_PREFIXES["application/pgp"]),
)


@dataclass
class AttachmentResult:
    """The files that may travel, what was taken out, and the new names of inline pictures."""

    attachments: list[Attachment] = field(default_factory=list)
    removed: list[Removal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Original Content-ID (without brackets) -> new Content-ID, for the HTML body.
    cids: dict[str, str] = field(default_factory=dict)


def forbidden_reason(content_type: str, filename: str, data: bytes) -> str | None:
    """Why a file may never be delivered, in plain words for staff; None when it may."""
    if content_type in _FORBIDDEN_TYPES:
        return _FORBIDDEN_TYPES[content_type]
    for prefix, reason in _FORBIDDEN_PREFIXES.items():
        if content_type.startswith(prefix):
            return reason
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in _FORBIDDEN_EXTENSIONS:
        return _FORBIDDEN_EXTENSIONS[extension]
    if filename.lower() == "winmail.dat":
        return _FORBIDDEN_TYPES["application/ms-tnef"]
    return _forbidden_by_content(content_type, data)


def _forbidden_by_content(content_type: str, data: bytes) -> str | None:
    # Office documents and e-books are zip files inside; only their declared type tells.
    if content_type.startswith(_ZIP_BASED_DOCUMENTS):
        return None
    head = data[:16].lstrip()
    if head.upper().startswith(b"BEGIN:VCARD"):
        return _FORBIDDEN_TYPES["text/vcard"]
    for magic, reason in _FORBIDDEN_MAGIC:
        if head.startswith(magic):
            return reason
    return None


class UnreadablePicture(Exception):
    """The bytes are not a picture we can decode within the limits."""


@dataclass(frozen=True)
class Picture:
    """A picture drawn again; `had_hidden_details` says whether the original carried any."""

    data: bytes
    extension: str
    had_hidden_details: bool
    frames: int


def _heif_opener() -> bool:
    """Register the HEIC decoder once, if installed; pictures from iPhones are HEIC."""
    if "HEIF" in Image.OPEN:
        return True
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return "HEIF" in Image.OPEN


def _open_picture(data: bytes, max_pixels: int) -> Image.Image:
    formats = [*_PICTURE_FORMATS, *(["HEIF"] if _heif_opener() else [])]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=formats)
            if image.width * image.height > max_pixels:
                raise UnreadablePicture(f"larger than {max_pixels} pixels")
            image.load()
    except UnreadablePicture:
        raise
    except (Exception, Image.DecompressionBombWarning) as error:
        raise UnreadablePicture(type(error).__name__) from error
    return image


# What a decoder reports about pixels and layout, not about a person; anything else
# (EXIF, XMP, IPTC, comments, PNG text chunks such as "Author") counts as a hidden detail.
_LAYOUT_INFO = {"dpi", "gamma", "transparency", "aspect", "duration", "loop", "background",
                "version", "progressive", "progression", "interlace", "srgb", "jfif",
                "jfif_version", "jfif_unit", "jfif_density", "adobe", "adobe_transform",
                "extension", "chromaticity", "timestamp", "compression"}  # fmt: skip


def _hidden_details(image: Image.Image) -> bool:
    return bool(set(image.info) - _LAYOUT_INFO) or len(image.getexif()) > 0


def _fresh_copy(image: Image.Image, target: str) -> Image.Image:
    """Pixels only: a new image built from raw bytes carries no `info` of the old one."""
    if target == "JPEG":
        mode = image.mode if image.mode in {"L", "RGB"} else "RGB"
    elif image.mode in {"1", "L", "LA", "RGB", "RGBA"}:
        mode = image.mode
    else:
        mode = "RGBA" if image.has_transparency_data else "RGB"
    converted = image if image.mode == mode else image.convert(mode)
    return Image.frombytes(mode, converted.size, converted.tobytes())


def rebuild_picture(data: bytes, max_pixels: int) -> Picture:
    """Decode, stand upright, and draw the picture again without its hidden details."""
    image = _open_picture(data, max_pixels)
    source = image.format or "PNG"
    target = source if source in _PICTURE_FORMATS else "JPEG"
    hidden = _hidden_details(image)
    frames = int(getattr(image, "n_frames", 1))
    try:
        upright = ImageOps.exif_transpose(image)
        fresh = _fresh_copy(upright, target)
        out = io.BytesIO()
        options: dict[str, int] = {"quality": 90} if target in {"JPEG", "WEBP"} else {}
        fresh.save(out, format=target, **options)
    except (OSError, ValueError, SyntaxError) as error:
        raise UnreadablePicture(type(error).__name__) from error
    return Picture(out.getvalue(), _PICTURE_FORMATS[target], hidden, frames)


def _allowed(content_type: str, policy: ScrubPolicy) -> bool:
    return any(fnmatch.fnmatchcase(content_type, pattern) for pattern in policy.allowed_types)


def _binary_hides_value(data: bytes, matcher: PrivateMatcher | None) -> bool:
    """A private value written plainly inside a file we cannot rewrite (PDF, audio…)."""
    return matcher is not None and bool(values_in_bytes(data, matcher))


@dataclass
class _Taking:
    """Running state while attachments are taken one by one."""

    policy: ScrubPolicy
    matcher: PrivateMatcher | None
    html_source: str
    result: AttachmentResult = field(default_factory=AttachmentResult)
    numbers: Counter[str] = field(default_factory=Counter)

    def remove(self, what: str, why: str) -> None:
        self.result.removed.append(Removal("attachment", f"{what}: {why}"))

    def name(self, noun: str, extension: str) -> str:
        """The next neutral file name for this noun: drawing-1.jpg, recording-2.mp3…"""
        self.numbers[noun] += 1
        return f"{noun}-{self.numbers[noun]}.{extension}"

    def kept_bytes(self) -> int:
        return sum(len(attachment.data) for attachment in self.result.attachments)

    def keep(
        self,
        part: Message,
        data: bytes,
        content_type: str,
        filename: str,
        flags: tuple[str, ...] = (),
    ) -> None:
        old_cid = _content_id(part)
        # HTML may write the Content-ID percent-encoded (RFC 2392), so compare decoded.
        if old_cid is None or old_cid.lower() not in unquote(self.html_source).lower():
            self.result.attachments.append(Attachment(filename, content_type, data, flags=flags))
            return
        new_cid = f"{filename.rsplit('.', 1)[0]}@letter.invalid"
        self.result.cids[old_cid] = new_cid
        self.result.attachments.append(
            Attachment(filename, content_type, data, new_cid, True, flags)
        )


def _content_id(part: Message) -> str | None:
    try:
        value = part.get("Content-ID")
    except Exception:
        return None
    if value is None:
        return None
    return str(value).strip().strip("<>") or None


def _describe(filename: str, content_type: str, matcher: PrivateMatcher | None) -> str:
    name = redact(filename, matcher)[0] if filename else ""
    return f'"{name}" ({content_type})' if name else f"a file of type {content_type}"


def _take_picture(taking: _Taking, part: Message, data: bytes, what: str) -> None:
    try:
        picture = rebuild_picture(data, taking.policy.max_image_pixels)
    except UnreadablePicture:
        taking.remove(what, "the picture could not be read, or was too large to open safely")
        return
    filename = taking.name("drawing", picture.extension)
    if picture.had_hidden_details:
        taking.result.removed.append(
            Removal("picture-details", f"hidden details (camera, place, owner) in {filename}")
        )
    if picture.frames > 1:
        taking.result.notes.append(f"{filename} was animated; only its first frame is kept.")
    taking.keep(part, picture.data, _PICTURE_TYPES[picture.extension], filename)


_NOUNS: dict[AttachmentKind, str] = {
    "audio": "recording",
    "video": "video",
    "document": "document",
    "text": "file",
    "file": "file",
}
_CLEANERS: dict[AttachmentKind, Callable[[bytes], Cleaned]] = {
    "audio": clean_recording,
    "video": clean_video,
    "document": clean_document,
}
_PRIVATE = "it contains a private detail of the sender and cannot be cleaned"


def _take_text(taking: _Taking, part: Message, content_type: str) -> None:
    text = part_text(part, taking.result.notes, taking.policy.max_text_chars)
    cleaned = clean_text(text, content_type, taking.matcher)
    filename = taking.name("file", cleaned.file.extension)
    if cleaned.private_values:
        taking.result.removed.append(Removal("private-detail", f"in {filename}"))
    for removal in cleaned.removed:
        taking.result.removed.append(Removal(removal.kind, f"in {filename}: {removal.detail}"))
    file = cleaned.file
    taking.keep(part, file.data, file.content_type, filename, file.flags)


def _keep_as_sent(taking: _Taking, part: Message, data: bytes, content_type: str) -> None:
    """Staff posts only (`uncleanable_files = "keep"`): staff write as themselves."""
    if _binary_hides_value(data, taking.matcher):
        taking.remove(_describe(filename_of(part), content_type, taking.matcher), _PRIVATE)
        return
    extension = (mimetypes.guess_extension(content_type) or ".bin").lstrip(".")
    taking.keep(part, data, content_type, taking.name("file", extension))


def _hides_value(cleaned: Cleaned, matcher: PrivateMatcher | None) -> bool:
    return _binary_hides_value(cleaned.data, matcher) or contains_private(cleaned.text, matcher)


def _cleaned(kind: AttachmentKind, data: bytes) -> Cleaned:
    """The file cleaned by its kind's cleaner; `Uncleanable` for anything else that happens,
    so one broken file costs the letter that file, never the whole letter."""
    cleaner = _CLEANERS.get(kind)
    if cleaner is None:
        raise Uncleanable("there is no way to clean this kind of file yet")
    try:
        return cleaner(data)
    except Uncleanable:
        raise
    except Exception as error:  # a library tripping on hostile input
        raise Uncleanable(f"it could not be read safely ({type(error).__name__})") from error


def _take_medium(taking: _Taking, part: Message, data: bytes, content_type: str) -> None:
    kind = kind_of(content_type)
    what = _describe(filename_of(part), content_type, taking.matcher)
    try:
        cleaned = _cleaned(kind, data)
    except Uncleanable as error:
        if taking.policy.uncleanable_files == "keep":
            _keep_as_sent(taking, part, data, content_type)
        else:
            taking.remove(what, f"not delivered, as it could not be cleaned: {error.reason}")
        return
    if _hides_value(cleaned, taking.matcher):
        taking.remove(what, _PRIVATE)
        return
    filename = taking.name(_NOUNS[kind], cleaned.extension)
    if cleaned.had_hidden_details:
        taking.result.removed.append(
            Removal(f"{_NOUNS[kind]}-details", f"hidden details (names, tags, place) in {filename}")
        )
    taking.keep(part, cleaned.data, cleaned.content_type, filename, cleaned.flags)


def _declared_type(part: Message, filename: str) -> str:
    """The declared type; for a generic one, the type its file name suggests.

    Some phone mail apps send every photo as application/octet-stream; the picture is
    decoded from its bytes anyway, so the name is only a hint to try.
    """
    content_type = content_type_of(part)
    if content_type == "application/octet-stream" and filename:
        guessed = mimetypes.guess_type(filename, strict=False)[0]
        if guessed is not None and kind_of(guessed) in _GUESSED_KINDS:
            return guessed
    return content_type


# Kinds whose cleaner reads the type from the bytes, so a name suggesting them is safe to try.
_GUESSED_KINDS = {"picture", "audio", "video", "document"}


def _take_one(taking: _Taking, part: Message) -> None:
    filename = filename_of(part)
    content_type = _declared_type(part, filename)
    data = part_bytes(part)
    what = _describe(filename, content_type, taking.matcher)
    reason = forbidden_reason(content_type, filename, data)
    if reason is not None:
        taking.remove(what, reason)
        if content_type.startswith("message/"):
            taking.result.notes.append("The letter carried an attached email; it was not read.")
    elif not _allowed(content_type, taking.policy):
        taking.remove(what, "letters may not carry that kind of file")
    elif len(taking.result.attachments) >= taking.policy.max_attachments:
        taking.remove(what, f"a letter carries at most {taking.policy.max_attachments} files")
    elif len(data) > (limit := taking.policy.max_bytes_for(kind_of(content_type))):
        taking.remove(what, f"larger than {limit} bytes")
    elif 0 < taking.policy.max_total_bytes < taking.kept_bytes() + len(data):
        total = taking.policy.max_total_bytes
        taking.remove(what, f"the letter's files together would be larger than {total} bytes")
    elif content_type.startswith("image/"):
        _take_picture(taking, part, data, what)
    elif content_type.startswith("text/"):
        _take_text(taking, part, content_type)
    else:
        _take_medium(taking, part, data, content_type)


def take_attachments(
    parts: list[Message],
    policy: ScrubPolicy,
    matcher: PrivateMatcher | None,
    html_source: str,
) -> AttachmentResult:
    """Clean the non-body parts of a letter; `html_source` tells which are shown inline."""
    taking = _Taking(policy, matcher, html_source)
    for part in parts:
        _take_one(taking, part)
    return taking.result
