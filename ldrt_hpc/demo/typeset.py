"""Line breaking: greedy breaking of (word, font) tokens, hyphenation at line ends, ragged and justified lines.

Body text is laid out line by line here rather than by a PDF library so that every coordinate of the ground
truth is known exactly.
"""

from __future__ import annotations

import re
import zlib

from .page import ASCENDER, BOLD, DESCENDER, REGULAR, Box, TextOp, text_width

Token = tuple[str, str]
"""(word, font)"""

_HYPHENATABLE = re.compile(r"([a-z]{8,})([.,;:)]?)")
_VOWELS = set("aeiouy")
_DIGRAPHS = {"th", "ch", "sh", "ph", "ck", "gh", "qu", "wh"}


def words(text: str, font: str) -> list[Token]:
    return [(word, font) for word in text.split(" ")]


def caption_tokens(label: str, text: str) -> list[Token]:
    """A caption: the bold label ("Figure 2.") then the regular text."""
    return words(label, BOLD) + words(text, REGULAR)


class LineBreaker:
    """Greedy line breaking of (word, font) tokens; long lowercase words may be hyphenated at a line end.

    Which words get hyphenated is a hash of `hyphenation_key`, the word and the line number: deterministic, and
    different between papers.  Without a key nothing is hyphenated.
    """

    def __init__(self, tokens: list[Token], size: float, width: float, hyphenation_key: str | None = None):
        self.tokens, self.size, self.width, self.hyphenation_key = list(tokens), size, width, hyphenation_key
        self.position = 0
        self.lines_made = 0

    def done(self) -> bool:
        return self.position >= len(self.tokens)

    def next_line(self, allow_hyphen: bool = False) -> tuple[list[Token], bool]:
        """The next line's tokens and whether it is the last line."""
        size, line, used = self.size, [], 0.0
        while self.position < len(self.tokens):
            word, font = self.tokens[self.position]
            space = text_width(" ", line[-1][1], size) if line else 0.0
            word_width = text_width(word, font, size)
            if used + space + word_width <= self.width + 0.01:
                line.append((word, font))
                used += space + word_width
                self.position += 1
                continue
            if line and allow_hyphen and self.hyphenation_key is not None:
                # hyphenate some words, and always try when the justified line would be loose
                loose = (self.width - used) / len(line) > 0.25 * size
                split = self._split(word, font, self.width - used - space, loose)
                if split:
                    line.append((split[0] + "-", font))
                    self.tokens[self.position] = (split[1], font)
                    break
            if not line:  # a word wider than the line gets a line of its own
                line.append((word, font))
                self.position += 1
            break
        self.lines_made += 1
        return line, self.done()

    def _split(self, word: str, font: str, available: float, force: bool) -> tuple[str, str] | None:
        """Head and tail of `word` split at the last syllable boundary whose head (with hyphen) fits."""
        match = _HYPHENATABLE.fullmatch(word)
        chosen = zlib.crc32(f"{self.hyphenation_key}:{word}:{self.lines_made}".encode()) % 10 < 6
        if not match or not (force or chosen):
            return None
        core, tail = match.groups()
        for cut in range(len(core) - 3, 2, -1):
            before, first, second = core[cut - 1], core[cut], core[cut + 1]
            vowel_consonant_vowel = before in _VOWELS and first not in _VOWELS and second in _VOWELS
            two_consonants = before not in _VOWELS and first not in _VOWELS and before + first not in _DIGRAPHS
            fits = text_width(core[:cut] + "-", font, self.size) <= available
            if (vowel_consonant_vowel or two_consonants) and fits:
                return core[:cut], core[cut:] + tail
        return None


def _ragged_runs(line: list[Token], x_start: float, size: float) -> tuple[list, float]:
    """Runs (x, text, font) of one ragged line, words of one font merged; returns them and the line's end x."""
    runs: list[list] = []
    x = x_start
    for i, (word, font) in enumerate(line):
        if i:
            previous_font = line[i - 1][1]
            runs[-1][1] += " "
            x += text_width(" ", previous_font, size)
        if runs and runs[-1][2] == font:
            runs[-1][1] += word
        else:
            runs.append([x, word, font])
        x += text_width(word, font, size)
    return [tuple(run) for run in runs], x


def text_block(tokens: list[Token], size: float, leading: float, width: float, x_start: float,
               top: float) -> tuple[list[TextOp], Box]:
    """A ragged, unhyphenated block of lines: ops and the union of its line boxes (PyMuPDF's ascender/descender)."""
    breaker = LineBreaker(tokens, size, width)
    ops, box = [], [x_start, top, x_start, top]
    baseline = top
    while not breaker.done():
        line, _ = breaker.next_line()
        fonts = {font for _, font in line}
        if ops:
            baseline += leading
        else:
            baseline = top + max(ASCENDER[font] for font in fonts) * size
        runs, x_end = _ragged_runs(line, x_start, size)
        ops.append(TextOp(baseline, size, runs))
        box[1] = min(box[1], baseline - max(ASCENDER[font] for font in fonts) * size)
        box[2] = max(box[2], x_end)
        box[3] = max(box[3], baseline + max(DESCENDER[font] for font in fonts) * size)
    return ops, tuple(box)


def justified_line(line: list[Token], x_start: float, width: float, baseline: float, size: float,
                   justify: bool) -> TextOp:
    """One line of body text, stretched to `width` unless it ends a paragraph (`justify` false)."""
    widths = [text_width(word, font, size) for word, font in line]
    space = text_width(" ", REGULAR, size)
    gap = space
    if justify and len(line) > 1:  # word gaps stay below 0.6 em: wider ones split lines in text extractors
        slack = (width - sum(widths) - space * (len(line) - 1)) / (len(line) - 1)
        gap = min(0.6 * size, space + max(0.0, slack))
    runs, x = [], x_start
    for (word, font), word_width in zip(line, widths):
        runs.append((x, word, font))
        x += word_width + gap
    return TextOp(baseline, size, runs)
