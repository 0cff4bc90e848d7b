"""Scrub and screen: letters per second against plain `email` parse and re-serialize.

The replies of the test corpus (`tests/messages/reply-*.eml`, as each mail program writes
them), then shapes built here: a short text reply with quoted history; a Gmail reply in text
and HTML answered between its quoted lines; an HTML letter with an inline 2-megapixel JPEG
photo; a text letter with five attached photos; a text letter with
a 30-second tagged MP3 and a two-page PDF (ffmpeg copies the sound, pikepdf rewrites the
document: per letter, the cost of a process start or two dominates). Each is run through
`scrub_letter` + `screen` (what holding a letter does to its bytes) and, for reference,
through `email.message_from_bytes(raw, policy=default).as_bytes()`. The image case is
bounded by Pillow's decode and re-encode: its share comes from a cProfile of the same runs.
Each rate is the best of several rounds, so a moment of another process's work on a shared
machine does not decide a ratio.
Reading a reply alone (`relay.scrub.quotes.reply_text`) is measured on 1,000 to 100,000 lines
of the hardest kind: the same lines per second at every size is what O(lines) looks like.
"""

from __future__ import annotations

import cProfile
import email
import email.policy
import io
import pstats
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pikepdf
from PIL import Image

from bench.common import WRITER, emit
from relay.screen import screen
from relay.scrub import ScrubPolicy, scrub_letter
from relay.scrub.quotes import reply_text

POLICY = ScrubPolicy(private_values=(WRITER,))
MEDIA_POLICY = ScrubPolicy(
    private_values=(WRITER,), allowed_types=("audio/*", "application/pdf"),
    max_attachment_bytes=20 * 1024 * 1024,
)  # fmt: skip
KEYWORDS = {
    "en": ["address", "phone", "password", "secret", "meet up", "whatsapp"],
    "es": ["dirección", "teléfono", "contraseña", "secreto", "whatsapp"],
}


