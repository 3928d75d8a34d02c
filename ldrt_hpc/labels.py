"""The words of a figure or table label ("Fig. 3", "Figure 3", "FIGURE 3", "Tab. 2", "Supplementary Figure S1"),
defined once. Pattern strings, not compiled regexes: each parser composes them with its own anchors and flags.

- caption labels: pdf/layout.py (`CAPTION_LABEL`, a caption at the start of a PDF text block), pdf/evaluate.py
  (strips the label off a caption) and text.py (`is_caption`, a caption paragraph of the Markdown) use
  `CAPTION_START`;
  layout.py composes `CAPTION_NUMBER`, `NUMBER_LINK` and `UNNUMBERED_END` after it;
- mentions in running text: text.py (`find_mentions`) uses `SUPPLEMENTARY` and `MENTION_WORD`.

Standard library only; imports nothing of the package.
"""

from __future__ import annotations

SUPPLEMENTARY = r"Supplementa(?:ry|l)\s+|Suppl\.\s*"
"""What marks a supplementary label ("Supplementary Figure 2", "Suppl. Fig. 2"), with the space after it."""

_WORD_END = r"\b"
_CAPITAL_PLURAL = r"(?:S(?![0-9]))?"
"""In capitals a plural "S" directly before a digit is the S of a supplementary number: "FIGURES2" is Figure S2."""


def label_word(word_end: str = "", plural: str = "s?") -> str:
    """Figure/table label words, capitalised: Fig, Fig., Figs., Figure, Figures, Table, Tables, Tab., Tabs.
    `word_end` goes right after the word, before its optional dot (e.g. a word boundary); `plural` is the optional
    plural s. Upper-casing the result gives the capitals form only without `word_end` (in capitals, the escape of
    a word boundary means "not a word boundary")."""
    return rf"Fig(?:ure)?{plural}{word_end}\.?|Table{plural}{word_end}|Tab{plural}\."


CAPTION_WORD = f"{label_word()}|{label_word(plural=_CAPITAL_PLURAL).upper()}"
"""A label word as a caption starts with it: capitalised or in capitals ("Figure", "FIGURE"; not "figure"). The
number may follow without a space ("Figure3." where a PDF lost the space)."""
CAPTION_START = rf"(?P<supp>(?i:{SUPPLEMENTARY}))?(?P<kind>{CAPTION_WORD})"
"""The start of a caption label up to its number: groups 'supp' (set when supplementary) and 'kind' (the word)."""
CAPTION_NUMBER = r"S?\d+|[IVX]+"
"""A caption's number: arabic, supplementary ("S2") or a roman table number ("Table IV")."""
NUMBER_LINK = r"(?:\s*|-)"
"""Between a caption's label word and its number: spaces, none, or a hyphen ("Figure-1:", "Table-1:")."""
UNNUMBERED_END = r"(?:(?<=[eE]\.)|(?<=[eE])[:|.])(?=[*_]*(?:\s|$))(?![*_]*\s*[a-z0-9])"
"""Right after the word of an unnumbered caption label, its delimiter: "Figure:", "Figure. Trial profile", "Table:"
(the word's own optional dot is the delimiter of "Figure."). The singular full word only ("Fig. 1 is new" is a
sentence, "Figures: a and b" a list), and a title that is not lower case ("Figure: the ..." is text). Emphasis may
close after it ("**Figure:** Trial profile")."""
MENTION_WORD = rf"(?i:{label_word(_WORD_END)})"
"""A label word in running text: in any case ("see figure 3"), a whole word ("Fig3.png" mentions nothing)."""
