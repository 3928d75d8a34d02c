"""Sentence splitting, figure/table mention detection and caption exclusion (ldrt_hpc.text)."""

from __future__ import annotations

import pytest

from ldrt_hpc.pdf.layout import parse_label
from ldrt_hpc.text import find_mentions, is_caption, mentioning_sentences, split_sentences

F, T = "Figure", "Table"


# --- split_sentences ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Smith et al. Reported the effect.",
        "Low doses, e.g. 0.5 Gy, were used.",
        "Cells were irradiated, i.e. Exposed to X-rays.",
        "As shown in Fig. 3 the dose rises.",
        "As shown in Figs. 3 and 4 the dose rises.",
        "Using Eq. 2 we obtain the slope.",
        "Following Ref. 12 we fitted the curve.",
        "Control vs. Treated groups differed.",
        "We used approx. 10 mice.",
        "Cage No. 5 was excluded.",
        "Dr. Jones irradiated the cells.",
        "See Suppl. Table 2 for details.",
        "The effect was small (cf. Ref. [4]).",
        "It lasted ca. 3 days.",
        "Samples from J. Smith were used.",
        "The dose was 0.5 Gy in all arms.",
        "The difference was significant (p < 0.05) in all arms.",
        "Expression rose 1.5-fold after 2 Gy.",
        "Data from the U.S. Army were used.",
        "See Fig. S2 for the controls.",
        "See Fig. (3) for the controls.",
    ],
)
def test_abbreviations_and_decimals_do_not_end_a_sentence(text):
    assert split_sentences(text) == [text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", ["One.", "Two."]),
        ("Is it? Yes! Done.", ["Is it?", "Yes!", "Done."]),
        ("The dose was 2 Gy. 10 mice died.", ["The dose was 2 Gy.", "10 mice died."]),
        ("It rose. (This was expected.) Then it fell.", ["It rose.", "(This was expected.)", "Then it fell."]),
        ("It rose [1]. [2] agrees.", ["It rose [1].", "[2] agrees."]),
        ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
        ("It was significant (p < 0.05). The rest", ["It was significant (p < 0.05).", "The rest"]),
        ("As shown (Fig. 1). The rest", ["As shown (Fig. 1).", "The rest"]),
        ("See Fig. 2B. The rest", ["See Fig. 2B.", "The rest"]),
        ("Smith et al. (2019) agree. We too.", ["Smith et al. (2019) agree.", "We too."]),
        ("the answer was no. Then we left.", ["the answer was no.", "Then we left."]),
        ("It rose. then it fell.", ["It rose. then it fell."]),  # a lower-case start does not open a sentence
        ("Version 2.0 was used. It worked.", ["Version 2.0 was used.", "It worked."]),
    ],
)
def test_sentence_boundaries(text, expected):
    assert split_sentences(text) == expected


def test_whitespace_and_newlines_are_collapsed():
    assert split_sentences("The  dose\nwas\t2 Gy.\nThe   rest\nfollows.") == ["The dose was 2 Gy.", "The rest follows."]


def test_blank_line_ends_a_sentence():
    assert split_sentences("no final stop here\n\nnext paragraph") == ["no final stop here", "next paragraph"]


def test_headings_and_table_rows_are_their_own_units():
    text = "# Results\nThe dose rose.\n## Figure 2 data\n| a | b |\n|---|---|\n| 1 | Fig. 2 |\nmore text\n"
    assert split_sentences(text) == [
        "# Results", "The dose rose.", "## Figure 2 data", "| a | b |", "|---|---|", "| 1 | Fig. 2 |", "more text",
    ]


def test_bullets_start_a_new_unit():
    assert split_sentences("Intro text\n- first item\n- second item") == ["Intro text", "- first item", "- second item"]


def test_empty_text():
    assert split_sentences("") == []
    assert split_sentences("\n \n\n") == []


