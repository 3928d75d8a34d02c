"""What the generated papers say: the vocabulary, the study of one paper, sentence templates, figure mentions and
figure captions.

Every template is a function of the paper's `Study` and draws its random fill-ins from the study's generator when
it is called, so the order in which templates are called is part of what a seed produces.
"""

from __future__ import annotations

import random

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


class Study:
    """The study one paper reports (topic, population, endpoints, cell line, two doses) and random fill-ins."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        (self.topic, self.population, self.endpoint, self.survival_endpoint, self.subjects,
         self.table_column) = rng.choice(TOPICS)
        self.topic_lowercase = self.topic[0].lower() + self.topic[1:]
        self.endpoint_capitalised = self.endpoint[0].upper() + self.endpoint[1:]
        self.cell_line = rng.choice(CELL_LINES)
        low, high = sorted(rng.sample(range(1, len(DOSES)), 2))
        self.low_dose, self.high_dose = DOSES[low], DOSES[high]

    def author(self) -> str:
        return self.rng.choice(SURNAMES)

    def dose(self) -> str:
        return self.rng.choice(DOSES)

    def percent(self) -> int:
        return self.rng.randint(12, 68)

    def group_size(self) -> int:
        return self.rng.randint(8, 60)

    def p_value(self) -> str:
        """A significant p-value, as text."""
        return f"p = 0.0{self.rng.randint(1, 4)}{self.rng.randint(1, 9)}"

    def p_value_not_significant(self) -> str:
        return f"p = 0.{self.rng.randint(12, 74)}"

    def year(self) -> int:
        return self.rng.randint(1996, 2025)

    def hours(self) -> int:
        return self.rng.choice([1, 4, 24, 48])

    def days(self) -> int:
        return self.rng.choice([7, 10, 12, 14])


# ----------------------------------------------------------------------------------------------- body sentences

INTRODUCTION = [
    lambda study: ("Low-dose radiation therapy (LDRT), usually delivered as single fractions of 0.3–1.0 Gy, has been "
                   "used to treat benign inflammatory and degenerative disorders for more than a century."),
    lambda study: (f"{study.author()} et al. reported that doses below 1 Gy attenuate the release of "
                   "pro-inflammatory cytokines (e.g., IL-1beta and TNF-alpha) from activated macrophages."),
    lambda study: ("The mechanisms underlying these effects remain incompletely understood, and the dose–response "
                   "relationship is frequently non-linear."),
    lambda study: (f"In {study.population}, {study.endpoint} has been proposed as a sensitive and clinically "
                   "meaningful endpoint for low-dose exposures."),
    lambda study: "Conventional radiotherapy, by contrast, uses 1.8–2.0 Gy per fraction and cumulative doses above 45 Gy.",
    lambda study: ("Several groups (e.g., {} et al. and {} et al.) have therefore evaluated LDRT as an "
                   "anti-inflammatory treatment.".format(*study.rng.sample(SURNAMES, 2))),
    lambda study: (f"A retrospective analysis of {study.group_size() * 5} patients suggested a response rate of "
                   f"{study.percent()}% after a total dose of {study.rng.choice(['3.0', '6.0'])} Gy."),
    lambda study: ("Concerns about stochastic effects, i.e. the small excess risk of a secondary malignancy, have "
                   "limited its wider use."),
    lambda study: ("Experimental data indicate a discontinuity of the anti-inflammatory response between 0.3 and "
                   "0.7 Gy, often described as a bell-shaped dose dependence."),
    lambda study: (f"Adaptive responses, in which a priming dose of {study.rng.choice(['0.01', '0.05', '0.1'])} Gy "
                   "reduces the damage caused by a later challenge dose, have been observed in lymphocytes and "
                   "fibroblasts."),
    lambda study: ("Most clinical reports, however, are single-centre case series with heterogeneous fractionation "
                   "schedules (e.g., 6 × 0.5 Gy or 6 × 1.0 Gy)."),
    lambda study: ("Modern linear accelerators deliver such doses with an uncertainty of less than 3%, which permits "
                   "well-controlled dose–response experiments."),
    lambda study: (f"As noted by {study.author()} et al. in {study.year()}, the effective dose window may differ "
                   "between species and tissues."),
    lambda study: (f"Immunological effects of low doses include the expansion of regulatory T cells and a reduced "
                   f"adhesion of leukocytes to endothelial cells ({study.author()} et al., {study.year()})."),
]
METHODS = [
    lambda study: (f"{study.cell_line} cells were obtained from a commercial cell bank and maintained in RPMI-1640 "
                   "medium supplemented with 10% fetal bovine serum at 37 °C."),
    lambda study: (f"Irradiation was performed with a 6 MV linear accelerator at a dose rate of "
                   f"{study.rng.choice(['0.5', '1.0', '2.4', '4.0'])} Gy/min and a source–surface distance of 100 cm."),
    lambda study: (f"Animals received a single fraction of {study.dose()} Gy or sham irradiation under isoflurane "
                   f"anaesthesia (n = {study.group_size()} per group)."),
    lambda study: ("Dosimetry was verified with a calibrated ionisation chamber, and deviations from the prescribed "
                   "dose were below 2%."),
    lambda study: (f"Clonogenic survival was determined {study.days()} days after irradiation, i.e. after colonies "
                   "of at least 50 cells had formed."),
    lambda study: "Statistical analyses used two-sided tests, and p < 0.05 was considered significant.",
    lambda study: "Survival curves were estimated with the Kaplan–Meier method and compared with the log-rank test.",
    lambda study: "Data are presented as mean ± standard deviation (SD) of at least three independent experiments.",
    lambda study: (f"Tumour volumes were measured with callipers every {study.rng.randint(2, 4)} days and calculated "
                   "as length × width² / 2."),
    lambda study: (f"For immunofluorescence, cells were fixed {study.hours()} h after exposure and stained for "
                   "gamma-H2AX and 53BP1."),
    lambda study: (f"Foci were counted in at least {study.group_size() * 10} nuclei per condition by an observer "
                   "blinded to the dose group."),
    lambda study: (f"The study protocol was approved by the local ethics committee (approval no. "
                   f"LDRT-{study.year()}-{study.rng.randint(10, 99)})."),
    lambda study: (f"Sample sizes were chosen to detect a difference of {study.percent()}% with 80% power at a "
                   "two-sided alpha of 0.05."),
    lambda study: "Multiple comparisons were corrected with the Holm–Bonferroni procedure.",
    lambda study: (f"Cytokine concentrations (e.g., IL-6 and TGF-beta1) were measured by ELISA in supernatants "
                   f"collected {study.hours()} h after irradiation."),
]
RESULTS = [
    lambda study: "No acute toxicity above grade 1 was observed in any dose group.",
    lambda study: f"Body weight did not differ between the groups during follow-up ({study.p_value_not_significant()}).",
    lambda study: f"The effect was most pronounced at {study.low_dose} Gy and declined at higher doses.",
    lambda study: (f"Responses were observed in {study.rng.randint(5, 9)} of {study.rng.randint(10, 12)} "
                   f"{study.subjects} in the irradiated groups."),
    lambda study: "Inter-experiment variability was small, with coefficients of variation below 10%.",
    lambda study: (f"Similar trends were seen in a second cell line, although the differences did not reach "
                   f"significance ({study.p_value_not_significant()})."),
    lambda study: (f"Compared with sham irradiation, {study.endpoint} changed by {study.percent()}% after "
                   f"{study.high_dose} Gy ({study.p_value()})."),
    lambda study: (f"All {study.group_size()} {study.subjects} completed the planned follow-up of "
                   f"{study.rng.randint(3, 12)} months."),
]
DISCUSSION = [
    lambda study: (f"Our findings agree with those of {study.author()} et al., who observed a comparable effect after "
                   "0.3–0.7 Gy."),
    lambda study: ("The non-linear dose dependence is consistent with a threshold-like activation of "
                   "anti-inflammatory pathways."),
    lambda study: (f"In contrast to earlier reports (e.g., {study.author()} et al., {study.year()}), we did not "
                   "detect a reduction at the lowest dose."),
    lambda study: "Several limitations should be noted, e.g. the modest sample size and the short follow-up.",
    lambda study: "A prospective randomised trial comparing 0.5 vs. 1.0 Gy per fraction is currently being planned.",
    lambda study: "Whether these results translate to patients remains to be established.",
    lambda study: (f"The estimated excess cancer risk of a single dose of {study.dose()} Gy to a limited volume is "
                   "very small."),
    lambda study: (f"Mechanistically, the change in {study.endpoint} may reflect a modulation of macrophage "
                   "polarisation and of endothelial adhesion."),
    lambda study: "Dose rate and field size may also influence the response and were not varied in this study.",
    lambda study: (f"Dosimetric uncertainties of about 3% are unlikely to explain the difference between "
                   f"{study.low_dose} and {study.high_dose} Gy."),
]
SECTION_SENTENCES = [INTRODUCTION, METHODS, RESULTS, DISCUSSION]
"""The sentence pools of the four sections, in section order."""

# ----------------------------------------------------------------------------------------------- figure mentions

MENTIONS = {
    # per plot type: the first entry is "Figure N shows ...", the rest use other forms ("Fig. 2", "Fig. 2B", ...)
    "km": [
        lambda study, number, panel_a, panel_b: (
            f"Figure {number} shows the Kaplan–Meier estimates of {study.survival_endpoint} for the sham and "
            "irradiated groups."),
        lambda study, number, panel_a, panel_b: (
            f"Median {study.survival_endpoint} increased from {study.rng.randint(8, 14)} to "
            f"{study.rng.randint(16, 24)} months after {study.low_dose} Gy ({study.p_value()}; Fig. {number})."),
        lambda study, number, panel_a, panel_b: f"The benefit of LDRT persisted throughout follow-up (Figure {number}).",
    ],
    "dose": [
        lambda study, number, panel_a, panel_b: (
            f"Figure {number} shows the dose–response of {study.cell_line} cells between 0 and 2 Gy."),
        lambda study, number, panel_a, panel_b: (
            f"Surviving fractions decreased only marginally below 0.5 Gy (Fig. {number}{panel_a}), whereas foci "
            f"counts rose almost linearly with dose (Fig. {number}{panel_b})."),
        lambda study, number, panel_a, panel_b: (
            f"Low-dose hypersensitivity was evident at 0.25 Gy in {study.cell_line} cells (Figure {number}{panel_a})."),
    ],
    "bars": [
        lambda study, number, panel_a, panel_b: (
            f"Figure {number} shows tumour volumes on days 7, 14 and 21 after treatment."),
        lambda study, number, panel_a, panel_b: (
            f"On day 21, tumour volume was reduced by {study.percent()}% in the {study.high_dose} Gy group compared "
            f"with sham (p < 0.05; Fig. {number})."),
        lambda study, number, panel_a, panel_b: (
            f"Tumour growth was delayed in all irradiated groups, as illustrated in Figure {number}."),
    ],
    "micro": [
        lambda study, number, panel_a, panel_b: (
            f"Figure {number} shows representative micrographs of gamma-H2AX foci in {study.cell_line} nuclei."),
        lambda study, number, panel_a, panel_b: (
            f"Foci were more frequent after {study.low_dose} Gy than after sham irradiation "
            f"(Fig. {number}{panel_b} vs. Fig. {number}{panel_a})."),
        lambda study, number, panel_a, panel_b: f"Nuclear morphology was preserved at all doses (Fig. {number}).",
    ],
    "icon": [
        lambda study, number, panel_a, panel_b: (
            f"Figure {number} shows the irradiation field used for all {study.subjects}."),
        lambda study, number, panel_a, panel_b: f"The treatment field is indicated schematically in Fig. {number}.",
    ],
}
PANELS = {"dose": ("A", "B"), "micro": ("(a)", "(b)")}
"""Panel labels of the plot types with two panels; mentions use them as "Fig. 2B" and "Fig. 3(a)"."""


def caption_sentences(study: Study, plot: str, panels: tuple[str, str], logrank: str) -> list[str]:
    """The sentences of a figure's caption after its label (the layout may drop trailing ones)."""
    panel_a, panel_b = (label if label.startswith("(") else f"({label})" for label in panels)
    if plot == "km":
        return [(f"Kaplan–Meier estimates of {study.survival_endpoint} in {study.population} after sham irradiation "
                 f"or LDRT with {study.low_dose} Gy and {study.high_dose} Gy."),
                f"Tick marks denote censored observations; {logrank}.",
                f"n = {study.rng.randint(30, 60)} per arm."]
    if plot == "dose":
        return [f"Dose–response of {study.cell_line} cells 24 h after single doses of 0–2 Gy.",
                f"{panel_a} Clonogenic surviving fraction (log scale); {panel_b} gamma-H2AX foci per nucleus.",
                "Error bars show mean ± SD of three independent experiments."]
    if plot == "bars":
        return [(f"Tumour volume on days 7, 14 and 21 after sham irradiation or {study.low_dose}–{study.high_dose} "
                 "Gy."),
                "Bars show mean ± SEM (n = 8 per group); * p < 0.05 versus sham."]
    if plot == "micro":
        return [(f"Representative fluorescence micrographs of {study.cell_line} nuclei 1 h after {panel_a} sham "
                 f"irradiation and {panel_b} {study.low_dose} Gy."),
                "Nuclei are counterstained with DAPI (blue); gamma-H2AX foci appear green.",
                "Scale bar, 10 µm."]
    return [f"Schematic of the {study.rng.choice(['anterior', 'lateral', 'whole-joint'])} irradiation field.",
            "Inset, not to scale."]
