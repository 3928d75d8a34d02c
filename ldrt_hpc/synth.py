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

``synth_corpus`` returns one dict per paper and writes the list as ``ground_truth.json``:
paper, file, title, pages, layout, figures (name, figType, page, caption, captionBoundary, regionBoundary, kind,
must_filter, mentions, plotType) and, for Markdown checks, authors, abstract, keywords, sections and
running_header.  Boxes are ``{"x1","y1","x2","y2"}`` in PDF points with the origin top-left (PyMuPDF ``Rect``);
caption boxes are the union of the caption's line boxes as PyMuPDF reports them (font ascender to descender).
"""

from __future__ import annotations

import io
import json
import random
import re
import zlib
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pymupdf
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

matplotlib.use("Agg")

PAGE_W, PAGE_H, MARGIN = 612.0, 792.0, 54.0
LEFT, RIGHT, TOP, BOTTOM = MARGIN, PAGE_W - MARGIN, MARGIN, PAGE_H - MARGIN
TEXT_W = RIGHT - LEFT  # 504
GUTTER = 18.0
COL_W = (TEXT_W - GUTTER) / 2  # 243
CAP_FS, CAP_LEAD = 8.5, 10.5
HEAD_FS = 11.0
FIG_CAP_GAP = 6.0  # figure region -> caption (and table caption -> table)
BEFORE_FLOAT = 9.0  # text -> figure region or table caption
AFTER_FLOAT = 13.0  # caption (or table) -> following text
RASTER_DPI = 200
BLUR_SIGMA = 8.0
TINY = 40.0
JOURNAL = "J. Low-Dose Radiat. Res."
YEAR = 2026
PDF_DATE = "D:20260101000000+00'00'"
MPL_PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}

_FONT = {name: pymupdf.Font(name) for name in ("helv", "hebo", "heit")}
_ASC = {name: font.ascender for name, font in _FONT.items()}
_DESC = {name: -font.descender for name, font in _FONT.items()}
_WIDTHS: dict[tuple[str, str], float] = {}


def _width(text: str, font: str, fs: float) -> float:
    """Advance width of text in a base-14 font (measured on the Unicode text; drawn as WinAnsi codes)."""
    key = (text, font)
    w = _WIDTHS.get(key)
    if w is None:
        if len(_WIDTHS) > 200_000:
            _WIDTHS.clear()
        w = _WIDTHS[key] = _FONT[font].text_length(text, fontsize=1.0)
    return w * fs


# ----------------------------------------------------------------------------------------------- vocabulary

SURNAMES = ["Kowalski", "Chen", "Okafor", "Moreau", "Tanaka", "Schmidt", "Rossi", "Novak", "Haddad", "Lindqvist",
            "Garcia", "Ivanova", "Nakamura", "Brennan", "Weber", "Andersen", "Costa", "Kim", "Müller", "Dubois"]
CITIES = [("Heidelberg", "Germany"), ("Lyon", "France"), ("Kyoto", "Japan"), ("Toronto", "Canada"),
          ("Uppsala", "Sweden"), ("Padua", "Italy"), ("Leeds", "United Kingdom"), ("Porto", "Portugal")]
CELL_LINES = ["A549", "MCF-7", "HeLa", "FaDu", "U87-MG", "HFL-1", "RAW 264.7", "BJ"]
DOSES = ["0.1", "0.3", "0.5", "0.7", "1.0", "1.5", "2.0"]
# (title topic, population, endpoint, survival endpoint, subjects, table column)
TOPICS = [
    ("Low-dose whole-lung irradiation", "COVID-19 pneumonia", "oxygen saturation", "ventilator-free survival",
     "patients", "SpO2 (%)"),
    ("Low-dose radiation therapy", "knee osteoarthritis", "pain score", "symptom-free survival", "patients",
     "VAS score"),
    ("Radiation hormesis", "murine lymphocytes", "proliferation index", "overall survival", "mice", "Ki-67 (%)"),
    ("Low-dose total body irradiation", "non-Hodgkin lymphoma", "progression-free survival",
     "progression-free survival", "patients", "PFS (months)"),
    ("Adaptive response to 0.1 Gy", "human fibroblasts", "micronucleus frequency", "overall survival", "mice",
     "MN/1000 BN"),
    ("Low-dose radiotherapy", "Alzheimer's disease models", "amyloid plaque burden", "overall survival", "mice",
     "Plaques/mm²"),
    ("Low-dose fractionated radiotherapy", "glioblastoma xenografts", "tumour volume", "tumour-free survival",
     "mice", "Volume (mm³)"),
    ("Low-dose radiotherapy combined with checkpoint blockade", "MC38 colon carcinoma", "CD8+ T-cell infiltration",
     "overall survival", "mice", "CD8+/mm²"),
]


class _Ctx:
    """Random fill-ins for sentence templates (one per paper)."""

    def __init__(self, rng: random.Random):
        self.r = rng
        (self.topic, self.pop, self.ep, self.surv, self.subjects, self.tabcol) = rng.choice(TOPICS)
        self.topic_l = self.topic[0].lower() + self.topic[1:]
        self.Ep = self.ep[0].upper() + self.ep[1:]
        self.cell = rng.choice(CELL_LINES)
        d1, d2 = sorted(rng.sample(range(1, len(DOSES)), 2))
        self.d1, self.d2 = DOSES[d1], DOSES[d2]

    def au(self) -> str:
        return self.r.choice(SURNAMES)

    def d(self) -> str:
        return self.r.choice(DOSES)

    def pct(self) -> int:
        return self.r.randint(12, 68)

    def n(self) -> int:
        return self.r.randint(8, 60)

    def p(self) -> str:
        return f"p = 0.0{self.r.randint(1, 4)}{self.r.randint(1, 9)}"

    def pns(self) -> str:
        return f"p = 0.{self.r.randint(12, 74)}"

    def year(self) -> int:
        return self.r.randint(1996, 2025)

    def h(self) -> int:
        return self.r.choice([1, 4, 24, 48])

    def days(self) -> int:
        return self.r.choice([7, 10, 12, 14])


INTRO = [
    lambda c: ("Low-dose radiation therapy (LDRT), usually delivered as single fractions of 0.3–1.0 Gy, has been used "
               "to treat benign inflammatory and degenerative disorders for more than a century."),
    lambda c: (f"{c.au()} et al. reported that doses below 1 Gy attenuate the release of pro-inflammatory cytokines "
               "(e.g., IL-1beta and TNF-alpha) from activated macrophages."),
    lambda c: ("The mechanisms underlying these effects remain incompletely understood, and the dose–response "
               "relationship is frequently non-linear."),
    lambda c: (f"In {c.pop}, {c.ep} has been proposed as a sensitive and clinically meaningful endpoint for "
               "low-dose exposures."),
    lambda c: "Conventional radiotherapy, by contrast, uses 1.8–2.0 Gy per fraction and cumulative doses above 45 Gy.",
    lambda c: ("Several groups (e.g., {} et al. and {} et al.) have therefore evaluated LDRT as an anti-inflammatory "
               "treatment.".format(*c.r.sample(SURNAMES, 2))),
    lambda c: (f"A retrospective analysis of {c.n() * 5} patients suggested a response rate of {c.pct()}% after a "
               f"total dose of {c.r.choice(['3.0', '6.0'])} Gy."),
    lambda c: ("Concerns about stochastic effects, i.e. the small excess risk of a secondary malignancy, have limited "
               "its wider use."),
    lambda c: ("Experimental data indicate a discontinuity of the anti-inflammatory response between 0.3 and 0.7 Gy, "
               "often described as a bell-shaped dose dependence."),
    lambda c: (f"Adaptive responses, in which a priming dose of {c.r.choice(['0.01', '0.05', '0.1'])} Gy reduces the "
               "damage caused by a later challenge dose, have been observed in lymphocytes and fibroblasts."),
    lambda c: ("Most clinical reports, however, are single-centre case series with heterogeneous fractionation "
               "schedules (e.g., 6 × 0.5 Gy or 6 × 1.0 Gy)."),
    lambda c: ("Modern linear accelerators deliver such doses with an uncertainty of less than 3%, which permits "
               "well-controlled dose–response experiments."),
    lambda c: (f"As noted by {c.au()} et al. in {c.year()}, the effective dose window may differ between species and "
               "tissues."),
    lambda c: (f"Immunological effects of low doses include the expansion of regulatory T cells and a reduced "
               f"adhesion of leukocytes to endothelial cells ({c.au()} et al., {c.year()})."),
]
METHODS = [
    lambda c: (f"{c.cell} cells were obtained from a commercial cell bank and maintained in RPMI-1640 medium "
               "supplemented with 10% fetal bovine serum at 37 °C."),
    lambda c: (f"Irradiation was performed with a 6 MV linear accelerator at a dose rate of "
               f"{c.r.choice(['0.5', '1.0', '2.4', '4.0'])} Gy/min and a source–surface distance of 100 cm."),
    lambda c: (f"Animals received a single fraction of {c.d()} Gy or sham irradiation under isoflurane anaesthesia "
               f"(n = {c.n()} per group)."),
    lambda c: ("Dosimetry was verified with a calibrated ionisation chamber, and deviations from the prescribed dose "
               "were below 2%."),
    lambda c: (f"Clonogenic survival was determined {c.days()} days after irradiation, i.e. after colonies of at least "
               "50 cells had formed."),
    lambda c: "Statistical analyses used two-sided tests, and p < 0.05 was considered significant.",
    lambda c: "Survival curves were estimated with the Kaplan–Meier method and compared with the log-rank test.",
    lambda c: "Data are presented as mean ± standard deviation (SD) of at least three independent experiments.",
    lambda c: (f"Tumour volumes were measured with callipers every {c.r.randint(2, 4)} days and calculated as "
               "length × width² / 2."),
    lambda c: (f"For immunofluorescence, cells were fixed {c.h()} h after exposure and stained for gamma-H2AX and "
               "53BP1."),
    lambda c: f"Foci were counted in at least {c.n() * 10} nuclei per condition by an observer blinded to the dose group.",
    lambda c: (f"The study protocol was approved by the local ethics committee (approval no. "
               f"LDRT-{c.year()}-{c.r.randint(10, 99)})."),
    lambda c: (f"Sample sizes were chosen to detect a difference of {c.pct()}% with 80% power at a two-sided alpha of "
               "0.05."),
    lambda c: "Multiple comparisons were corrected with the Holm–Bonferroni procedure.",
    lambda c: (f"Cytokine concentrations (e.g., IL-6 and TGF-beta1) were measured by ELISA in supernatants collected "
               f"{c.h()} h after irradiation."),
]
RESULTS = [
    lambda c: "No acute toxicity above grade 1 was observed in any dose group.",
    lambda c: f"Body weight did not differ between the groups during follow-up ({c.pns()}).",
    lambda c: f"The effect was most pronounced at {c.d1} Gy and declined at higher doses.",
    lambda c: (f"Responses were observed in {c.r.randint(5, 9)} of {c.r.randint(10, 12)} {c.subjects} in the "
               "irradiated groups."),
    lambda c: "Inter-experiment variability was small, with coefficients of variation below 10%.",
    lambda c: (f"Similar trends were seen in a second cell line, although the differences did not reach significance "
               f"({c.pns()})."),
    lambda c: f"Compared with sham irradiation, {c.ep} changed by {c.pct()}% after {c.d2} Gy ({c.p()}).",
    lambda c: f"All {c.n()} {c.subjects} completed the planned follow-up of {c.r.randint(3, 12)} months.",
]
DISCUSSION = [
    lambda c: (f"Our findings agree with those of {c.au()} et al., who observed a comparable effect after "
               "0.3–0.7 Gy."),
    lambda c: ("The non-linear dose dependence is consistent with a threshold-like activation of anti-inflammatory "
               "pathways."),
    lambda c: (f"In contrast to earlier reports (e.g., {c.au()} et al., {c.year()}), we did not detect a reduction at "
               "the lowest dose."),
    lambda c: "Several limitations should be noted, e.g. the modest sample size and the short follow-up.",
    lambda c: "A prospective randomised trial comparing 0.5 vs. 1.0 Gy per fraction is currently being planned.",
    lambda c: "Whether these results translate to patients remains to be established.",
    lambda c: (f"The estimated excess cancer risk of a single dose of {c.d()} Gy to a limited volume is very small."),
    lambda c: (f"Mechanistically, the change in {c.ep} may reflect a modulation of macrophage polarisation and of "
               "endothelial adhesion."),
    lambda c: "Dose rate and field size may also influence the response and were not varied in this study.",
    lambda c: (f"Dosimetric uncertainties of about 3% are unlikely to explain the difference between {c.d1} and "
               f"{c.d2} Gy."),
]

# figure-mention sentences: first entry "Figure k shows ...", the rest use other forms ({k} = number, {a}/{b} = panels)
MENTIONS = {
    "km": [
        lambda c, k, a, b: f"Figure {k} shows the Kaplan–Meier estimates of {c.surv} for the sham and irradiated groups.",
        lambda c, k, a, b: (f"Median {c.surv} increased from {c.r.randint(8, 14)} to {c.r.randint(16, 24)} months "
                            f"after {c.d1} Gy ({c.p()}; Fig. {k})."),
        lambda c, k, a, b: f"The benefit of LDRT persisted throughout follow-up (Figure {k}).",
    ],
    "dose": [
        lambda c, k, a, b: f"Figure {k} shows the dose–response of {c.cell} cells between 0 and 2 Gy.",
        lambda c, k, a, b: (f"Surviving fractions decreased only marginally below 0.5 Gy (Fig. {k}{a}), whereas foci "
                            f"counts rose almost linearly with dose (Fig. {k}{b})."),
        lambda c, k, a, b: f"Low-dose hypersensitivity was evident at 0.25 Gy in {c.cell} cells (Figure {k}{a}).",
    ],
    "bars": [
        lambda c, k, a, b: f"Figure {k} shows tumour volumes on days 7, 14 and 21 after treatment.",
        lambda c, k, a, b: (f"On day 21, tumour volume was reduced by {c.pct()}% in the {c.d2} Gy group compared with "
                            f"sham (p < 0.05; Fig. {k})."),
        lambda c, k, a, b: f"Tumour growth was delayed in all irradiated groups, as illustrated in Figure {k}.",
    ],
    "micro": [
        lambda c, k, a, b: f"Figure {k} shows representative micrographs of gamma-H2AX foci in {c.cell} nuclei.",
        lambda c, k, a, b: (f"Foci were more frequent after {c.d1} Gy than after sham irradiation "
                            f"(Fig. {k}{b} vs. Fig. {k}{a})."),
        lambda c, k, a, b: f"Nuclear morphology was preserved at all doses (Fig. {k})." ,
    ],
    "icon": [
        lambda c, k, a, b: f"Figure {k} shows the irradiation field used for all {c.subjects}.",
        lambda c, k, a, b: f"The treatment field is indicated schematically in Fig. {k}.",
    ],
}
PANELS = {"dose": ("A", "B"), "micro": ("(a)", "(b)")}


def _captions(c: _Ctx, plot: str, panels: tuple[str, str], logrank: str) -> list[str]:
    a, b = (x if x.startswith("(") else f"({x})" for x in panels)
    if plot == "km":
        return [f"Kaplan–Meier estimates of {c.surv} in {c.pop} after sham irradiation or LDRT with {c.d1} Gy and "
                f"{c.d2} Gy.", f"Tick marks denote censored observations; {logrank}.",
                f"n = {c.r.randint(30, 60)} per arm."]
    if plot == "dose":
        return [f"Dose–response of {c.cell} cells 24 h after single doses of 0–2 Gy.",
                f"{a} Clonogenic surviving fraction (log scale); {b} gamma-H2AX foci per nucleus.",
                "Error bars show mean ± SD of three independent experiments."]
    if plot == "bars":
        return [f"Tumour volume on days 7, 14 and 21 after sham irradiation or {c.d1}–{c.d2} Gy.",
                "Bars show mean ± SEM (n = 8 per group); * p < 0.05 versus sham."]
    if plot == "micro":
        return [f"Representative fluorescence micrographs of {c.cell} nuclei 1 h after {a} sham irradiation and "
                f"{b} {c.d1} Gy.", "Nuclei are counterstained with DAPI (blue); gamma-H2AX foci appear green.",
                "Scale bar, 10 µm."]
    return [f"Schematic of the {c.r.choice(['anterior', 'lateral', 'whole-joint'])} irradiation field.",
            "Inset, not to scale."]


# ----------------------------------------------------------------------------------------------- line breaking

_HYPH_RE = re.compile(r"([a-z]{8,})([.,;:)]?)")
_VOWELS = set("aeiouy")
_DIGRAPHS = {"th", "ch", "sh", "ph", "ck", "gh", "qu", "wh"}


class _Breaker:
    """Greedy line breaking of (word, font) tokens; long lowercase words may be hyphenated at a line end."""

    def __init__(self, tokens: list[tuple[str, str]], fs: float, width: float, hyph_key: str | None = None):
        self.tokens, self.fs, self.width, self.key = list(tokens), fs, width, hyph_key
        self.i = 0
        self.count = 0

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def next_line(self, allow_hyphen: bool = False) -> tuple[list[tuple[str, str]], bool]:
        """The next line's tokens and whether it is the last line."""
        fs, line, used = self.fs, [], 0.0
        while self.i < len(self.tokens):
            word, font = self.tokens[self.i]
            space = _width(" ", line[-1][1], fs) if line else 0.0
            ww = _width(word, font, fs)
            if used + space + ww <= self.width + 0.01:
                line.append((word, font))
                used += space + ww
                self.i += 1
                continue
            if line and allow_hyphen and self.key is not None:
                # hyphenate some words, and always try when the justified line would be loose
                loose = (self.width - used) / len(line) > 0.25 * fs
                split = self._split(word, font, self.width - used - space, loose)
                if split:
                    line.append((split[0] + "-", font))
                    self.tokens[self.i] = (split[1], font)
                    break
            if not line:
                line.append((word, font))
                self.i += 1
            break
        self.count += 1
        return line, self.done()

    def _split(self, word: str, font: str, avail: float, force: bool) -> tuple[str, str] | None:
        m = _HYPH_RE.fullmatch(word)
        if not m or not (force or zlib.crc32(f"{self.key}:{word}:{self.count}".encode()) % 10 < 6):
            return None
        core, tail = m.groups()
        for j in range(len(core) - 3, 2, -1):
            a, b, c = core[j - 1], core[j], core[j + 1]
            vcv = a in _VOWELS and b not in _VOWELS and c in _VOWELS
            cc = a not in _VOWELS and b not in _VOWELS and a + b not in _DIGRAPHS
            if (vcv or cc) and _width(core[:j] + "-", font, self.fs) <= avail:
                return core[:j], core[j:] + tail
        return None


