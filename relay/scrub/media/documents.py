"""Documents: PDF rewritten without metadata, scripts, actions, links or embedded files.

A PDF names its author and program in the document information dictionary (/Info) and in
XMP streams (/Metadata, on the document and on any object: a picture inside keeps its
camera's); it can run JavaScript on opening (/OpenAction, /AA, the /Names JavaScript tree),
open web addresses (/URI actions, Link annotations), carry other files (/EmbeddedFiles,
file attachment annotations), form fields whose values a reader never sees, and an editor's
private data (/PieceInfo). pikepdf (qpdf) is used to take all of that out: annotations
that link, play or carry files are dropped, and the others (notes, filled-in form fields)
are flattened into the page, so what they showed stays visible and nothing else of them
remains; the document catalogue loses /Info, /Metadata, /OpenAction, /AA, /Names,
/Outlines, /AcroForm and /PieceInfo; every object loses /Metadata, /PieceInfo, /AA, /Next
and any action other than going to a page. qpdf writes only objects still reachable, so
what was cut is not in the file. The result is opened again and checked for every one of
those keys and for any action that runs, opens or sends something; it must have as many
pages as before. Encrypted or unreadable PDFs are removed.

The visible text is read with pypdfium2 (PDFium, the reader in Chrome): a document with
text is flagged so staff read it before approving, and the caller looks in it for the
writer's private details. Text is not rewritten: redacting drawn text safely inside a PDF
is not something a cleaner can prove, so a document naming a private detail is removed.
"""

from __future__ import annotations

import io

import pikepdf
import pypdfium2

from relay.scrub.media import Cleaned, Uncleanable

__all__ = ["HAS_TEXT", "clean_document", "document_text"]

HAS_TEXT = "the document has text in it; read it before approving"
_MAX_TEXT_PAGES = 200
_MAX_TEXT_CHARS = 200_000

_CATALOGUE_KEYS = (
    "/Metadata", "/OpenAction", "/AA", "/Names", "/Outlines", "/AcroForm", "/PieceInfo",
    "/URI", "/Threads", "/SpiderInfo", "/Perms", "/Collection",
)  # fmt: skip
_OBJECT_KEYS = ("/Metadata", "/PieceInfo", "/AA", "/JS", "/EmbeddedFiles", "/URI", "/Next")
_DROPPED_ANNOTATIONS = {
    "/Link", "/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D",
}  # fmt: skip
# Keys whose presence anywhere means the document is not clean.
_FORBIDDEN_KEYS = {"/JS", "/JavaScript", "/EmbeddedFile", "/EmbeddedFiles", "/OpenAction",
                   "/AA", "/URI", "/Launch", "/Metadata", "/PieceInfo", "/XFA", "/Annots",
                   "/AcroForm", "/Next"}  # fmt: skip
# Action types that run, open or send something; only /GoTo (a page of this file) is kept.
_RUNNING_ACTIONS = {"/JavaScript", "/Launch", "/URI", "/SubmitForm", "/ImportData", "/GoToR",
                    "/GoToE", "/Rendition", "/Sound", "/Movie", "/RichMediaExecute"}  # fmt: skip


def _is_dictionary(obj: object) -> bool:
    return isinstance(obj, pikepdf.Dictionary | pikepdf.Stream)


def _strip_object(obj: pikepdf.Object) -> bool:
    """Remove what an object may hide; True when something was there."""
    found = False
    for key in _OBJECT_KEYS:
        if key in obj:
            del obj[key]
            found = True
    action = obj.get("/A")
    if action is not None and (not _is_dictionary(action) or action.get("/S") != "/GoTo"):
        del obj["/A"]
        found = True
    return found


def _strip_annotations(pdf: pikepdf.Pdf) -> bool:
    found = False
    for page in pdf.pages:
        annotations = page.obj.get("/Annots")
        if annotations is None:
            continue
        kept = pikepdf.Array()
        for annotation in annotations:
            if _is_dictionary(annotation) and annotation.get("/Subtype") in _DROPPED_ANNOTATIONS:
                found = True
            else:
                kept.append(annotation)
        page.obj["/Annots"] = kept
    # What the others show becomes part of the page; the annotations themselves go.
    pdf.flatten_annotations("all")
    for page in pdf.pages:
        if "/Annots" in page.obj:
            del page.obj["/Annots"]
    return found


def _strip(pdf: pikepdf.Pdf) -> bool:
    found = "/Info" in pdf.trailer
    if found:
        del pdf.trailer["/Info"]
    for key in _CATALOGUE_KEYS:
        if key in pdf.Root:
            del pdf.Root[key]
            found = True
    found = _strip_annotations(pdf) or found
    for obj in pdf.objects:
        if _is_dictionary(obj):
            found = _strip_object(obj) or found
    return found


def _unsafe(obj: pikepdf.Object) -> bool:
    if not _is_dictionary(obj):
        return False
    return any(key in obj for key in _FORBIDDEN_KEYS) or obj.get("/S") in _RUNNING_ACTIONS


def _verify(cleaned: bytes, pages: int) -> None:
    try:
        with pikepdf.open(io.BytesIO(cleaned)) as pdf:
            if len(pdf.pages) != pages or "/Info" in pdf.trailer:
                raise Uncleanable("it could not be read back after cleaning")
            if any(_unsafe(obj) for obj in pdf.objects):
                raise Uncleanable("its hidden details could not all be removed")
    except pikepdf.PdfError:
        raise Uncleanable("it could not be read back after cleaning") from None


def clean_document(data: bytes) -> Cleaned:
    """A fresh PDF without hidden details, flagged when it has text; or `Uncleanable`."""
    if b"%PDF-" not in data[:1024]:
        raise Uncleanable("it is not a PDF document")
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            if pdf.is_encrypted:
                raise Uncleanable("it is locked with a password")
            pages = len(pdf.pages)
            hidden = _strip(pdf)
            out = io.BytesIO()
            pdf.save(out, fix_metadata_version=False, deterministic_id=True, encryption=False)
    except pikepdf.PasswordError:
        raise Uncleanable("it is locked with a password") from None
    except (pikepdf.PdfError, RuntimeError, ValueError):
        raise Uncleanable("it could not be read as a PDF document") from None
    cleaned = out.getvalue()
    _verify(cleaned, pages)
    text = document_text(cleaned)
    flags = (HAS_TEXT,) if text.strip() else ()
    return Cleaned(cleaned, "application/pdf", "pdf", hidden, flags, text)


def document_text(data: bytes) -> str:
    """The visible text of a PDF, bounded in pages and characters; empty when unreadable."""
    pieces: list[str] = []
    size = 0
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return ""
    try:
        for index in range(min(len(document), _MAX_TEXT_PAGES)):
            page = document[index]
            text = page.get_textpage().get_text_range()
            pieces.append(text)
            size += len(text)
            if size >= _MAX_TEXT_CHARS:
                break
    except pypdfium2.PdfiumError:
        pass
    finally:
        document.close()
    return "\n".join(pieces)[:_MAX_TEXT_CHARS]
