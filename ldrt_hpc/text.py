"""Find the sentences of a paper (Markdown converted from PDF) that mention a given figure or table.

Pure functions, standard library only:

* `split_sentences` cuts prose into sentences without breaking at "et al.", "Fig.", initials or decimals;
* `find_mentions` lists the (figType, name) pairs a sentence refers to, e.g. "Figs. 2–4" -> Figure 2, 3, 4;
* `is_caption` tells a caption paragraph ("Figure 3. Dose ...") from body text ("Figure 3 shows ...");
* `mentioning_sentences` collects the sentences that mention one figure, leaving out caption paragraphs.
"""

from __future__ import annotations

import re

from .labels import CAPTION_NUMBER, CAPTION_START, MENTION_WORD, NUMBER_LINK, SUPPLEMENTARY, UNNUMBERED_END

# Abbreviations whose final period never ends a sentence (compared lower-case, without the final period).
_ABBREVIATIONS = frozenset({
    "al", "fig", "figs", "eq", "eqs", "ref", "refs", "vs", "approx", "dr", "suppl", "cf", "ca", "tab", "mr", "mrs",
    "ms", "prof", "st", "vol", "sect", "sec", "resp", "incl", "viz",
})
# A sentence ends at . ! or ? (plus closing quotes/brackets) when the next text starts like a sentence.
_BOUNDARY = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[*_\"“‘]*[A-Z0-9(\[])")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # "e.g", "i.e", "U.S": the token before the final period
_BULLET = re.compile(r"[-*+]\s")
_SPACE = re.compile(r"\s+")

# Mentions. The label is case-insensitive ("fig", "FIGURE"); numbers, panels and roman numerals are not.
_LABEL = re.compile(
    rf"(?P<ext>\b(?i:extended\s+data)\s+)?(?P<supp>\b(?i:{SUPPLEMENTARY}))?\b(?P<kind>{MENTION_WORD})\s*"
)
_LETTER = r"[A-Za-z](?![A-Za-z0-9])"  # one panel letter: "b" in "2a,b" but not the "S" of "S3"
_PANEL = rf"(?:{_LETTER}(?:\s*(?:[-–—,&]|and)\s*{_LETTER})*|\s?\({_LETTER}(?:\s*[-–—,]\s*{_LETTER})*\))"
# "1.5" is a decimal, not Figure 1: a number may not run on into ".<digit>" or further letters/digits.
_ITEM = re.compile(rf"(?:(?P<num>S?\d+)(?:{_PANEL})?|(?P<roman>[IVX]+))(?![A-Za-z0-9]|\.\d)")
_SEP = re.compile(r"\s*(?:(?P<range>[-–—]|to\b)|,?\s*(?:(?:and|or)\b|&)|,)\s*")
# After a singular label ("Fig. 2, 30 patients") a further number must look like a list item, not a count.
_LIST_END = re.compile(r"\s*(?:[,;:.)\]!?&\-–—]|$|(?:and|or|to)\b)")
_ROMAN = {"I": 1, "V": 5, "X": 10}
_MAX_RANGE = 50  # "Figs. 2–4" is expanded; a "range" spanning more than this is two numbers, not a range

# A caption paragraph: optional emphasis, optional "Supplementary", a label, a number, then a delimiter (or an
# unnumbered label: "Figure: Trial profile").
_IMAGE = re.compile(r"(?:!\[[^\]]*\]\([^)]*\)\s*)+")
_CAPTION = re.compile(rf"[*_]*\s*{CAPTION_START}(?:{NUMBER_LINK}(?:{CAPTION_NUMBER})[A-Za-z]?[*_]*\s*"
                      rf"(?:[.:|—–-]|\*\*)|{UNNUMBERED_END})")


def _norm(text: str) -> str:
    """Collapse runs of whitespace to one space."""
    return _SPACE.sub(" ", text).strip()


def _blocks(text: str) -> list[tuple[str, bool]]:
    """(text, is_prose) units: prose paragraphs, and headings and table rows, which stand alone."""
    blocks: list[tuple[str, bool]] = []
    lines: list[str] = []

    def flush() -> None:
        if lines:
            blocks.append((_norm(" ".join(lines)), True))
            lines.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            flush()
        elif line.startswith(("#", "|")):
            flush()
            blocks.append((_norm(line), False))
        else:
            if _BULLET.match(line):  # a list item starts a new unit rather than running on from the one above
                flush()
            lines.append(line)
    flush()
    return blocks


def _protected(before: str) -> bool:
    """Whether the period closing `before` belongs to an abbreviation, an initial or "e.g."-like token."""
    token = before.rsplit(" ", 1)[-1].lstrip("([\"'“‘*_")
    return (
        token.lower() in _ABBREVIATIONS
        or token == "No"  # "No. 5"; lower-case "no." is an ordinary word
        or (len(token) == 1 and token.isupper())  # an initial: "J. Smith"
        or _DOTTED.fullmatch(token) is not None
    )


