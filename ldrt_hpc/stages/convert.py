"""`convert`: PDF -> Markdown for every paper that `ingest` accepted, each paper parsed in an isolated child."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pymupdf  # imported before the parser processes fork, not once per paper

from ..config import ConvertConfig, PipelineConfig
from ..errors import BackendUnavailable
from ..isolate import run_isolated
from ..pdf.markdown import to_markdown
from ..shards import Schema
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={"paper_id": "str", "path": "str", "markdown": "str", "pages": "int64", "backend": "str", "seconds": "float64"},
)


def check_backend(cfg: ConvertConfig) -> None:
    """Fail before any paper is parsed when the backend cannot run (not once per paper)."""
    if cfg.backend == "pymupdf4llm":
        try:
            import pymupdf4llm  # noqa: F401
        except ImportError:
            raise BackendUnavailable("convert backend 'pymupdf4llm' is not installed: pip install pymupdf4llm") from None
    if cfg.backend == "marker":
        try:
            import marker  # noqa: F401
        except ImportError:
            raise BackendUnavailable(
                "convert backend 'marker' needs the marker-pdf package (pip install marker-pdf) and its model files "
                "in stages.convert.marker_models; it is not installed here"
            ) from None
        if cfg.marker_models is None or not cfg.marker_models.is_dir():
            raise BackendUnavailable(
                f"convert backend 'marker': model folder stages.convert.marker_models={cfg.marker_models} does not "
                "exist (download the models on a login node; jobs never download)"
            )


def preflight(cfg: PipelineConfig) -> None:
    """Before submitting: the configured converter can run (the launcher calls this)."""
    check_backend(cfg.stages.convert)


def convert_pdf(path: str, backend: str, marker_models=None) -> tuple[str, int]:
    """Markdown and page count of one PDF."""
    with pymupdf.open(path) as doc:
        pages = doc.page_count
        if backend == "native":
            return to_markdown(doc), pages
        if backend == "pymupdf4llm":
            import pymupdf4llm

            return pymupdf4llm.to_markdown(doc, show_progress=False), pages
    import os

    os.environ.setdefault("MODEL_CACHE_DIR", str(marker_models))
    from marker.converters.pdf import PdfConverter  # pragma: no cover - not installable here
    from marker.models import create_model_dict
    from marker.output import text_from_rendered

    rendered = PdfConverter(artifact_dict=create_model_dict())(path)
    return text_from_rendered(rendered)[0], pages


def _convert_record(paper: dict, cfg: ConvertConfig) -> dict[str, Any]:
    started = time.perf_counter()
    markdown, pages = convert_pdf(paper["path"], cfg.backend, cfg.marker_models)
    return {"paper_id": paper["paper_id"], "path": paper["path"], "markdown": markdown, "pages": pages,
            "backend": cfg.backend, "seconds": round(time.perf_counter() - started, 4)}


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.convert
    check_backend(settings)
    with shard.read("ingest") as reader:
        papers = [{"paper_id": r["paper_id"], "path": r["path"]} for r in reader if r["ok"]]
    converted = pages = 0
    started = time.perf_counter()
    for outcome in run_isolated(partial(_convert_record, cfg=settings), papers, workers=settings.workers,
                                timeout_s=settings.timeout_s, max_memory_mb=settings.max_memory_mb,
                                desc=f"convert {shard.index}"):
        if outcome.ok:
            shard.write(outcome.value)
            converted += 1
            pages += outcome.value["pages"]
        else:
            shard.quarantine(outcome.item["paper_id"], outcome.reason, outcome.detail)
    seconds = time.perf_counter() - started
    return {"papers": len(papers), "converted": converted, "quarantined": len(papers) - converted, "pages": pages,
            "pages_per_s": round(pages / seconds, 2) if seconds else None}