def _ragged_runs(line: list[tuple[str, str]], x0: float, fs: float) -> tuple[list, float]:
    """Runs (x, text, font) of one ragged line, words of one font merged; returns them and the line's end x."""
    runs: list[list] = []
    x = x0
    for i, (word, font) in enumerate(line):
        if i:
            prev_font = line[i - 1][1]
            runs[-1][1] += " "
            x += _width(" ", prev_font, fs)
        if runs and runs[-1][2] == font:
            runs[-1][1] += word
        else:
            runs.append([x, word, font])
        x += _width(word, font, fs)
    return [tuple(r) for r in runs], x


def _text_block(tokens, fs, lead, width, x0, top) -> tuple[list, tuple[float, float, float, float]]:
    """A ragged, unhyphenated block of lines: ops and the union of its line boxes (PyMuPDF's ascender/descender)."""
    br = _Breaker(tokens, fs, width)
    ops, box = [], [x0, top, x0, top]
    first = True
    base = top
    while not br.done():
        line, _ = br.next_line()
        fonts = {f for _, f in line}
        if first:
            base = top + max(_ASC[f] for f in fonts) * fs
            first = False
        else:
            base += lead
        runs, xend = _ragged_runs(line, x0, fs)
        ops.append(("text", base, fs, runs))
        box[1] = min(box[1], base - max(_ASC[f] for f in fonts) * fs)
        box[2] = max(box[2], xend)
        box[3] = max(box[3], base + max(_DESC[f] for f in fonts) * fs)
    return ops, tuple(box)