def _photo(width: int, height: int, seed: int) -> bytes:
    """A JPEG with gradients and noise, about as hard to code as a phone photo."""
    rng = random.Random(seed)
    small = Image.new("RGB", (width // 16, height // 16))
    small.putdata(
        [
            (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            for _ in range((width // 16) * (height // 16))
        ]
    )
    picture = small.resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    picture = Image.blend(picture, noise, 0.15)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=88)
    return out.getvalue()


def _base(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Maya <{WRITER}>"
    message["To"] = "jolly-tiger-5811@pals.example.org"
    message["Subject"] = subject
    message["Date"] = "Mon, 04 May 2026 10:00:00 +0000"
    message["Message-ID"] = "<bench-1@family-mail.example.net>"
    return message


def text_reply() -> bytes:
    message = _base("Re: Re: Our winter holidays")
    history = []
    for depth in range(3, 0, -1):
        history.append(f"{'>' * (depth - 1)} On Sun, 3 May 2026, Tomás wrote:".strip())
        history += [
            f"{'>' * depth} We went to the mountains and it snowed a lot, line {i}."
            for i in range(12)
        ]
    body = (
        "Hi Tomás!\n\nThank you for your letter. Here it is spring and the trees are\n"
        "green. My cat had three kittens! What animals do you have at home?\n\n"
        "Your friend,\nMaya\n\n" + "\n".join(history) + "\n"
    )
    message.set_content(body)
    return message.as_bytes()


def gmail_inline_reply() -> bytes:
    """A Gmail reply, text and HTML, answered between the quoted lines, three levels deep."""
    message = _base("Re: Re: Re: Our winter holidays")
    questions = [f"Question {i}: what do you like best about winter, and why?" for i in range(6)]
    text = ["Hi Tomás!", "", "On Sun, 3 May 2026 at 09:12, Tomás <t@pals.example.org> wrote:"]
    html = [
        '<div dir="ltr">Hi Tomás!</div><div class="gmail_quote"><div class="gmail_attr">',
        "On Sun, 3 May 2026 at 09:12, Tomás &lt;t@pals.example.org&gt; wrote:</div>",
    ]
    for question in questions:
        text += [
            f"> {question}",
            "> It snowed a lot in the mountains this year.",
            "",
            "I like the snow, and the holidays, and hot chocolate.",
            "",
        ]
        html += [
            f'<blockquote class="gmail_quote"><div>{question}</div>',
            "<div>It snowed a lot in the mountains this year.</div></blockquote>",
            "<div>I like the snow, and the holidays, and hot chocolate.</div>",
        ]
    older = [f">> On Sat, 2 May 2026, Maya <{WRITER}> wrote:"]
    older += [f">> Line {i} of an older letter, quoted again and again." for i in range(40)]
    text += ["> Your friend, Tomás", *older, "", "Love,", "Maya"]
    html += [
        "<blockquote><div>Your friend, Tomás</div><blockquote>",
        "".join(f"<div>{line[3:]}</div>" for line in older),
        "</blockquote></blockquote>",
        "<div>Love,<br>Maya</div></div>",
    ]
    message.set_content("\n".join(text) + "\n")
    message.add_alternative("".join(html), subtype="html")
    return message.as_bytes()


def reply_corpus() -> list[bytes]:
    """Every reply of the test corpus, as each mail program wrote it."""
    folder = Path(__file__).resolve().parents[1] / "tests" / "messages"
    return [path.read_bytes() for path in sorted(folder.glob("reply-*.eml"))]


def html_with_photo() -> bytes:
    message = _base("Look at our garden")
    message.set_content("Hi Tomás! Here is our garden.\n")
    message.add_alternative(
        "<html><body><p>Hi Tomás! Here is our <b>garden</b>:</p>"
        '<p><img src="cid:garden@bench"></p><p>Maya</p></body></html>',
        subtype="html",
    )
    html = message.get_payload()[1]
    html.add_related(
        _photo(1632, 1224, 1), "image", "jpeg", cid="<garden@bench>", filename="garden.jpg"
    )
    return message.as_bytes()


def five_attachments() -> bytes:
    message = _base("Photos from school")
    message.set_content("Hi Tomás! Five pictures from our school trip.\n\nMaya\n")
    for index in range(5):
        message.add_attachment(
            _photo(800, 600, 10 + index),
            maintype="image",
            subtype="jpeg",
            filename=f"trip-{index + 1}.jpg",
        )
    return message.as_bytes()


def _recording(folder: Path) -> bytes:
    path = folder / "song.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=30",
         "-metadata", "artist=Maya", "-c:a", "libmp3lame", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path.read_bytes()


def _document() -> bytes:
    pdf = pikepdf.new()
    for number in range(2):
        pdf.add_blank_page(page_size=(595, 842))
        pdf.pages[number].obj.Contents = pdf.make_stream(b"BT 20 800 Td (Dear Tomas) Tj ET")
    pdf.docinfo["/Author"] = "Maya"
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def recording_and_document() -> bytes:
    message = _base("My song and my homework")
    message.set_content("Hi Tomás! I sang a song for you, and here is my homework.\n")
    with tempfile.TemporaryDirectory() as folder:
        message.add_attachment(_recording(Path(folder)), "audio", "mpeg", filename="song.mp3")
    message.add_attachment(_document(), "application", "pdf", filename="homework.pdf")
    return message.as_bytes()


def scrub_and_screen(raw: bytes, policy: ScrubPolicy = POLICY) -> None:
    clean = scrub_letter(raw, policy)
    screen(clean, languages=["en", "es"], default_region="US", keywords=KEYWORDS)


def scrub_media(raw: bytes) -> None:
    scrub_and_screen(raw, MEDIA_POLICY)


def parse_and_serialize(raw: bytes) -> None:
    email.message_from_bytes(raw, policy=email.policy.default).as_bytes()


ROUNDS = 5  # each rate is the best of this many rounds: a shared machine only slows one down


def _rate(fn: Callable[[bytes], None], letters: list[bytes], repeat: int) -> float:
    """Letters per second through `fn`, over `repeat` passes of `letters`, best round."""
    for raw in letters:
        fn(raw)  # warm caches (regexes, codecs, Pillow plugins)
    per_round = max(1, repeat // ROUNDS)
    best = 0.0
    for _ in range(min(ROUNDS, repeat)):
        begin = time.perf_counter()
        for _ in range(per_round):
            for raw in letters:
                fn(raw)
        best = max(best, per_round * len(letters) / (time.perf_counter() - begin))
    return best


def pillow_share(raw: bytes, repeat: int) -> float:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(repeat):
        scrub_and_screen(raw)
    profile.disable()
    stats: Any = pstats.Stats(profile).stats
    total = sum(entry[2] for entry in stats.values())
    pillow = sum(
        entry[2]
        for (path, _, name), entry in stats.items()
        if "/PIL/" in path or "Imaging" in name or "pillow_heif" in path
    )
    return pillow / total if total else 0.0


def quote_reading_scale(repeat: int) -> None:
    """Reading a reply costs O(lines): lines per second at 1,000 to 100,000 lines of the
    hardest kind (every line may introduce history: colons, dashes, quotes switching)."""
    kinds = [
        "On Sunday it snowed:",
        "> Did it snow?",
        "From: my heart",
        "---- a line with dashes ----",
        "My teacher wrote:",
        "It was 10:30 when we left:",
        "",
        ">> older: quoted again",
    ]
    sizes = (1_000, 10_000, 100_000) if repeat >= 3 else (1_000, 10_000)  # smoke: small
    for count in sizes:
        text = "\n".join(kinds[i % len(kinds)] for i in range(count))
        rounds = max(1, repeat * 1_000 // count)
        reply_text(text)
        begin = time.perf_counter()
        for _ in range(rounds):
            reply_text(text)
        elapsed = (time.perf_counter() - begin) / rounds
        emit(
            "scrub", shape=f"quote reading, {count} lines", lines_per_second=round(count / elapsed)
        )


def run(repeat: int) -> None:
    corpus = reply_corpus()
    shapes = {
        f"reply corpus ({len(corpus)} letters)": (corpus, max(1, repeat // 3)),
        "text reply with quotes": ([text_reply()], 20 * repeat),
        "Gmail inline reply, text + HTML": ([gmail_inline_reply()], 10 * repeat),
        "HTML + 2 MP inline JPEG": ([html_with_photo()], max(3, repeat // 3)),
        "five attached photos": ([five_attachments()], max(3, repeat // 3)),
        "MP3 (30 s) + 2-page PDF": ([recording_and_document()], max(2, repeat // 5)),
    }
    for shape, (letters, count) in shapes.items():
        relay_rate = _rate(scrub_media if "MP3" in shape else scrub_and_screen, letters, count)
        plain_rate = _rate(parse_and_serialize, letters, count)
        fields: dict[str, Any] = {}
        if "JPEG" in shape or "photos" in shape:
            fields["pillow_share"] = round(pillow_share(letters[0], max(2, count // 2)), 3)
        emit(
            "scrub",
            shape=shape,
            bytes=sum(len(raw) for raw in letters) // len(letters),
            scrub_screen_per_second=round(relay_rate, 1),
            parse_serialize_per_second=round(plain_rate, 1),
            ratio=round(relay_rate / plain_rate, 3),
            **fields,
        )
    quote_reading_scale(repeat)
