"""A generated corpus of small LDRT-like papers (PDF) with exact ground truth, deterministic for a seed.

It is the demo input and the test data of the preprocessing stages: PDF -> Markdown conversion, figure/caption
extraction with region boxes, the image-quality filter and figure-mention sentences.

Every paper is 2-4 US Letter pages (612 x 792 pt, 54 pt margins) with a running header and a page-number footer
(which converters must drop), a title block, an abstract, four numbered sections and 2-4 figures drawn with
matplotlib; about half of the papers also carry one table.  Odd-numbered papers are set in two columns
(2 x 243 pt, 18 pt gutter) with column-wide and page-wide figures, even-numbered ones in one column.  Body text is
laid out line by line here (greedy breaking, justified lines, some words hyphenated at line ends), so every
coordinate in the ground truth is exact:

* figures are raster (PNG plots, JPEG "micrographs") or vector (a matplotlib PDF placed as a form XObject);
* papers 1, 4, 7, ... hold one heavily blurred raster figure (``must_filter="blurry"``: variance of the Laplacian
  of its region rendered at 150 dpi far below 100) and papers 2, 5, 8, ... one 40 x 40 pt figure
  (``must_filter="too_small"``: under 100 px a side at 150 dpi); every other figure is sharp and large;
* captions sit below figures (above tables) and start with a bold label ("Figure 2.", "Table 1.");
* body sentences mention figures as "Fig. 1", "Figure 2", "Figs. 1 and 2", "Figs. 1–3", "Fig. 2B",
  "Fig. 2(a)", "(Table 1)" and "Figure N shows ...", among abbreviations such as "et al.", "e.g." and "vs.".

``synth_corpus`` (`corpus.py`) returns one dict per paper and writes the list as ``ground_truth.json``:
paper, file, title, pages, layout, figures (name, figType, page, caption, captionBoundary, regionBoundary, kind,
must_filter, mentions, plotType) and, for Markdown checks, authors, abstract, keywords, sections and
running_header.  Boxes are ``{"x1","y1","x2","y2"}`` in PDF points with the origin top-left (PyMuPDF ``Rect``);
caption boxes are the union of the caption's line boxes as PyMuPDF reports them (font ascender to descender).

Modules, in the order a paper is made: `text` (vocabulary, sentence templates, mentions, captions), `outline`
(everything one paper holds, drawn from its seeded generator), `floats` (its figures and table, as blocks), `plots`
and `tables` (drawing them), `typeset` (line breaking), `layout` (pages and columns), `pdf` (writing) and `corpus`
(the entry point and the ground truth); `page` has the page geometry, fonts and drawing operations.
Needs matplotlib (the `demo` extra): the pipeline itself does not.

``synth_corpus(..., classes=True)`` makes the failure-class corpus of issue 15 instead (`classes`: unnumbered,
panel-letter, hyphenated, roman-numeral, upper-case and label-above captions, text layers without spaces, labels
bold only in their glyphs (`fonts`); and, each on a page of its own appended to the paper (`region_classes`):
rotated pages and sideways tables, full-width tables in two columns, captions under a publisher box, multi-panel
figures and figures drawn as image slivers), with a ``failure_class`` per paper and float; with it off (the
default) the corpus is unchanged, byte for byte.
"""

from .corpus import synth_corpus

__all__ = ["synth_corpus"]