def _caption_tokens(label: str, text: str) -> list[tuple[str, str]]:
    words = label.split(" ")
    return [(w, "hebo") for w in words] + [(w, "helv") for w in text.split(" ")]


# ----------------------------------------------------------------------------------------------- floats (relative)

def _figure_block(f: dict, frame_w: float) -> dict:
    """Figure + caption below, relative to (frame x0, top): ops, region, caption box, height."""
    rx = (frame_w - f["w"]) / 2
    region = (rx, 0.0, rx + f["w"], f["h"])
    ops, cap = _text_block(f["cap_tokens"], CAP_FS, CAP_LEAD, frame_w, 0.0, f["h"] + FIG_CAP_GAP)
    return {"ops": [("fig", f["key"], region)] + ops, "region": region, "caption": cap, "h": cap[3]}


def _table_block(f: dict, frame_w: float) -> dict:
    """Caption above, then a ruled grid of cells; relative to (frame x0, top)."""
    ops, cap = _text_block(f["cap_tokens"], CAP_FS, CAP_LEAD, frame_w, 0.0, 0.0)
    rows, fs = f["rows"], 7.5
    while True:
        widths = [max(_width(r[j], "hebo" if i == 0 else "helv", fs) for i, r in enumerate(rows))
                  for j in range(len(rows[0]))]
        if sum(widths) + 6 * len(widths) <= frame_w or fs <= 5.5:
            break
        fs -= 0.5
    pad = (frame_w - sum(widths)) / len(widths)
    col_x, x = [], 0.0
    for w in widths:
        col_x.append(x)
        x += w + pad
    top = cap[3] + FIG_CAP_GAP
    y = top
    ops.append(("rule", 0.0, frame_w, y + 0.4, 0.8))
    y += 0.8 + 2.0
    for i, row in enumerate(rows):
        font = "hebo" if i == 0 else "helv"
        ops.append(("text", y + _ASC[font] * fs, fs, [(cx, cell, font) for cx, cell in zip(col_x, row)]))
        y += fs * (_ASC[font] + _DESC[font]) + 1.2
        if i == 0:
            y += 0.8
            ops.append(("rule", 0.0, frame_w, y + 0.25, 0.5))
            y += 0.5 + 1.6
    y += 1.0
    ops.append(("rule", 0.0, frame_w, y + 0.4, 0.8))
    y += 0.8
    region = (0.0, top, frame_w, y)
    return {"ops": ops, "region": region, "caption": cap, "h": y}


