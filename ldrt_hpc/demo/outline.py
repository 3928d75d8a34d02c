"""The outline of one paper, drawn from one seeded generator: its floats (see `floats`), its sections of
paragraphs with the float mentions, the optional paragraphs that tune its length, and its front matter.

Everything comes from `random.Random(f"ldrt-synth:{seed}:{index}")`, so a paper depends only on the seed and its
index.  The order of the draws is the corpus: reordering them (or drawing once more) changes every later paper
detail, so the functions below keep the original order even where another would read more naturally.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

from .classes import TABLE_CLASSES, TWO_COLUMN_CLASSES
from .floats import Float, plan_figures, plan_table
from .page import BODY_TYPE
from .text import (
    CITIES,
    DISCUSSION,
    INTRODUCTION,
    MENTIONS,
    METHODS,
    PANELS,
    RESULTS,
    SECTION_SENTENCES,
    SURNAMES,
    Study,
)

INTRODUCTION_SECTION, METHODS_SECTION, RESULTS_SECTION, DISCUSSION_SECTION = range(4)
"""Indexes of the four sections."""
OPTIONAL_PARAGRAPHS = 40
# the sections of the optional paragraphs, in turn: the layout keeps a prefix of them
_OPTIONAL_SECTIONS = [RESULTS_SECTION, INTRODUCTION_SECTION, DISCUSSION_SECTION, METHODS_SECTION,
                      RESULTS_SECTION, DISCUSSION_SECTION, INTRODUCTION_SECTION, METHODS_SECTION]


class Sentence(NamedTuple):
    text: str
    refs: list[str]
    """Keys of the floats the sentence mentions ("F1", "T1")."""


@dataclass
class Paragraph:
    sentences: list[Sentence]
    floats: list[str]
    """Floats introduced by this paragraph: the layout places them after it."""


@dataclass
class Section:
    heading: str
    paragraphs: list[Paragraph]


@dataclass
class OptionalParagraph:
    section: int
    slot: int
    """The index of the paragraph it goes before (the paragraph count: at the end of the section)."""
    sentences: list[str]


@dataclass
class Outline:
    seed: int
    index: int
    layout: str
    """one-column or two-column"""
    floats: dict[str, Float]
    sections: list[Section]
    optional_paragraphs: list[OptionalParagraph]
    title: str
    authors: str
    first_author: str
    affiliation: str
    abstract: list[str]
    keywords: list[str]
    body_size: float
    body_leading: float
    hyphenation_key: str
    target_pages: int
    volume: int
    first_page: int

    @property
    def two_columns(self) -> bool:
        return self.layout == "two-column"

    def paragraphs(self, optional_count: int) -> list[list[tuple[list[str], list[str]]]]:
        """Per section, its paragraphs in reading order as (sentences, floats introduced), with the first
        `optional_count` optional paragraphs inserted at their slots."""
        optional = self.optional_paragraphs[:optional_count]
        sections = []
        for number, section in enumerate(self.sections):
            paragraphs = []
            for slot in range(len(section.paragraphs) + 1):
                paragraphs.extend((extra.sentences, []) for extra in optional
                                  if extra.section == number and extra.slot == slot)
                if slot < len(section.paragraphs):
                    paragraph = section.paragraphs[slot]
                    paragraphs.append(([sentence.text for sentence in paragraph.sentences], paragraph.floats))
            sections.append(paragraphs)
        return sections

    def mentions(self) -> dict[str, list[str]]:
        """The sentences that mention each float, in reading order."""
        mentions: dict[str, list[str]] = {key: [] for key in self.floats}
        for section in self.sections:
            for paragraph in section.paragraphs:
                for sentence in paragraph.sentences:
                    for key in sentence.refs:
                        mentions[key].append(sentence.text)
        return mentions


def plan_paper(seed: int, index: int, style: str | None = None) -> Outline:
    """The outline of paper `index` of the corpus of `seed`; `style`: its failure class (see `classes`, None in the
    default corpus); the classes of `classes.TABLE_CLASSES` always have a table, full_width_table papers two
    columns."""
    rng = random.Random(f"ldrt-synth:{seed}:{index}")
    study = Study(rng)
    layout = "two-column" if index % 2 or style in TWO_COLUMN_CLASSES else "one-column"
    two_columns = layout == "two-column"
    has_table = index % 4 in (0, 1) or style in TABLE_CLASSES
    floats = plan_figures(rng, study, seed, index, two_columns, style)
    if has_table:
        floats["T1"] = plan_table(rng, study, two_columns, style)
    sections = _sections(rng, study, floats)
    optional = _optional_paragraphs(rng, study, sections)
    authors, first_author = _authors(rng)
    city, country = rng.choice(CITIES)
    return Outline(
        seed=seed, index=index, layout=layout, floats=floats, sections=sections, optional_paragraphs=optional,
        title=_title(rng, study), authors=authors, first_author=first_author,
        affiliation=f"Department of Radiation Oncology, University Hospital {city}, {country}",
        abstract=_abstract(study),
        keywords=["low-dose radiotherapy", study.population, study.endpoint, "dose–response", "hormesis"],
        body_size=BODY_TYPE[two_columns][0], body_leading=BODY_TYPE[two_columns][1],
        hyphenation_key=f"{seed}:{index}",
        target_pages=rng.choice([2, 3, 3, 4]), volume=rng.randint(8, 14), first_page=rng.randint(12, 480),
    )


# ----------------------------------------------------------------------------------------------- sections

def _plain(rng: random.Random, study: Study, pool: list, count: int) -> list[Sentence]:
    """`count` different sentences of a pool, mentioning nothing."""
    return [Sentence(template(study), []) for template in rng.sample(pool, count)]


def _chosen_mentions(rng: random.Random, plot: str, shows: bool) -> list[int]:
    """Which mention templates of a figure to use; `shows`: the one figure introduced as "Figure N shows"."""
    templates = MENTIONS[plot]
    if plot in PANELS:  # panel forms ("Fig. 2B", "Fig. 3(a)") whenever the figure has panels
        return [0, 1] if shows or rng.random() < 0.5 else [1]
    if shows:
        return [0] + ([rng.randrange(1, len(templates))] if rng.random() < 0.6 else [])
    return sorted(rng.sample(range(len(templates)), rng.randint(1, 2)))


def _figure_paragraphs(rng: random.Random, study: Study, figures: list[Float]) -> list[Paragraph]:
    """One Results paragraph per figure: its mentions among one or two plain Results sentences."""
    shows_at = rng.randrange(len(figures))
    paragraphs = []
    for i, figure in enumerate(figures):
        templates = MENTIONS[figure.plot]
        panel_a, panel_b = figure.panels
        chosen = _chosen_mentions(rng, figure.plot, i == shows_at)
        mentions = [Sentence(templates[j](study, i + 1, panel_a, panel_b), [figure.key]) for j in chosen]
        plain = _plain(rng, study, RESULTS, rng.randint(1, 2))
        sentences = plain[:1] + mentions + plain[1:] if rng.random() < 0.4 else mentions + plain
        paragraphs.append(Paragraph(sentences, [figure.key]))
    return paragraphs


def _table_paragraph(rng: random.Random, study: Study, paragraphs: list[Paragraph]) -> None:
    """Insert the paragraph that introduces the table somewhere after the first Results paragraph."""
    sentences = [Sentence(f"{study.endpoint_capitalised} differed significantly between the dose groups (Table 1).",
                          ["T1"])]
    if rng.random() < 0.5:
        sentences.append(Sentence("Serum IL-6 concentrations of all groups are listed in Table 1.", ["T1"]))
    position = rng.randint(1, len(paragraphs))
    closing = Sentence(rng.choice(RESULTS)(study), [])
    paragraphs.insert(position, Paragraph(sentences + [closing], ["T1"]))


def _combined_mentions(rng: random.Random, study: Study, figure_keys: list[str]) -> list[Sentence]:
    """Discussion sentences that mention several figures: "Figs. 1–3" and "Figs. 1 and 2"."""
    count = len(figure_keys)
    sentences = []
    if count >= 3:
        sentences.append(Sentence(f"Taken together, Figs. 1–{count} support a non-linear response to low doses.",
                                  figure_keys))
    i, j = sorted(rng.sample(range(count), 2))
    sentences.append(Sentence(f"Figs. {i + 1} and {j + 1} indicate that the effect of {study.low_dose} Gy was "
                              "consistent across endpoints.", [figure_keys[i], figure_keys[j]]))
    return sentences


def _sections(rng: random.Random, study: Study, floats: dict[str, Float]) -> list[Section]:
    """The four numbered sections with their mandatory paragraphs (all the float mentions)."""
    figures = [figure for key, figure in floats.items() if key.startswith("F")]
    results = _figure_paragraphs(rng, study, figures)
    if "T1" in floats:
        _table_paragraph(rng, study, results)
    combined = _combined_mentions(rng, study, [figure.key for figure in figures])
    aim = Sentence(f"The aim of the present study was to characterise {study.endpoint} in {study.population} "
                   f"after {study.low_dose} and {study.high_dose} Gy.", [])
    introduction = [Paragraph(_plain(rng, study, INTRODUCTION, 3), []),
                    Paragraph(_plain(rng, study, INTRODUCTION, 1) + [aim], [])]
    if rng.random() < 0.35:  # sometimes Figure 1 is introduced (and placed) in the Introduction
        introduction.append(results.pop(0))
    methods = [Paragraph(_plain(rng, study, METHODS, 4), [])]
    discussion = [Paragraph(_plain(rng, study, DISCUSSION, 1) + combined + _plain(rng, study, DISCUSSION, 1), [])]
    summary = Sentence(f"In summary, LDRT with {study.low_dose} Gy produced a reproducible change in "
                       f"{study.endpoint} in {study.population}.", [])
    discussion.append(Paragraph([summary] + _plain(rng, study, DISCUSSION, 1), []))
    return [Section("1. Introduction", introduction), Section("2. Methods", methods), Section("3. Results", results),
            Section("4. Discussion", discussion)]


def _optional_paragraphs(rng: random.Random, study: Study, sections: list[Section]) -> list[OptionalParagraph]:
    """Paragraphs of 3-5 plain sentences; the layout keeps as many as fit the target page count."""
    decks: list[list] = [[], [], [], []]

    def deal(section: int) -> str:
        """The next sentence of the section's shuffled pool, reshuffled when used up (no repeats until then)."""
        if not decks[section]:
            pool = SECTION_SENTENCES[section]
            decks[section] = rng.sample(pool, len(pool))
        return decks[section].pop()(study)

    optional = []
    for i in range(OPTIONAL_PARAGRAPHS):
        section = _OPTIONAL_SECTIONS[i % len(_OPTIONAL_SECTIONS)]
        count = len(sections[section].paragraphs)
        # Introduction and Results: after the first paragraph; Methods: at the end; Discussion: before the
        # summary.  All three slots are drawn whatever the section: the papers of a seed depend on that.
        slots = {INTRODUCTION_SECTION: rng.randint(1, count), RESULTS_SECTION: rng.randint(1, count),
                 DISCUSSION_SECTION: rng.randint(0, count - 1), METHODS_SECTION: count}
        optional.append(OptionalParagraph(section, slots[section], [deal(section) for _ in range(rng.randint(3, 5))]))
    return optional