# --- find_mentions -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        # labels
        ("As shown in Fig. 3.", {(F, "3")}),
        ("As shown in Figure 3.", {(F, "3")}),
        ("As shown in FIGURE 3.", {(F, "3")}),
        ("As shown in FIG. 3.", {(F, "3")}),
        ("as shown in fig 3", {(F, "3")}),
        ("as shown in fig. 3", {(F, "3")}),
        ("as shown in Fig.3", {(F, "3")}),
        ("Figure 2 shows the dose response.", {(F, "2")}),
        ("Figure 12 shows it.", {(F, "12")}),
        ("Figure 10 and Table 11", {(F, "10"), (T, "11")}),
        # lists
        ("Figs. 2 and 3 agree.", {(F, "2"), (F, "3")}),
        ("Figures 1, 2, and 4 agree.", {(F, "1"), (F, "2"), (F, "4")}),
        ("Figures 1, 2 and 4 agree.", {(F, "1"), (F, "2"), (F, "4")}),
        ("as in Fig. 1, 3.", {(F, "1"), (F, "3")}),
        ("(Fig. 1,3)", {(F, "1"), (F, "3")}),
        ("Figs. 2 & 5", {(F, "2"), (F, "5")}),
        ("Fig. 2 or 3", {(F, "2"), (F, "3")}),
        ("Figs. 2A, 3B and 4C", {(F, "2"), (F, "3"), (F, "4")}),
        ("Figs. 2a,b and 3c", {(F, "2"), (F, "3")}),
        # ranges
        ("Figs. 2–4", {(F, "2"), (F, "3"), (F, "4")}),
        ("Figures 2-4", {(F, "2"), (F, "3"), (F, "4")}),
        ("Figures 2—4", {(F, "2"), (F, "3"), (F, "4")}),
        ("Figures 2 to 4", {(F, "2"), (F, "3"), (F, "4")}),
        ("Figs. 2–4 and 6", {(F, "2"), (F, "3"), (F, "4"), (F, "6")}),
        ("Fig. 1, 3–5", {(F, "1"), (F, "3"), (F, "4"), (F, "5")}),
        ("Figs. 2A–3B", {(F, "2"), (F, "3")}),
        ("Tables 1–3", {(T, "1"), (T, "2"), (T, "3")}),
        ("Figs. 4–2", {(F, "4"), (F, "2")}),  # not a range: both ends only
        # panels are dropped
        ("Fig. 2B", {(F, "2")}),
        ("Fig. 2(a)", {(F, "2")}),
        ("Fig. 2 (a)", {(F, "2")}),
        ("Fig. 2(a–c)", {(F, "2")}),
        ("Fig. 2a,b", {(F, "2")}),
        ("Fig. 2a, b", {(F, "2")}),
        ("Fig. 2a and b", {(F, "2")}),
        ("Fig. 3A–C", {(F, "3")}),
        ("Fig. 3A-C", {(F, "3")}),
        ("Fig. 3a-d, 4b", {(F, "3"), (F, "4")}),
        ("(Fig. 1)", {(F, "1")}),
        ("(see Figure 2c)", {(F, "2")}),
        ("[Fig. 5]", {(F, "5")}),
        ("Figure 3's left panel", {(F, "3")}),
        # tables and roman numerals
        ("Table 1", {(T, "1")}),
        ("table 1 lists them", {(T, "1")}),
        ("TABLE 4", {(T, "4")}),
        ("Tab. 2", {(T, "2")}),
        ("Tables 1 and 2", {(T, "1"), (T, "2")}),
        ("Table S1", {(T, "S1")}),
        ("Table II", {(T, "2")}),
        ("Table IV lists them", {(T, "4")}),
        ("TABLE IX", {(T, "9")}),
        ("Tables I and III", {(T, "1"), (T, "3")}),
        ("Tables I–III", {(T, "1"), (T, "2"), (T, "3")}),
        # supplementary: the name always carries the S prefix
        ("Supplementary Fig. S2", {(F, "S2")}),
        ("Supplementary Figure 2", {(F, "S2")}),
        ("Supplemental Figure 2", {(F, "S2")}),
        ("supplementary figure 2", {(F, "S2")}),
        ("Suppl. Fig. 4", {(F, "S4")}),
        ("Fig. S2", {(F, "S2")}),
        ("Fig. S2A", {(F, "S2")}),
        ("Supplementary Table S3", {(T, "S3")}),
        ("Supplementary Table 3", {(T, "S3")}),
        ("Supplementary Figs. S1–S3", {(F, "S1"), (F, "S2"), (F, "S3")}),
        ("Supplementary Figures 1 and 2", {(F, "S1"), (F, "S2")}),
        ("Figs. S1 and S4", {(F, "S1"), (F, "S4")}),
        # several labels in one sentence
        ("Fig. 2 and Table 1 agree (Fig. S3).", {(F, "2"), (T, "1"), (F, "S3")}),
        ("Unlike Fig. 1, Fig. 2 shows", {(F, "1"), (F, "2")}),
    ],
)
def test_find_mentions(sentence, expected):
    assert find_mentions(sentence) == expected


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("The figure shows the dose.", set()),
        ("Figure legends are below.", set()),
        ("The table summarises it.", set()),
        ("Figures were made in R.", set()),
        ("We configured 3 nodes.", set()),  # "fig" inside a word
        ("A 1.5 Fig nonsense.", set()),
        ("Fig. 1.5 of the thesis.", set()),  # a decimal is not Figure 1
        ("the table I used", set()),  # lower-case label + pronoun is not Table 1
        ("Table 1 and I think so.", {(T, "1")}),  # the pronoun is not a second table
        ("As in Fig. 2, 30 patients responded.", {(F, "2")}),  # a count after a singular label
        ("Fig. 2 and 3 patients responded.", {(F, "2")}),
        ("Fig. 2 to 4 hours later.", {(F, "2")}),
        ("Extended Data Fig. 2 shows it.", set()),  # a different figure from Fig. 2
        ("Figure 2-based models", {(F, "2")}),
        ("The figure 12 shows", {(F, "12")}),
    ],
)
def test_find_mentions_false_positives(sentence, expected):
    assert find_mentions(sentence) == expected