def _shift(op: tuple, dx: float, dy: float) -> tuple:
    if op[0] == "text":
        return ("text", op[1] + dy, op[2], [(x + dx, t, f) for x, t, f in op[3]])
    if op[0] == "rule":
        return ("rule", op[1] + dx, op[2] + dx, op[3] + dy, op[4])
    r = op[2]
    return ("fig", op[1], (r[0] + dx, r[1] + dy, r[2] + dx, r[3] + dy))


def _shift_box(b, dx, dy):
    return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)


# ----------------------------------------------------------------------------------------------- page layout

class _Flow:
    """Lays out front matter, headings, paragraphs and floats into pages and frames (columns)."""

    def __init__(self, plan: dict, items: list):
        self.plan = plan
        self.two = plan["layout"] == "two-column"
        self.fs, self.lead = plan["body_fs"], plan["body_lead"]
        self.box_h = self.fs * (_ASC["helv"] + _DESC["helv"])
        self.pages: list[list] = []
        self.placed: dict[str, dict] = {}
        self.pending: list[str] = []
        self.pending_wide: list[str] = []
        self._new_page()
        for kind, arg in items:
            getattr(self, "_" + kind)(arg)
        guard = 0
        while (self.pending or self.pending_wide) and guard < 40:
            self._next_frame()
            guard += 1

    # -- frames
    def _op(self, op):
        self.pages[-1].append(op)

    def _new_page(self):
        self.pages.append([])
        top = TOP
        if len(self.pages) == 1:
            top = self._front_matter()
        else:
            while self.pending_wide and top + self.plan["floats"][self.pending_wide[0]]["block"]["h"] <= BOTTOM:
                top = self._place(self.pending_wide.pop(0), top, LEFT, True) + AFTER_FLOAT
        if self.two:
            self.frames = [(LEFT, COL_W), (LEFT + COL_W + GUTTER, COL_W)]
        else:
            self.frames = [(LEFT, TEXT_W)]
        self.top, self.fi, self.y, self.fresh = top, 0, top, True
        self._place_pending()

    def _next_frame(self):
        if self.fi + 1 < len(self.frames):
            self.fi += 1
            self.y, self.fresh = self.top, True
            self._place_pending()
        else:
            self._new_page()

    def _fits(self, key) -> bool:
        top = self.y if self.fresh else self.y + BEFORE_FLOAT
        return top + self.plan["floats"][key]["block"]["h"] <= BOTTOM

    def _place_pending(self):
        while self.pending and self._fits(self.pending[0]):
            self._place_here(self.pending.pop(0))

    def _place_here(self, key):
        self.y = self._place(key, self.y, self.frames[self.fi][0], self.fresh) + AFTER_FLOAT
        self.fresh = False

    def _place(self, key, y, x0, at_top) -> float:
        block = self.plan["floats"][key]["block"]
        dy = y if at_top else y + BEFORE_FLOAT
        for op in block["ops"]:
            self._op(_shift(op, x0, dy))
        self.placed[key] = {"page": len(self.pages) - 1, "region": _shift_box(block["region"], x0, dy),
                            "caption": _shift_box(block["caption"], x0, dy)}
        return dy + block["h"]

    # -- content
    def _front_matter(self) -> float:
        P = self.plan
        ops, box = _text_block([(w, "hebo") for w in P["title"].split(" ")], 16.0, 19.5, TEXT_W, LEFT, TOP)
        y = box[3] + 6
        ops2, box = _text_block([(w, "helv") for w in P["authors"].split(" ")], 10.0, 12.5, TEXT_W, LEFT, y)
        y = box[3] + 2
        ops3, box = _text_block([(w, "heit") for w in P["affiliation"].split(" ")], 8.0, 10.0, TEXT_W, LEFT, y)
        y = box[3] + 12
        for op in ops + ops2 + ops3:
            self._op(op)
        self._op(("text", y + _ASC["hebo"] * HEAD_FS, HEAD_FS, [(LEFT, "Abstract", "hebo")]))
        y += HEAD_FS * (_ASC["hebo"] + _DESC["hebo"]) + 3
        y = self._lines(" ".join(P["abstract"]), 9.0, 11.0, LEFT, TEXT_W, y)
        kw = [("Keywords:", "hebo")] + [(w, "helv") for w in "; ".join(P["keywords"]).split(" ")]
        ops, box = _text_block(kw, 8.5, 10.5, TEXT_W, LEFT, y + 4)
        for op in ops:
            self._op(op)
        y = box[3] + 8
        self._op(("rule", LEFT, RIGHT, y, 0.5))
        return y + 12

    def _lines(self, text, fs, lead, x0, width, y) -> float:
        """Justified, hyphenated lines that must fit on this page (front matter); returns the next y."""
        br = _Breaker([(w, "helv") for w in text.split(" ")], fs, width, self.plan["hyph_key"])
        while not br.done():
            line, last = br.next_line(True)
            self._justified(line, x0, width, y + _ASC["helv"] * fs, fs, not last)
            y += lead
        return y + fs * (_ASC["helv"] + _DESC["helv"]) - lead

    def _justified(self, line, x0, width, base, fs, justify):
        widths = [_width(w, f, fs) for w, f in line]
        space = _width(" ", "helv", fs)
        gap = space
        if justify and len(line) > 1:  # word gaps stay below 0.6 em: wider ones split lines in text extractors
            gap = min(0.6 * fs, space + max(0.0, (width - sum(widths) - space * (len(line) - 1)) / (len(line) - 1)))
        runs, x = [], x0
        for (word, font), w in zip(line, widths):
            runs.append((x, word, font))
            x += w + gap
        self._op(("text", base, fs, runs))

    def _heading(self, text):
        h = HEAD_FS * (_ASC["hebo"] + _DESC["hebo"])
        while self.y + (0 if self.fresh else 7) + h + 3 + 2 * self.lead + self.box_h > BOTTOM:  # keep with next
            self._next_frame()
        if not self.fresh:
            self.y += 7
        self._op(("text", self.y + _ASC["hebo"] * HEAD_FS, HEAD_FS, [(self.frames[self.fi][0], text, "hebo")]))
        self.y += h + 3
        self.fresh = False

    def _para(self, sentences):
        br = _Breaker([(w, "helv") for w in " ".join(sentences).split(" ")], self.fs, self.frames[0][1],
                      self.plan["hyph_key"])
        while not br.done():
            if self.y + self.box_h > BOTTOM:
                self._next_frame()
                continue
            allow = self.y + self.lead + self.box_h <= BOTTOM  # never hyphenate the last line of a column
            line, last = br.next_line(allow)
            x0, width = self.frames[self.fi]
            self._justified(line, x0, width, self.y + _ASC["helv"] * self.fs, self.fs, not last)
            self.y += self.lead
            self.fresh = False
        self.y += 0.4 * self.lead

    def _float(self, key):
        if self.plan["floats"][key]["wide"]:
            self.pending_wide.append(key)
        elif not self.pending and self._fits(key):
            self._place_here(key)
        else:
            self.pending.append(key)