# ----------------------------------------------------------------------------------------------- front matter

def _authors(rng: random.Random) -> tuple[str, str]:
    """3-6 authors as "A. Name, B. Name and C. Name", and the first author's surname (running header)."""
    surnames = rng.sample(SURNAMES, rng.randint(3, 6))
    names = [f"{chr(65 + rng.randrange(26))}. {surname}" for surname in surnames]
    return ", ".join(names[:-1]) + " and " + names[-1], surnames[0]


def _title(rng: random.Random, study: Study) -> str:
    return rng.choice([
        f"{study.topic} in {study.population}: {study.endpoint} after {study.low_dose} and {study.high_dose} Gy",
        f"Effects of {study.topic_lowercase} on {study.endpoint} in {study.population}",
        f"{study.endpoint_capitalised} after {study.topic_lowercase} in {study.population}: a dose-finding study",
    ])


def _abstract(study: Study) -> list[str]:
    return [
        f"Low-dose radiation therapy (LDRT) is increasingly discussed for {study.population}.",
        (f"We studied the effect of single doses of {study.low_dose} Gy and {study.high_dose} Gy on {study.endpoint}, "
         "with sham irradiation as control."),
        (f"Compared with sham irradiation, {study.endpoint} improved by {study.percent()}% after {study.low_dose} Gy "
         f"({study.p_value()})."),
        "No dose-limiting toxicity was observed during follow-up.",
        "These results support the evaluation of LDRT in prospective randomised trials.",
    ]
