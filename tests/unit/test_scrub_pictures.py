"""Pictures come out redrawn: no EXIF/GPS/XMP/comments, upright, same pixels within JPEG noise."""

from __future__ import annotations

import io
import struct
import zlib
from email.message import EmailMessage

import pillow_heif
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat, PngImagePlugin

from relay.scrub import ScrubPolicy, scrub_letter
from relay.scrub.attachments import UnreadablePicture, rebuild_picture

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def photo(size: tuple[int, int] = (96, 64), orientation: int = 1) -> bytes:
    """A JPEG like a phone writes it: GPS position, owner, artist, comment."""
    image = Image.new("RGB", size, (230, 180, 40))
    for x in range(size[0] // 3):
        for y in range(size[1]):
            image.putpixel((x, y), (30, 90, 200))
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif[0x013B] = "Jane Okonkwo"
    exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (51.0, 30.0, 12.5)
    gps[3], gps[4] = "W", (0.0, 7.0, 39.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=95, comment=b"jane@example.com")
    return out.getvalue()


def letter_with(data: bytes, filename: str, content_type: str = "image/jpeg") -> bytes:
    message = EmailMessage()
    message["Subject"] = "my drawing"
    message.set_content("Look at my drawing!")
    maintype, subtype = content_type.split("/")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    difference = ImageChops.difference(first.convert("RGB"), second.convert("RGB"))
    return sum(ImageStat.Stat(difference).mean) / 3


def test_a_phone_photo_loses_gps_and_owner_but_keeps_its_pixels() -> None:
    original = photo()
    letter = scrub_letter(letter_with(original, "IMG_0001 Jane Okonkwo.jpg"), ScrubPolicy())
    (drawing,) = letter.attachments
    assert drawing.filename == "drawing-1.jpg"
    assert drawing.content_type == "image/jpeg"
    cleaned = Image.open(io.BytesIO(drawing.data))
    assert len(cleaned.getexif()) == 0
    assert not {"exif", "comment", "xmp", "icc_profile"} & set(cleaned.info)
    assert b"Exif" not in drawing.data and b"jane@example.com" not in drawing.data
    before = Image.open(io.BytesIO(original))
    assert cleaned.size == before.size
    assert mean_difference(cleaned, before) < 4
    assert any(r.kind == "picture-details" for r in letter.removed)


def test_orientation_is_applied_before_the_details_go() -> None:
    original = photo(size=(90, 60), orientation=6)
    (drawing,) = scrub_letter(letter_with(original, "a.jpg"), ScrubPolicy()).attachments
    cleaned = Image.open(io.BytesIO(drawing.data))
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(original)))
    assert cleaned.size == (60, 90) == upright.size
    assert mean_difference(cleaned, upright) < 4
    assert ORIENTATION not in cleaned.getexif()


def test_png_text_chunks_are_dropped() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Okonkwo")
    out = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 200, 0, 128)).save(out, "PNG", pnginfo=info)
    picture = rebuild_picture(out.getvalue(), 10_000)
    assert picture.extension == "png"
    assert b"Okonkwo" not in picture.data and b"tEXt" not in picture.data
    assert Image.open(io.BytesIO(picture.data)).mode == "RGBA"


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_gif_and_webp_are_redrawn_without_details(fmt: str) -> None:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x013B] = "Jane Okonkwo"
    extra = {"comment": b"Jane Okonkwo"} if fmt == "GIF" else {"exif": exif}
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, fmt, **extra)
    picture = rebuild_picture(out.getvalue(), 10_000)
    assert b"Okonkwo" not in picture.data
    assert Image.open(io.BytesIO(picture.data)).size == (16, 16)


def test_heic_from_an_iphone_becomes_a_jpeg() -> None:
    pillow_heif.register_heif_opener()  # a dependency: iPhone photos must be readable
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(out, "HEIF")
    letter = scrub_letter(letter_with(out.getvalue(), "IMG_1.HEIC", "image/heic"), ScrubPolicy())
    (drawing,) = letter.attachments
    assert drawing.filename == "drawing-1.jpg"
    assert Image.open(io.BytesIO(drawing.data)).format == "JPEG"


def huge_png(width: int, height: int) -> bytes:
    """A tiny file that claims enormous dimensions (a decompression bomb's header)."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(UnreadablePicture):
        rebuild_picture(huge_png(100_000, 100_000), 40_000_000)
    letter = scrub_letter(
        letter_with(huge_png(60_000, 60_000), "x.png", "image/png"), ScrubPolicy()
    )
    assert letter.attachments == ()
    assert any("could not be read" in r.detail for r in letter.removed)


def test_a_file_that_only_claims_to_be_a_picture_is_removed() -> None:
    letter = scrub_letter(letter_with(b"MZ\x90\x00 not a picture", "cat.jpg"), ScrubPolicy())
    assert letter.attachments == ()
    assert letter.removed


def test_a_photo_sent_as_octet_stream_is_still_a_drawing() -> None:
    raw = letter_with(photo(), "IMG_0001.JPG", "application/octet-stream")
    (drawing,) = scrub_letter(raw, ScrubPolicy()).attachments
    assert (drawing.filename, drawing.content_type) == ("drawing-1.jpg", "image/jpeg")


def test_an_inline_picture_keeps_its_place_under_a_neutral_content_id() -> None:
    message = EmailMessage()
    message["Subject"] = "look"
    message.set_content("look")
    message.add_alternative('<p>look</p><img src="cid:ii_Jane%40Okonkwo" alt="Jane.jpg">',
                            subtype="html")  # fmt: skip
    html_part = message.get_payload()[1]
    html_part.add_related(photo(), maintype="image", subtype="jpeg", cid="<ii_Jane@Okonkwo>")
    letter = scrub_letter(bytes(message), ScrubPolicy(private_values=("Okonkwo",)))
    (drawing,) = letter.attachments
    assert (drawing.content_id, drawing.inline) == ("drawing-1@letter.invalid", True)
    assert letter.html == '<p>look</p><img src="cid:drawing-1@letter.invalid" alt="drawing-1">'