# ----------------------------------------------------------------------------------------------- figures

_COLORS = ["#1f3b73", "#d1495b", "#edae49", "#00798c", "#66a182"]


def _axes(fig, spec, n=1, left=34.0, right=6.0, bottom=24.0, top=8.0, gap=40.0):
    """n axes side by side with margins in points (cheaper than constrained layout)."""
    w, h = spec["w"], spec["h"]
    aw = (w - left - right - gap * (n - 1)) / n
    return [fig.add_axes(((left + i * (aw + gap)) / w, bottom / h, aw / w, (h - bottom - top) / h)) for i in range(n)]


def _panel_label(ax, text):
    ax.text(-0.02, 1.02, text, transform=ax.transAxes, ha="right", va="bottom", fontweight="bold")


def _plot_km(fig, spec, g):
    (ax,) = _axes(fig, spec)
    arms = [("Sham", 0.06), (f"{spec['d1']} Gy", 0.042), (f"{spec['d2']} Gy", 0.03)]
    for (label, hazard), color in zip(arms, _COLORS):
        n = 40
        t_event, t_cens = g.exponential(1 / hazard, n), g.uniform(8, 60, n)
        t = np.minimum(t_event, t_cens)
        event = t_event <= t_cens
        order = np.argsort(t)
        t, event = t[order], event[order]
        surv = np.cumprod(np.where(event, 1 - 1 / (n - np.arange(n)), 1.0))
        ax.step(np.concatenate([[0], t]), np.concatenate([[1], surv]), where="post", color=color, lw=1.2, label=label)
        ax.plot(t[~event], surv[~event], "|", color=color, ms=4, mew=0.8)
    ax.set(xlim=(0, 36), ylim=(0, 1.05), xlabel="Months after irradiation", ylabel="Survival probability")
    ax.set_xticks([0, 6, 12, 18, 24, 30, 36])
    ax.grid(True, lw=0.4, alpha=0.6)
    ax.legend(frameon=False, loc="lower left")
    ax.text(0.97, 0.96, spec["logrank"], transform=ax.transAxes, ha="right", va="top")


def _plot_dose(fig, spec, g):
    axes = _axes(fig, spec, 2, top=14.0)
    d = np.array([0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0])
    sf = np.exp(-0.2 * d - 0.05 * d ** 2) * (1 - 0.1 * np.exp(-(((d - 0.25) / 0.12) ** 2)))
    sf = sf * g.normal(1, 0.01, d.size)
    axes[0].errorbar(d, sf, yerr=sf * g.uniform(0.03, 0.07, d.size), fmt="o-", ms=3, capsize=2, lw=1,
                     color=_COLORS[0])
    axes[0].set_yscale("log")
    axes[0].set(ylim=(0.4, 1.15), xlabel="Dose (Gy)", ylabel="Surviving fraction")
    axes[0].yaxis.set_major_locator(FixedLocator([0.4, 0.5, 0.6, 0.8, 1.0]))
    axes[0].yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    axes[0].yaxis.set_minor_formatter(NullFormatter())
    for j, (name, slope) in enumerate([(spec["cell"], 11.0), ("control line", 8.0)]):
        foci = 0.6 + slope * d + g.normal(0, 0.3, d.size)
        axes[1].errorbar(d, foci, yerr=0.5 + 0.1 * foci, fmt="s-" if j == 0 else "^--", ms=3, capsize=2, lw=1,
                         color=_COLORS[j + 1], label=name)
    axes[1].set(xlabel="Dose (Gy)", ylabel="γH2AX foci per nucleus")
    axes[1].legend(frameon=False, loc="upper left")
    for ax, label in zip(axes, spec["panels"]):
        ax.grid(True, lw=0.4, alpha=0.6)
        _panel_label(ax, label)


def _plot_bars(fig, spec, g):
    (ax,) = _axes(fig, spec)
    groups = ["Sham", f"{spec['d1']} Gy", f"{spec['d2']} Gy"]
    base = np.array([140.0, 290.0, 520.0])
    width = 0.8 / len(groups)
    for j, (name, color) in enumerate(zip(groups, _COLORS)):
        vals = base * (1 - 0.22 * j) * g.uniform(0.92, 1.08, 3)
        x = np.arange(3) + (j - (len(groups) - 1) / 2) * width
        ax.bar(x, vals, width * 0.9, yerr=vals * 0.12, capsize=1.5, color=color, label=name,
               error_kw={"elinewidth": 0.6, "capthick": 0.6}, edgecolor="black", linewidth=0.4)
        if j:
            ax.text(x[2], vals[2] * 1.16, "*", ha="center", va="bottom")
    ax.set_xticks(range(3), ["Day 7", "Day 14", "Day 21"])
    ax.set_ylabel("Tumour volume (mm³)")
    ax.set_ylim(0, 700)
    ax.grid(True, axis="y", lw=0.4, alpha=0.6)
    ax.legend(frameon=False, loc="upper left")


