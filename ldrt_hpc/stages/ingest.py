"""`ingest`: check every PDF (opens, not encrypted, page count, size, sha256) and record it in its shard.

Bad files are recorded with the reason (column `problems`, `ok` false); they never stop the shard. Later stages
read `ingest`'s shards and take the records with `ok` true.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .. import layout
from ..config import IngestConfig, PipelineConfig
from ..plan import Plan, assign
from ..shards import Schema
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={
        "paper_id": "str",
        "path": "str",
        "sha256": "str",
        "pages": "int64",
        "bytes": "int64",
        "ok": "bool",
        "problems": "str",
    },
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def paper_id_for(path: str) -> str:
    """A file-name-safe paper id from the PDF's name (the download stage names files by paper id)."""
    return _UNSAFE.sub("_", Path(path).stem).strip("._") or "paper"


def downloaded_pdfs(work_dir: Path) -> list[str]:
    """Paths of the PDFs that the `download` stage fetched (every download shard must be complete)."""
    from ..plan import require_complete
    from ..shards import ShardReader, shard_path

    stage_dir = layout.stage_dir(work_dir, "download")
    plan = require_complete(work_dir, "download", "stages.ingest.from_download")
    paths = []
    for index in range(plan.num_shards):
        with ShardReader(shard_path(stage_dir, index)) as reader:
            paths += [r["path"] for r in reader if r["path"]]
    return sorted(paths)


def list_inputs(cfg: IngestConfig, work_dir: Path | None = None) -> list[str]:
    """Absolute paths of every input PDF, from the folder, the manifest or the download stage."""
    if cfg.from_download:
        return downloaded_pdfs(work_dir)
    if cfg.input_dir is not None:
        if not cfg.input_dir.is_dir():
            raise FileNotFoundError(f"stages.ingest.input_dir: {cfg.input_dir} is not a folder")
        return sorted(str(p.resolve()) for p in cfg.input_dir.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
    manifest = cfg.manifest
    assert manifest is not None
    if not manifest.is_file():
        raise FileNotFoundError(f"stages.ingest.manifest: {manifest} does not exist")
    paths = []
    for line in manifest.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            path = Path(line)
            paths.append(str(path if path.is_absolute() else (manifest.parent / path).resolve()))
    return sorted(set(paths))


def make_plan(cfg: PipelineConfig, num_shards: int | None) -> Plan:
    settings = cfg.stage_settings("ingest")
    count = settings.num_shards if num_shards is None else num_shards
    if count < 1:
        raise ValueError(f"stages.ingest: {count} shards asked for; a plan needs 1 or more")
    inputs = list_inputs(settings, cfg.work_dir)
    if not inputs:
        where = settings.input_dir or settings.manifest or "the download stage"
        raise FileNotFoundError(f"stages.ingest: no PDF files found in {where}")
    if count > len(inputs):
        logging.getLogger(__name__).warning(
            f"stages.ingest: {count} shards for {len(inputs)} PDFs: {count - len(inputs)} shards will be empty, and "
            f"each still costs a job in this and every later stage; --num-shards {len(inputs)} or fewer avoids that")
    by_id: dict[str, list[str]] = {}
    for path in inputs:
        by_id.setdefault(paper_id_for(path), []).append(path)
    clashes = {pid: paths for pid, paths in by_id.items() if len(paths) > 1}
    if clashes:
        pid, paths = next(iter(clashes.items()))
        raise ValueError(f"stages.ingest: {len(clashes)} paper id(s) are shared by several PDFs, e.g. '{pid}': "
                         f"{', '.join(paths[:3])}; the file name is the paper id: rename them")
    return Plan(stage="ingest", num_shards=count, upstream=(), assignments=assign(inputs, count),
                planned_from=("download",) if settings.from_download else ())


def check_pdf(path: str, cfg: IngestConfig) -> dict[str, Any]:
    """One record for one file; problems are collected, never raised."""
    import pymupdf

    record: dict[str, Any] = {
        "paper_id": paper_id_for(path), "path": path, "sha256": "", "pages": 0, "bytes": 0, "ok": False, "problems": ""
    }
    problems: list[str] = []
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as exc:
        record["problems"] = f"cannot read file: {exc.strerror or exc}"
        return record
    record["bytes"] = size
    if size > cfg.max_bytes:
        record["problems"] = f"too large: {size} bytes > max_bytes {cfg.max_bytes}"
        return record
    try:
        data = file.read_bytes()
    except OSError as exc:
        record["problems"] = f"cannot read file: {exc.strerror or exc}"
        return record
    record["sha256"] = hashlib.sha256(data).hexdigest()
    if size < cfg.min_bytes:
        problems.append(f"too small: {size} bytes < min_bytes {cfg.min_bytes}")
    if b"%PDF-" not in data[:1024]:
        head = data[:16].decode("latin-1").encode("unicode_escape").decode()
        problems.append(f"not a PDF: no %PDF- header (starts with '{head}')")
        record["problems"] = "; ".join(problems)
        return record
    if b"%%EOF" not in data[-4096:]:
        # MuPDF repairs such files and shows the pages it still finds: a cut-off download must be fetched again
        problems.append("truncated: no %%EOF marker at the end of the file")
    try:
        with pymupdf.open(stream=data, filetype="pdf") as doc:
            if doc.needs_pass or doc.is_encrypted:
                problems.append("encrypted: needs a password")
            else:
                record["pages"] = doc.page_count
                if doc.page_count == 0:
                    problems.append("no pages")
                elif doc.page_count > cfg.max_pages:
                    problems.append(f"too many pages: {doc.page_count} > max_pages {cfg.max_pages}")
    except Exception as exc:  # noqa: BLE001 - any parser error is a property of the file, recorded as such
        problems.append(f"cannot open as PDF: {type(exc).__name__}: {exc}")
    record["problems"] = "; ".join(problems)
    record["ok"] = not problems
    return record


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    ingest_cfg = cfg.stage_settings("ingest")
    ok = bad = pages = 0
    for path in tqdm(shard.inputs, desc=f"ingest {shard.index}", unit="pdf", mininterval=5):
        record = check_pdf(path, ingest_cfg)
        shard.write(record)
        ok += record["ok"]
        bad += not record["ok"]
        pages += record["pages"]
    return {"papers": len(shard.inputs), "ok": ok, "bad": bad, "pages": pages}
