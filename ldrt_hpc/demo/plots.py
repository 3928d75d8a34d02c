"""The figures of the generated papers, drawn with matplotlib: Kaplan–Meier curves, dose–response panels, bar
charts, fluorescence "micrographs" and a tiny pie icon.

A figure is rendered either as a one-page PDF (placed as vector graphics) or as PNG/JPEG bytes (placed as an
image), optionally blurred so that the image-quality filter must drop it.  Its data come from its own seeded
generator, so a figure does not depend on the others.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

matplotlib.use("Agg")

RASTER_DPI = 200
BLUR_SIGMA = 8.0
# no creator, producer or date in the vector figures: the same seed must give the same bytes
MATPLOTLIB_PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}
COLORS = ["#1f3b73", "#d1495b", "#edae49", "#00798c", "#66a182"]


@dataclass(frozen=True)
class FigureSpec:
    """Everything needed to draw one figure."""

    plot: str
    """km, dose, bars, micro or icon"""
    kind: str
    """vector or raster"""
    width: float
    height: float
    """Size on the page, in points."""
    blurry: bool
    panels: tuple[str, str]
    low_dose: str
    high_dose: str
    cell_line: str
    logrank: str
    """The log-rank p-value printed on Kaplan–Meier plots (the caption quotes it too)."""
    data_seed: tuple[int, int]


def _axes(fig, spec: FigureSpec, count=1, left=34.0, right=6.0, bottom=24.0, top=8.0, gap=40.0):
    """`count` axes side by side with margins in points (cheaper than constrained layout)."""
    width, height = spec.width, spec.height
    axes_width = (width - left - right - gap * (count - 1)) / count
    return [fig.add_axes(((left + i * (axes_width + gap)) / width, bottom / height, axes_width / width,
                          (height - bottom - top) / height))
            for i in range(count)]


def _panel_label(ax, text):
    ax.text(-0.02, 1.02, text, transform=ax.transAxes, ha="right", va="bottom", fontweight="bold")


def _kaplan_meier_arm(ax, data_rng, hazard: float, label: str, color: str) -> None:
    """One arm of 40 subjects: exponential event times, uniform censoring, the step curve and censoring ticks."""
    count = 40
    t_event, t_censored = data_rng.exponential(1 / hazard, count), data_rng.uniform(8, 60, count)
    times = np.minimum(t_event, t_censored)
    event = t_event <= t_censored
    order = np.argsort(times)
    times, event = times[order], event[order]
    survival = np.cumprod(np.where(event, 1 - 1 / (count - np.arange(count)), 1.0))
    ax.step(np.concatenate([[0], times]), np.concatenate([[1], survival]), where="post", color=color, lw=1.2,
            label=label)
    ax.plot(times[~event], survival[~event], "|", color=color, ms=4, mew=0.8)


def _plot_kaplan_meier(fig, spec: FigureSpec, data_rng):
    (ax,) = _axes(fig, spec)
    arms = [("Sham", 0.06), (f"{spec.low_dose} Gy", 0.042), (f"{spec.high_dose} Gy", 0.03)]
    for (label, hazard), color in zip(arms, COLORS):
        _kaplan_meier_arm(ax, data_rng, hazard, label, color)
    ax.set(xlim=(0, 36), ylim=(0, 1.05), xlabel="Months after irradiation", ylabel="Survival probability")
    ax.set_xticks([0, 6, 12, 18, 24, 30, 36])
    ax.grid(True, lw=0.4, alpha=0.6)
    ax.legend(frameon=False, loc="lower left")
    ax.text(0.97, 0.96, spec.logrank, transform=ax.transAxes, ha="right", va="top")


def _plot_dose_response(fig, spec: FigureSpec, data_rng):
    """(A) clonogenic survival with low-dose hypersensitivity, (B) foci per nucleus for two cell lines."""
    survival_ax, foci_ax = _axes(fig, spec, 2, top=14.0)
    dose = np.array([0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0])
    surviving = np.exp(-0.2 * dose - 0.05 * dose ** 2) * (1 - 0.1 * np.exp(-(((dose - 0.25) / 0.12) ** 2)))
    surviving = surviving * data_rng.normal(1, 0.01, dose.size)
    survival_ax.errorbar(dose, surviving, yerr=surviving * data_rng.uniform(0.03, 0.07, dose.size), fmt="o-", ms=3,
                         capsize=2, lw=1, color=COLORS[0])
    survival_ax.set_yscale("log")
    survival_ax.set(ylim=(0.4, 1.15), xlabel="Dose (Gy)", ylabel="Surviving fraction")
    survival_ax.yaxis.set_major_locator(FixedLocator([0.4, 0.5, 0.6, 0.8, 1.0]))
    survival_ax.yaxis.set_major_formatter(FormatStrFormatter("%.1f"))
    survival_ax.yaxis.set_minor_formatter(NullFormatter())
    for j, (name, slope) in enumerate([(spec.cell_line, 11.0), ("control line", 8.0)]):
        foci = 0.6 + slope * dose + data_rng.normal(0, 0.3, dose.size)
        foci_ax.errorbar(dose, foci, yerr=0.5 + 0.1 * foci, fmt="s-" if j == 0 else "^--", ms=3, capsize=2, lw=1,
                         color=COLORS[j + 1], label=name)
    foci_ax.set(xlabel="Dose (Gy)", ylabel="γH2AX foci per nucleus")
    foci_ax.legend(frameon=False, loc="upper left")
    for ax, label in zip((survival_ax, foci_ax), spec.panels):
        ax.grid(True, lw=0.4, alpha=0.6)
        _panel_label(ax, label)


def _plot_bars(fig, spec: FigureSpec, data_rng):
    """Tumour volume per day and dose group, with error bars and significance stars."""
    (ax,) = _axes(fig, spec)
    groups = ["Sham", f"{spec.low_dose} Gy", f"{spec.high_dose} Gy"]
    base = np.array([140.0, 290.0, 520.0])
    bar_width = 0.8 / len(groups)
    for j, (name, color) in enumerate(zip(groups, COLORS)):
        values = base * (1 - 0.22 * j) * data_rng.uniform(0.92, 1.08, 3)
        x = np.arange(3) + (j - (len(groups) - 1) / 2) * bar_width
        ax.bar(x, values, bar_width * 0.9, yerr=values * 0.12, capsize=1.5, color=color, label=name,
               error_kw={"elinewidth": 0.6, "capthick": 0.6}, edgecolor="black", linewidth=0.4)
        if j:
            ax.text(x[2], values[2] * 1.16, "*", ha="center", va="bottom")
    ax.set_xticks(range(3), ["Day 7", "Day 14", "Day 21"])
    ax.set_ylabel("Tumour volume (mm³)")
    ax.set_ylim(0, 700)
    ax.grid(True, axis="y", lw=0.4, alpha=0.6)
    ax.legend(frameon=False, loc="upper left")


def _micrograph(data_rng, size: int, cells: int, foci_count: int) -> np.ndarray:
    """An RGB float image: textured blue nuclei (ellipses), green foci inside them, and noise."""
    nuclei = np.zeros((size, size), np.float32)
    for _ in range(cells):
        cx, cy = int(data_rng.uniform(0, size)), int(data_rng.uniform(0, size))
        semi_major = int(data_rng.uniform(0.07, 0.11) * size)
        semi_minor = int(semi_major * data_rng.uniform(0.65, 0.95))
        cv2.ellipse(nuclei, (cx, cy), (semi_major, semi_minor), float(data_rng.uniform(0, 180)), 0, 360,
                    float(data_rng.uniform(0.45, 0.85)), -1, cv2.LINE_AA)
    texture = cv2.GaussianBlur(data_rng.random((size, size)).astype(np.float32), (0, 0), 1.5)
    nuclei = cv2.GaussianBlur(nuclei, (0, 0), 1.0) * (0.6 + 0.8 * texture)
    foci = np.zeros_like(nuclei)
    ys, xs = np.nonzero(nuclei > 0.3)
    if len(xs):
        for i in data_rng.integers(0, len(xs), foci_count):
            cv2.circle(foci, (int(xs[i]), int(ys[i])), int(data_rng.integers(1, 3)), 1.0, -1, cv2.LINE_AA)
    image = np.zeros((size, size, 3), np.float32)
    image[..., 2] = nuclei
    image[..., 1] = cv2.GaussianBlur(foci, (0, 0), 0.7) * 0.9
    image += data_rng.normal(0, 0.035, image.shape).astype(np.float32)
    return np.clip(image, 0, 1)


def _plot_micrographs(fig, spec: FigureSpec, data_rng):
    """Two panels, sham and low dose, each with a scale bar."""
    axes = _axes(fig, spec, 2, left=2.0, right=2.0, bottom=2.0, top=12.0, gap=6.0)
    for ax, label, foci_count in zip(axes, spec.panels, (25, 160)):
        ax.imshow(_micrograph(data_rng, 300, 9, foci_count), interpolation="nearest", aspect="auto")
        ax.plot([220, 280], [280, 280], color="white", lw=2)
        ax.set_axis_off()
        ax.set_title(f"{label} {'Sham' if foci_count == 25 else spec.low_dose + ' Gy'}", loc="left")


def _plot_icon(fig, spec: FigureSpec, data_rng):
    (ax,) = _axes(fig, spec, left=1.5, right=1.5, bottom=1.5, top=1.5)
    ax.pie(data_rng.dirichlet([3, 2, 1]), colors=COLORS[:3], startangle=90,
           wedgeprops={"lw": 0.6, "edgecolor": "white"})
    ax.set_axis_off()


_PLOTTERS = {"km": _plot_kaplan_meier, "dose": _plot_dose_response, "bars": _plot_bars, "micro": _plot_micrographs,
             "icon": _plot_icon}


def _style(spec: FigureSpec) -> dict:
    """matplotlib settings: smaller type in small figures, Type 3 fonts, a fixed hash salt (reproducible output)."""
    small = spec.width < 300
    return {"font.size": 6.5 if small else 7.5, "axes.linewidth": 0.6, "xtick.major.width": 0.5,
            "ytick.major.width": 0.5, "lines.linewidth": 1.0, "legend.fontsize": 6 if small else 7,
            "axes.titlesize": 6.5 if small else 7.5, "svg.hashsalt": "ldrt-synth", "pdf.fonttype": 3,
            "pdf.compression": 6, "figure.facecolor": "white", "savefig.facecolor": "white"}


def _encode(bgr: np.ndarray, spec: FigureSpec) -> bytes:
    """Raster bytes: blurred when the filter must drop the figure; micrographs as JPEG, plots as PNG."""
    if spec.blurry:
        bgr = cv2.GaussianBlur(bgr, (0, 0), BLUR_SIGMA)
    if spec.plot == "micro":
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    else:
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("image encoding failed")
    return data.tobytes()


def render_figure(spec: FigureSpec) -> bytes:
    """The figure as PDF bytes (vector) or PNG/JPEG bytes (raster, blurred when spec says so)."""
    data_rng = np.random.default_rng(list(spec.data_seed))
    with matplotlib.rc_context(_style(spec)):
        fig = Figure(figsize=(spec.width / 72.0, spec.height / 72.0), dpi=RASTER_DPI)
        _PLOTTERS[spec.plot](fig, spec, data_rng)
        if spec.kind == "vector":
            buffer = io.BytesIO()
            fig.savefig(buffer, format="pdf", metadata=MATPLOTLIB_PDF_METADATA)
            return buffer.getvalue()
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        bgr = cv2.cvtColor(np.asarray(canvas.buffer_rgba()), cv2.COLOR_RGBA2BGR)
    return _encode(bgr, spec)