def _micro_image(g, size, n_cells, n_foci):
    nuc = np.zeros((size, size), np.float32)
    for _ in range(n_cells):
        cx, cy = int(g.uniform(0, size)), int(g.uniform(0, size))
        a = int(g.uniform(0.07, 0.11) * size)
        b = int(a * g.uniform(0.65, 0.95))
        cv2.ellipse(nuc, (cx, cy), (a, b), float(g.uniform(0, 180)), 0, 360, float(g.uniform(0.45, 0.85)), -1,
                    cv2.LINE_AA)
    texture = cv2.GaussianBlur(g.random((size, size)).astype(np.float32), (0, 0), 1.5)
    nuc = cv2.GaussianBlur(nuc, (0, 0), 1.0) * (0.6 + 0.8 * texture)
    foci = np.zeros_like(nuc)
    ys, xs = np.nonzero(nuc > 0.3)
    if len(xs):
        for i in g.integers(0, len(xs), n_foci):
            cv2.circle(foci, (int(xs[i]), int(ys[i])), int(g.integers(1, 3)), 1.0, -1, cv2.LINE_AA)
    img = np.zeros((size, size, 3), np.float32)
    img[..., 2] = nuc
    img[..., 1] = cv2.GaussianBlur(foci, (0, 0), 0.7) * 0.9
    img += g.normal(0, 0.035, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def _plot_micro(fig, spec, g):
    axes = _axes(fig, spec, 2, left=2.0, right=2.0, bottom=2.0, top=12.0, gap=6.0)
    for ax, label, n_foci in zip(axes, spec["panels"], (25, 160)):
        ax.imshow(_micro_image(g, 300, 9, n_foci), interpolation="nearest", aspect="auto")
        ax.plot([220, 280], [280, 280], color="white", lw=2)
        ax.set_axis_off()
        ax.set_title(f"{label} {'Sham' if n_foci == 25 else spec['d1'] + ' Gy'}", loc="left")


def _plot_icon(fig, spec, g):
    (ax,) = _axes(fig, spec, left=1.5, right=1.5, bottom=1.5, top=1.5)
    ax.pie(g.dirichlet([3, 2, 1]), colors=_COLORS[:3], startangle=90, wedgeprops={"lw": 0.6, "edgecolor": "white"})
    ax.set_axis_off()


_PLOTTERS = {"km": _plot_km, "dose": _plot_dose, "bars": _plot_bars, "micro": _plot_micro, "icon": _plot_icon}


def _render(spec: dict) -> bytes:
    """The figure as PDF bytes (vector) or PNG/JPEG bytes (raster, blurred when spec says so)."""
    g = np.random.default_rng(spec["data_seed"])
    small = spec["w"] < 300
    rc = {"font.size": 6.5 if small else 7.5, "axes.linewidth": 0.6, "xtick.major.width": 0.5,
          "ytick.major.width": 0.5, "lines.linewidth": 1.0, "legend.fontsize": 6 if small else 7,
          "axes.titlesize": 6.5 if small else 7.5, "svg.hashsalt": "ldrt-synth", "pdf.fonttype": 3,
          "pdf.compression": 6, "figure.facecolor": "white", "savefig.facecolor": "white"}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(spec["w"] / 72.0, spec["h"] / 72.0), dpi=RASTER_DPI)
        _PLOTTERS[spec["plot"]](fig, spec, g)
        if spec["kind"] == "vector":
            buf = io.BytesIO()
            fig.savefig(buf, format="pdf", metadata=MPL_PDF_META)
            return buf.getvalue()
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        bgr = cv2.cvtColor(np.asarray(canvas.buffer_rgba()), cv2.COLOR_RGBA2BGR)
    if spec["blurry"]:
        bgr = cv2.GaussianBlur(bgr, (0, 0), BLUR_SIGMA)
    if spec["plot"] == "micro":
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    else:
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("image encoding failed")
    return data.tobytes()


# ----------------------------------------------------------------------------------------------- paper plan

_SIZES = {  # plot -> (one-column widths, height/width one-column, column-wide h/w, page-wide h/w)
    "km": ((300, 336, 372, 408), 0.62, 0.72, 0.40),
    "dose": ((396, 432, 468, 504), 0.40, 0.62, 0.36),
    "bars": ((300, 336, 372, 408), 0.62, 0.72, 0.38),
    "micro": ((336, 372, 408), 0.52, 0.58, 0.42),
}