def test_twelve_is_not_one():
    assert (F, "1") not in find_mentions("Figure 12 shows it.")
    assert (F, "1") not in find_mentions("Figures 12 and 13 show it.")


# --- is_caption --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paragraph", "expected"),
    [
        ("Figure 3. Dose response of cells.", True),
        ("Fig. 3: Dose response of cells.", True),
        ("Fig 3: Dose response.", True),
        ("FIGURE 3. Dose response.", True),
        ("FIG. 3. Dose response.", True),
        ("Table 2 | Patient characteristics.", True),
        ("TABLE II. Patient characteristics.", True),
        ("**Figure 3.** Dose response.", True),
        ("**Figure 3**. Dose response.", True),
        ("**Figure 3** Dose response.", True),
        ("*Table 1:* Patients.", True),
        ("_Figure 4._ Survival.", True),
        ("Figure 3 — Dose response.", True),
        ("Figure 3 - Dose response.", True),
        ("Figure 3A. Dose response.", True),
        ("Supplementary Figure S2. Controls.", True),
        ("Supplementary Table 1: Doses.", True),
        ("Figure S1. Controls.", True),
        ("![](img/fig3.png) Figure 3. Dose response.", True),
        ("Figure 2 shows the dose response.", False),
        ("Table 1 lists the patients.", False),
        ("As Figure 3. shows", False),
        ("Figures are shown below.", False),
        ("The dose rose (Figure 3).", False),
    ],
)
def test_is_caption(paragraph, expected):
    assert is_caption(paragraph) is expected


# --- one set of label words (ldrt_hpc/labels.py) for captions in PDFs, caption paragraphs and mentions ---------


@pytest.mark.parametrize("word", ["Fig", "Fig.", "Figs.", "Figure", "FIG.", "FIGURE", "Table", "TABLE", "Tab."])
def test_captions_and_mentions_know_the_same_label_words(word):
    fig_type = T if word.lower().startswith("tab") else F
    assert parse_label(f"{word} 3. Dose response.") == (fig_type, "3", True)
    assert is_caption(f"{word} 3. Dose response.")
    assert find_mentions(f"As shown in {word} 3, the dose rose.") == {(fig_type, "3")}


def test_a_caption_label_is_capitalised_a_mention_need_not_be():
    assert parse_label("figure 3. Dose response.") is None
    assert not is_caption("figure 3. Dose response.")
    assert find_mentions("as shown in figure 3.") == {(F, "3")}


@pytest.mark.parametrize("caption, label", [
    ("Supplementary Figure 2. Controls.", (F, "S2", True)),
    ("SUPPLEMENTARY FIGURE S2. Controls.", (F, "S2", True)),
    ("Suppl. Table 1: Doses.", (T, "S1", True)),
    ("FIGURES2. Controls.", (F, "S2", True)),  # a lost space: the S of S2, not a plural
    ("Figure3. Dose response.", (F, "3", True)),  # a lost space: still a caption
])
def test_supplementary_and_spaceless_caption_labels(caption, label):
    assert parse_label(caption) == label
    assert is_caption(caption)