def _prose_sentences(paragraph: str) -> list[str]:
    """Sentences of one whitespace-normalised paragraph."""
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(paragraph):
        if paragraph[match.start()] == "." and _protected(paragraph[start:match.start()]):
            continue
        sentences.append(paragraph[start:match.end()].strip())
        start = match.end()
    sentences.append(paragraph[start:].strip())
    return [s for s in sentences if s]


def _unit_sentences(block: str, prose: bool) -> list[str]:
    return _prose_sentences(block) if prose else [block]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; headings and table rows are units of their own."""
    return [s for block, prose in _blocks(text) for s in _unit_sentences(block, prose)]


def _roman(numeral: str) -> int:
    """Value of a roman numeral made of I, V and X."""
    values = [_ROMAN[c] for c in numeral]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _name(item: re.Match[str], supplementary: bool) -> str:
    """Canonical figure name of a matched item: panels dropped, roman numerals as digits, "S" if supplementary."""
    name = item["num"] or str(_roman(item["roman"]))
    return "S" + name if supplementary and not name.startswith("S") else name


def _expand(first: str, last: str) -> list[str]:
    """Names from `first` to `last` inclusive ("S1", "S3" -> S1, S2, S3); just the two if not a sensible range."""
    prefix = "S" if first.startswith("S") else ""
    if last.startswith("S") != bool(prefix):
        return [first, last]
    lo, hi = int(first.removeprefix("S")), int(last.removeprefix("S"))
    if not 0 < hi - lo <= _MAX_RANGE:
        return [first, last]
    return [f"{prefix}{n}" for n in range(lo, hi + 1)]


def find_mentions(sentence: str) -> set[tuple[str, str]]:
    """(figType, name) pairs mentioned: figType is "Figure" or "Table"; name like "3" or "S2"."""
    found: set[tuple[str, str]] = set()
    for label in _LABEL.finditer(sentence):
        if label["ext"]:  # "Extended Data Fig. 2" is not Fig. 2
            continue
        kind = label["kind"]
        fig_type = "Table" if kind[0] in "tT" else "Figure"
        plural = kind.rstrip(".").lower().endswith("s")
        item = _ITEM.match(sentence, label.end())
        # Roman numerals only after a capitalised label: "the table I used" is not Table 1.
        if not item or (item["roman"] and kind[0].islower()):
            continue
        roman, supplementary = bool(item["roman"]), bool(label["supp"])
        names = [_name(item, supplementary)]
        pos = item.end()
        while (sep := _SEP.match(sentence, pos)) and (nxt := _ITEM.match(sentence, sep.end())):
            if bool(nxt["roman"]) != roman:  # "Table 1 and I ..." : the pronoun, not a second table
                break
            dash = sep["range"] and sep["range"] != "to"
            if not plural and not dash and not _LIST_END.match(sentence, nxt.end()):
                break
            name = _name(nxt, supplementary)
            names[-1:] = _expand(names[-1], name) if sep["range"] else [names[-1], name]
            pos = nxt.end()
        found.update((fig_type, n) for n in names)
    return found


def is_caption(paragraph: str) -> bool:
    """Whether a paragraph starts with a figure/table label and a delimiter, e.g. "**Figure 3.** Dose ..."."""
    return _CAPTION.match(_IMAGE.sub("", paragraph.lstrip(), count=1).lstrip()) is not None


def _canonical(fig_type: str, name: str) -> tuple[str, str]:
    """("figure", "ii") -> ("Figure", "2"), so callers may pass names as they appear in the paper."""
    kind = "Table" if fig_type.strip().lower().startswith("tab") else "Figure"
    name = name.strip()
    if re.fullmatch(r"[IVX]+", name.upper()):
        name = str(_roman(name.upper()))
    return kind, name[0].upper() + name[1:] if name[:1] in "sS" else name


def mentioning_sentences(markdown: str, fig_type: str, name: str, caption: str = "") -> list[str]:
    """Sentences of the document that mention (fig_type, name), in document order, without duplicates,
    excluding the figure's own caption (and any other caption paragraph: a paragraph that starts with a
    figure/table label such as 'Figure 3.' / 'Fig. 3:' / 'Table 2 |' / '**Figure 3.**' is a caption, not a mention)."""
    target = _canonical(fig_type, name)
    own_caption = _norm(caption.replace("*", ""))  # emphasis markers may differ between caption and body text
    out: list[str] = []
    for block, prose in _blocks(markdown):
        # A caption paragraph, or a caption set as a heading ("## Table 1: Patient characteristics"); not table rows.
        if (prose or block.startswith("#")) and is_caption(block.lstrip("#")):
            continue
        for sentence in _unit_sentences(block, prose):
            if sentence in out or target not in find_mentions(sentence):
                continue
            if own_caption and _norm(sentence.replace("*", "")) in own_caption:
                continue
            out.append(sentence)
    return out