def _plan(seed: int, index: int) -> dict:
    rng = random.Random(f"ldrt-synth:{seed}:{index}")
    c = _Ctx(rng)
    layout = "two-column" if index % 2 else "one-column"
    two = layout == "two-column"
    blurry, tiny = index % 3 == 1, index % 3 == 2
    has_table = index % 4 in (0, 1)
    n_fig = rng.randint(2, 4)
    plots = rng.sample(["km", "dose", "bars", "micro"], n_fig - tiny)
    if tiny:
        plots.insert(rng.randint(1, len(plots)), "icon")
    blur_at = rng.choice([i for i, p in enumerate(plots) if p != "icon"]) if blurry else -1
    kinds = []
    for i, p in enumerate(plots):
        kinds.append("raster" if p == "micro" or i == blur_at else rng.choice(["vector", "raster"]))
    if "vector" not in kinds:
        free = [i for i, p in enumerate(plots) if p != "micro" and i != blur_at]
        if free:
            kinds[free[0]] = "vector"
    big = [i for i, p in enumerate(plots) if p != "icon"]
    wide = [two and p != "icon" and rng.random() < 0.4 for p in plots]
    if two and len(big) >= 2 and len({wide[i] for i in big}) == 1:
        wide[big[rng.randrange(len(big))]] = not wide[big[0]]

    floats: dict[str, dict] = {}
    paper_seed = zlib.crc32(f"{seed}:{index}".encode())
    for k, (plot, kind) in enumerate(zip(plots, kinds), 1):
        key = f"F{k}"
        if plot == "icon":
            w = h = TINY
        elif two:
            w = TEXT_W if wide[k - 1] else COL_W
            h = round(w * _SIZES[plot][3 if wide[k - 1] else 2])
        else:
            w = rng.choice(_SIZES[plot][0])
            h = round(w * _SIZES[plot][1])
        panels = PANELS.get(plot, ("", ""))
        logrank = f"log-rank {c.p()}"
        sentences = _captions(c, plot, panels, logrank)
        frame_w = TEXT_W if (not two or wide[k - 1]) else COL_W
        while True:  # 1-3 caption lines
            caption = f"Figure {k}. " + " ".join(sentences)
            tokens = _caption_tokens(f"Figure {k}.", " ".join(sentences))
            ops, _ = _text_block(tokens, CAP_FS, CAP_LEAD, frame_w, 0, 0)
            if len(ops) <= 3 or len(sentences) == 1:
                break
            sentences = sentences[:-1]
        f = {"key": key, "name": str(k), "figType": "Figure", "plot": plot, "kind": kind, "w": float(w),
             "h": float(h), "wide": bool(two and wide[k - 1]), "caption": caption, "cap_tokens": tokens,
             "must_filter": "blurry" if k - 1 == blur_at else "too_small" if plot == "icon" else None,
             "panels": panels}
        f["block"] = _figure_block(f, frame_w)
        f["spec"] = {"plot": plot, "kind": kind, "w": float(w), "h": float(h), "blurry": k - 1 == blur_at,
                     "panels": panels, "d1": c.d1, "d2": c.d2, "cell": c.cell, "logrank": logrank,
                     "data_seed": [paper_seed, k]}
        floats[key] = f
    if has_table:
        doses = ["Sham", f"{c.d1} Gy", f"{c.d2} Gy"] + (["2.5 Gy"] if rng.random() < 0.5 else [])
        rows = [["Group", "n", c.tabcol, "IL-6 (pg/mL)", "p"]]
        for i, dose in enumerate(doses):
            v1, v2 = rng.uniform(20, 90) * (1 - 0.1 * i), rng.uniform(15, 60) * (1 - 0.15 * i)
            rows.append([dose, str(rng.randint(8, 40)), f"{v1:.1f} ± {v1 * 0.1:.1f}", f"{v2:.1f} ± {v2 * 0.15:.1f}",
                         "–" if i == 0 else f"0.0{rng.randint(1, 4)}{rng.randint(1, 9)}"])
        text = (f"{c.Ep} and serum IL-6 by dose group. Values are mean ± SD; p-values versus sham irradiation "
                "(two-sided t-test).")
        frame_w = COL_W if two else TEXT_W
        f = {"key": "T1", "name": "1", "figType": "Table", "plot": None, "kind": "table", "wide": False,
             "caption": "Table 1. " + text, "cap_tokens": _caption_tokens("Table 1.", text), "must_filter": None,
             "rows": rows}
        f["block"] = _table_block(f, frame_w)
        floats["T1"] = f

    # --- mandatory text, with the figure mentions
    fig_keys = [k for k in floats if k.startswith("F")]
    n = len(fig_keys)
    shows_at = rng.randrange(n)
    results = []
    for i, key in enumerate(fig_keys):
        f = floats[key]
        templates = MENTIONS[f["plot"]]
        a, b = f["panels"]
        if f["plot"] in PANELS:  # panel forms ("Fig. 2B", "Fig. 3(a)") whenever the figure has panels
            chosen = [0, 1] if i == shows_at or rng.random() < 0.5 else [1]
        elif i == shows_at:
            chosen = [0] + ([rng.randrange(1, len(templates))] if rng.random() < 0.6 else [])
        else:
            chosen = sorted(rng.sample(range(len(templates)), rng.randint(1, 2)))
        mentions = [(templates[j](c, i + 1, a, b), [key]) for j in chosen]
        filler = [(t(c), []) for t in rng.sample(RESULTS, rng.randint(1, 2))]
        sentences = filler[:1] + mentions + filler[1:] if rng.random() < 0.4 else mentions + filler
        results.append({"sentences": sentences, "floats": [key]})
    if has_table:
        tab = [(f"{c.Ep} differed significantly between the dose groups (Table 1).", ["T1"])]
        if rng.random() < 0.5:
            tab.append(("Serum IL-6 concentrations of all groups are listed in Table 1.", ["T1"]))
        results.insert(rng.randint(1, len(results)),
                       {"sentences": tab + [(rng.choice(RESULTS)(c), [])], "floats": ["T1"]})
    combined = []
    if n >= 3:
        combined.append((f"Taken together, Figs. 1–{n} support a non-linear response to low doses.", fig_keys))
    i, j = sorted(rng.sample(range(n), 2))
    combined.append((f"Figs. {i + 1} and {j + 1} indicate that the effect of {c.d1} Gy was consistent across "
                     "endpoints.", [fig_keys[i], fig_keys[j]]))

    def plain(pool, k):
        return [(t(c), []) for t in rng.sample(pool, k)]

    intro = [{"sentences": plain(INTRO, 3), "floats": []},
             {"sentences": plain(INTRO, 1) + [(f"The aim of the present study was to characterise {c.ep} in {c.pop} "
                                               f"after {c.d1} and {c.d2} Gy.", [])], "floats": []}]
    if rng.random() < 0.35:  # sometimes Figure 1 is introduced (and placed) in the Introduction
        intro.append(results.pop(0))
    sections = [
        ("1. Introduction", intro),
        ("2. Methods", [{"sentences": plain(METHODS, 4), "floats": []}]),
        ("3. Results", results),
        ("4. Discussion", [{"sentences": plain(DISCUSSION, 1) + combined + plain(DISCUSSION, 1), "floats": []},
                           {"sentences": [(f"In summary, LDRT with {c.d1} Gy produced a reproducible change in "
                                           f"{c.ep} in {c.pop}.", [])] + plain(DISCUSSION, 1), "floats": []}]),
    ]
    # optional paragraphs (the page-count knob): (section, slot, sentences)
    decks: list[list] = [[], [], [], []]
    pools = [INTRO, METHODS, RESULTS, DISCUSSION]

    def deal(s: int) -> str:
        if not decks[s]:
            decks[s] = rng.sample(pools[s], len(pools[s]))
        return decks[s].pop()(c)

    filler = []
    for i in range(40):
        s = [2, 0, 3, 1, 2, 3, 0, 1][i % 8]
        nslots = len(sections[s][1])
        slot = {0: rng.randint(1, nslots), 1: nslots, 2: rng.randint(1, nslots), 3: rng.randint(0, nslots - 1)}[s]
        filler.append((s, slot, [deal(s) for _ in range(rng.randint(3, 5))]))

    surnames = rng.sample(SURNAMES, rng.randint(3, 6))
    names = [f"{chr(65 + rng.randrange(26))}. {s}" for s in surnames]
    city, country = rng.choice(CITIES)
    title = rng.choice([
        f"{c.topic} in {c.pop}: {c.ep} after {c.d1} and {c.d2} Gy",
        f"Effects of {c.topic_l} on {c.ep} in {c.pop}",
        f"{c.Ep} after {c.topic_l} in {c.pop}: a dose-finding study",
    ])
    abstract = [
        f"Low-dose radiation therapy (LDRT) is increasingly discussed for {c.pop}.",
        f"We studied the effect of single doses of {c.d1} Gy and {c.d2} Gy on {c.ep}, with sham irradiation as control.",
        f"Compared with sham irradiation, {c.ep} improved by {c.pct()}% after {c.d1} Gy ({c.p()}).",
        "No dose-limiting toxicity was observed during follow-up.",
        "These results support the evaluation of LDRT in prospective randomised trials.",
    ]
    return {
        "seed": seed, "index": index, "layout": layout, "title": title,
        "authors": ", ".join(names[:-1]) + " and " + names[-1],
        "affiliation": f"Department of Radiation Oncology, University Hospital {city}, {country}",
        "abstract": abstract,
        "keywords": ["low-dose radiotherapy", c.pop, c.ep, "dose–response", "hormesis"],
        "body_fs": 9.0 if two else 10.0, "body_lead": 11.0 if two else 12.5,
        "hyph_key": f"{seed}:{index}", "floats": floats, "sections": sections, "filler": filler,
        "target_pages": rng.choice([2, 3, 3, 4]), "volume": rng.randint(8, 14), "first_page": rng.randint(12, 480),
        "first_author": surnames[0],
    }