def test_a_label_word_in_a_file_name_is_no_mention():
    assert find_mentions("![](img/Fig3.png) Dose response.") == set()


# --- mentioning_sentences ----------------------------------------------------------------------------------------

PAPER = """# Results

Cells were irradiated with 2 Gy. Figure 2 shows the dose response. The effect was
small (Fig. 2B). Survival fell by 1.5-fold (p < 0.05; Figs. 2 and 3).

**Figure 2.** Dose response of HeLa cells. Cells in Fig. 2 were irradiated once.

Figure 3: Survival curves. Compare with Fig. 2.

## Discussion

As in Smith et al. (Figs. 1–3), the response was linear. Table 1 lists the doses.
Figure 2 shows the dose response.

| Dose | See |
|---|---|
| 2 Gy | Fig. 2 |

Supplementary Figure 2 shows controls. See Fig. S2 and Table II.
"""


def test_mentioning_sentences_figure():
    assert mentioning_sentences(PAPER, "Figure", "2") == [
        "Figure 2 shows the dose response.",
        "The effect was small (Fig. 2B).",
        "Survival fell by 1.5-fold (p < 0.05; Figs. 2 and 3).",
        "As in Smith et al. (Figs. 1–3), the response was linear.",
        "| 2 Gy | Fig. 2 |",
    ]


def test_mentioning_sentences_other_targets():
    assert mentioning_sentences(PAPER, "Figure", "3") == [
        "Survival fell by 1.5-fold (p < 0.05; Figs. 2 and 3).",
        "As in Smith et al. (Figs. 1–3), the response was linear.",
    ]
    assert mentioning_sentences(PAPER, "Figure", "1") == ["As in Smith et al. (Figs. 1–3), the response was linear."]
    assert mentioning_sentences(PAPER, "Figure", "S2") == [
        "Supplementary Figure 2 shows controls.", "See Fig. S2 and Table II.",
    ]
    assert mentioning_sentences(PAPER, "Table", "1") == ["Table 1 lists the doses."]
    assert mentioning_sentences(PAPER, "Table", "2") == ["See Fig. S2 and Table II."]
    assert mentioning_sentences(PAPER, "Figure", "4") == []


def test_mentioning_sentences_accepts_loose_names():
    expected = ["See Fig. S2 and Table II."]
    assert mentioning_sentences(PAPER, "table", "II") == expected
    assert mentioning_sentences(PAPER, "Table", " 2 ") == expected
    assert mentioning_sentences(PAPER, "figure", "s2") == ["Supplementary Figure 2 shows controls."] + expected


def test_own_caption_is_excluded_even_without_a_label():
    markdown = "Dose response of HeLa cells in Fig. 2.\n\nWe see it in Fig. 2. Cells died.\n"
    caption = "Dose   response of\nHeLa cells in **Fig. 2**. Error bars: SD."
    both = ["Dose response of HeLa cells in Fig. 2.", "We see it in Fig. 2."]
    assert mentioning_sentences(markdown, "Figure", "2") == both
    assert mentioning_sentences(markdown, "Figure", "2", "Unrelated caption.") == both
    assert mentioning_sentences(markdown, "Figure", "2", caption) == ["We see it in Fig. 2."]


def test_caption_paragraphs_of_other_figures_are_excluded():
    markdown = (
        "Table 1: Doses as in Fig. 4.\n\n"
        "Fig. 5 | Controls, see Fig. 4.\n\n"
        "## Table 2: Doses (cf. Fig. 4)\n\n"
        "![](fig4.png)\nFigure 4. Survival.\n\n"
        "Figure 4 shows survival.\n"
    )
    assert mentioning_sentences(markdown, "Figure", "4") == ["Figure 4 shows survival."]


def test_duplicates_are_reported_once_in_document_order():
    markdown = "Fig. 1 is new. Fig. 2 is old.\n\nFig. 1 is new.\n\nSee Figure 1 again."
    assert mentioning_sentences(markdown, "Figure", "1") == ["Fig. 1 is new.", "See Figure 1 again."]


def test_sentence_wrapped_across_lines():
    markdown = "The dose rose as in\nFig.\n2 and fell\nlater. Then nothing."
    assert mentioning_sentences(markdown, "Figure", "2") == ["The dose rose as in Fig. 2 and fell later."]


def test_empty_document():
    assert mentioning_sentences("", "Figure", "1") == []
