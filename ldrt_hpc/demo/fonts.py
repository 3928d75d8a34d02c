"""The bold face of the hidden_weight class: Helvetica-Bold's glyphs (MuPDF's Nimbus Sans Bold, a CFF font)
renamed "AdvPECFD36" with the weight "Regular", as some publishers' subset fonts are named.

Embedded by PyMuPDF as a Type0 font (Identity-H, so text is written as 2-byte glyph ids), neither its name, nor
MuPDF's span flags, nor its font descriptor (Flags 32, StemV 80, no FontWeight) say bold: only the glyph strokes
do.  fontTools comes with matplotlib (the `demo` extra).  The class papers are byte-for-byte reproducible on one
installation; across installations their bytes also depend on the fontTools (this font), PyMuPDF and OpenCV
(the slivers' PNG strips) versions, as the default corpus depends on PyMuPDF's and matplotlib's.
"""

from __future__ import annotations

import io
from functools import cache

import pymupdf

HIDDEN_NAME = "AdvPECFD36"


class _CompileOptions:
    """What CFFFontSet.compile asks of its font argument: keep the font's own bounding boxes."""

    recalcBBoxes = False


@cache
def hidden_bold_buffer() -> bytes:
    from fontTools.cffLib import CFFFontSet

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(pymupdf.Font("hebo").buffer), None)
    top = cff[cff.fontNames[0]]
    top.Weight = "Regular"  # FreeType (and so MuPDF's bold flag) reads the weight from here
    top.FullName = top.FamilyName = HIDDEN_NAME
    cff.fontNames = [HIDDEN_NAME]
    out = io.BytesIO()
    cff.compile(out, _CompileOptions())
    return out.getvalue()


@cache
def _hidden_font() -> pymupdf.Font:
    return pymupdf.Font(fontbuffer=hidden_bold_buffer())


def glyph_ids(text: str) -> str:
    """The text as the hex string of its 2-byte glyph ids (Identity-H)."""
    font = _hidden_font()
    return "".join(f"{font.has_glyph(ord(char)):04x}" for char in text)


def embed_hidden_bold(page: pymupdf.Page, fontname: str) -> None:
    """Embed the font on the page as `fontname`, with "Bold" out of the names PyMuPDF gives it."""
    xref = page.insert_font(fontname=fontname, fontbuffer=hidden_bold_buffer())
    doc = page.parent
    doc.xref_set_key(xref, "BaseFont", f"/{HIDDEN_NAME}")
    kind, descendants = doc.xref_get_key(xref, "DescendantFonts")
    descendant = int(descendants.strip("[] ").split()[0])
    kind, descriptor = doc.xref_get_key(descendant, "FontDescriptor")
    doc.xref_set_key(int(descriptor.split()[0]), "FontName", f"/{HIDDEN_NAME}")