def _items(plan: dict, level: int) -> tuple[list, list, dict]:
    """Flow items for `level` optional paragraphs, the sections as text, and the mentions of each float."""
    extra = plan["filler"][:level]
    items, sections, mentions = [], [], {k: [] for k in plan["floats"]}
    for s, (heading, paras) in enumerate(plan["sections"]):
        items.append(("heading", heading))
        texts = []
        for j in range(len(paras) + 1):
            for s2, slot, sentences in extra:
                if s2 == s and slot == j:
                    items.append(("para", sentences))
                    texts.append(" ".join(sentences))
            if j < len(paras):
                sentences = [t for t, _ in paras[j]["sentences"]]
                items.append(("para", sentences))
                texts.append(" ".join(sentences))
                for text, refs in paras[j]["sentences"]:
                    for key in refs:
                        mentions[key].append(text)
                items.extend(("float", key) for key in paras[j]["floats"])
        sections.append({"heading": heading, "paragraphs": texts})
    return items, sections, mentions


def _choose_layout(plan: dict) -> tuple[_Flow, int]:
    """The largest number of optional paragraphs whose layout stays within the target page count."""
    cache: dict[int, _Flow] = {}

    def pages(level: int) -> int:
        if level not in cache:
            cache[level] = _Flow(plan, _items(plan, level)[0])
        return len(cache[level].pages)

    lo, hi = 0, len(plan["filler"])
    target = max(plan["target_pages"], pages(lo))
    if pages(hi) <= target:
        lo = hi
    else:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if pages(mid) <= target:
                lo = mid
            else:
                hi = mid
    if not 2 <= pages(lo) <= 4:
        raise RuntimeError(f"paper {plan['index']}: layout gave {pages(lo)} pages")
    return cache[lo], lo


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


def _append_contents(page, ops: list) -> None:
    """Append text and rule ops as one content stream (base-14 fonts registered on the page beforehand)."""
    if not ops:
        return
    out = []
    for op in ops:
        if op[0] == "text":
            y = _num(PAGE_H - op[1])
            out.append("BT 0 g")
            for x, text, font in op[3]:
                out.append(f"1 0 0 1 {_num(x)} {y} Tm /{font} {_num(op[2])} Tf <{text.encode('cp1252').hex()}> Tj")
            out.append("ET")
        else:
            y = _num(PAGE_H - op[3])
            out.append(f"q 0 G {_num(op[4])} w {_num(op[1])} {y} m {_num(op[2])} {y} l S Q")
    doc = page.parent
    xref = doc.get_new_xref()
    doc.update_object(xref, "<<>>")
    doc.update_stream(xref, ("\n".join(out) + "\n").encode("latin-1"))
    kind, value = doc.xref_get_key(page.xref, "Contents")
    if kind == "null":
        doc.xref_set_key(page.xref, "Contents", f"{xref} 0 R")
    elif kind == "xref":
        doc.xref_set_key(page.xref, "Contents", f"[{value} {xref} 0 R]")
    else:
        doc.xref_set_key(page.xref, "Contents", f"{value[:-1].strip()} {xref} 0 R]")


def _box(r) -> dict:
    return {"x1": round(r[0], 3), "y1": round(r[1], 3), "x2": round(r[2], 3), "y2": round(r[3], 3)}


def make_paper(path: Path, seed: int, index: int) -> dict:
    """Write one paper to path; returns its ground truth."""
    plan = _plan(seed, index)
    flow, level = _choose_layout(plan)
    _, sections, mentions = _items(plan, level)
    n_pages = len(flow.pages)
    first = plan["first_page"]
    header = f"{JOURNAL} {YEAR}; {plan['volume']}: {first}–{first + n_pages - 1}"
    right = f"{plan['first_author']} et al."
    images = {key: _render(f["spec"]) for key, f in plan["floats"].items() if f["figType"] == "Figure"}

    doc = pymupdf.open()
    sources = []
    for pno, ops in enumerate(flow.pages):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        for font in _FONT:
            page.insert_font(fontname=font)
        number = str(first + pno)
        chrome = [("text", 38.0, 8.0, [(LEFT, header, "heit"), (RIGHT - _width(right, "heit", 8), right, "heit")]),
                  ("rule", LEFT, RIGHT, 44.0, 0.4),
                  ("text", 762.0, 8.0, [((PAGE_W - _width(number, "helv", 8)) / 2, number, "helv")])]
        segment: list = []
        for op in chrome + ops + [("end",)]:
            if op[0] in ("text", "rule"):
                segment.append(op)
                continue
            _append_contents(page, segment)
            segment = []
            if op[0] == "fig":
                rect = pymupdf.Rect(op[2])
                if plan["floats"][op[1]]["kind"] == "vector":
                    src = pymupdf.open("pdf", images[op[1]])
                    sources.append(src)
                    page.show_pdf_page(rect, src, 0, keep_proportion=False)
                else:
                    page.insert_image(rect, stream=images[op[1]], keep_proportion=False)
    doc.set_metadata({"title": plan["title"], "author": plan["authors"], "subject": JOURNAL,
                      "keywords": "; ".join(plan["keywords"]), "creator": "ldrt-hpc synth",
                      "producer": "ldrt-hpc synth", "creationDate": PDF_DATE, "modDate": PDF_DATE})
    doc.save(path, garbage=3, deflate=True, no_new_id=True)
    doc.close()
    for src in sources:
        src.close()

    figures = []
    for key, f in plan["floats"].items():
        placed = flow.placed[key]
        figures.append({
            "name": f["name"], "figType": f["figType"], "page": placed["page"], "caption": f["caption"],
            "captionBoundary": _box(placed["caption"]), "regionBoundary": _box(placed["region"]),
            "kind": f["kind"], "must_filter": f["must_filter"], "mentions": mentions[key], "plotType": f["plot"],
        })
    return {
        "paper": path.stem, "file": path.name, "title": plan["title"], "pages": n_pages, "layout": plan["layout"],
        "figures": figures, "authors": plan["authors"], "abstract": " ".join(plan["abstract"]),
        "keywords": plan["keywords"], "sections": sections,
        "running_header": [header, right],
    }


def synth_corpus(out_dir: Path, papers: int, seed: int) -> list[dict]:
    """Write `papers` PDFs and `ground_truth.json` to out_dir; returns the ground truth (one dict per paper)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    truth = [make_paper(out_dir / f"synth-{seed}-{i:05d}.pdf", seed, i) for i in range(papers)]
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth
