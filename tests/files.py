"""Images and PDFs made on the fly, for the tests of attachments (unit, integration, browser) and the
benchmarks' prices of file turns: whole files, as a server checks a file by its bytes."""

from __future__ import annotations

import io
import os
from typing import Any

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

LETTER = (612, 792)  # a US Letter page, in points


def image(kind: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """A plain image of one colour, of this format (PIL's name: PNG, JPEG, GIF, WEBP) and size."""
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format=kind)
    return out.getvalue()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    return image("PNG", size)


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG of random pixels: it does not compress, so its bytes are many for its pixels."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, format="PNG")
    return out.getvalue()


def pdf(pages: int = 1) -> bytes:
    """A PDF of this many blank Letter pages."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=LETTER[0], height=LETTER[1])
    return _written(writer)


def text_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in a standard font (every reader has it)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=LETTER[0], height=LETTER[1])
    font = writer._add_object(_dictionary(Type="/Font", Subtype="/Type1", BaseFont="/Helvetica"))
    page[NameObject("/Resources")] = _dictionary(Font=_dictionary(F1=font))
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    return _written(writer)


def _written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _dictionary(**entries: Any) -> DictionaryObject:
    return DictionaryObject(
        {
            NameObject(f"/{key}"): NameObject(value) if isinstance(value, str) else value
            for key, value in entries.items()
        }
    )
