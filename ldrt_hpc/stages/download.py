"""`download`: fetch each unique paper's open-access PDF (a CPU array stage).

Streams with connect/read timeouts and a size cap, checks the `%PDF-` magic (many "PDF" links return HTML),
writes PDFS/<safe name>.pdf through a temporary name, records sha256 and size, retries transient failures with
backoff. Every paper gets an outcome: ok, cached, http_<status>, not_pdf, too_large, timeout, truncated,
connection, bad_url. Papers already downloaded and verified are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from tqdm import tqdm

from ..config import DownloadConfig, PipelineConfig
from ..plan import Plan, PlanError, assign
from ..shards import ShardReader, Schema, is_complete, shard_path
from . import Shard, Stage

SCHEMA = Schema(
    version=1,
    fields={
        "paper_id": "str", "url": "str", "path": "str", "outcome": "str", "http_status": "int64", "bytes": "int64",
        "sha256": "str", "attempts": "int64", "keywords": "str",
    },
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
TRANSIENT = {"timeout", "connection", "truncated", "http_429", "http_500", "http_502", "http_503", "http_504"}


def safe_name(paper_id: str) -> str:
    """A file name from a paper id that cannot leave the output folder, whatever the id holds."""
    name = _UNSAFE.sub("_", paper_id).strip("._")[:100]
    if name != paper_id or not name:
        name = f"{name or 'paper'}-{hashlib.sha1(paper_id.encode()).hexdigest()[:10]}"
    return name + ".pdf"


def pdf_dir(cfg: PipelineConfig) -> Path:
    return cfg.stages.download.out_dir or cfg.work_dir / "pdfs"


def make_plan(cfg: PipelineConfig, num_shards: int | None) -> Plan:
    search_dir = cfg.work_dir / "search"
    if not is_complete(search_dir, 0):
        raise PlanError("download reads the result of `search`, which is not complete: run `ldrt-hpc run search` first")
    papers = []
    with ShardReader(shard_path(search_dir, 0)) as reader:
        for record in reader:
            if record["pdf_url"]:
                papers.append(json.dumps({"paper_id": record["paper_id"], "url": record["pdf_url"],
                                          "keywords": record["keywords"]}, sort_keys=True))
    count = num_shards or cfg.stages.download.num_shards
    return Plan(stage="download", num_shards=count, upstream=(), assignments=assign(papers, count))


def _verified(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
            handle.seek(max(0, path.stat().st_size - 4096))
            tail = handle.read()
    except OSError:
        return False
    return b"%PDF-" in head and b"%%EOF" in tail


def fetch(session: requests.Session, url: str, target: Path, cfg: DownloadConfig) -> tuple[str, int, int, str]:
    """One attempt: (outcome, http status, bytes, sha256). The file appears under `target` only when ok."""
    if urlparse(url).scheme not in ("http", "https"):
        return "bad_url", 0, 0, ""
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        with session.get(url, stream=True, timeout=(cfg.connect_timeout_s, cfg.read_timeout_s),
                         allow_redirects=True) as response:
            status = response.status_code
            if status >= 400:
                return f"http_{status}", status, 0, ""
            try:
                declared = int(response.headers.get("Content-Length") or 0)
            except ValueError:  # a malformed or duplicated header ("123, 123"): read and count instead
                declared = 0
            if declared > cfg.max_bytes:
                return "too_large", status, declared, ""
            digest, size, head = hashlib.sha256(), 0, b""
            with open(tmp, "wb") as handle:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    if len(head) < 1024:
                        head += chunk[: 1024 - len(head)]
                        if len(head) >= 5 and b"%PDF-" not in head[:1024] and len(head) >= min(1024, declared or 1024):
                            return "not_pdf", status, size, ""
                    size += len(chunk)
                    if size > cfg.max_bytes:
                        return "too_large", status, size, ""
                    digest.update(chunk)
                    handle.write(chunk)
            if b"%PDF-" not in head:
                return "not_pdf", status, size, ""
            if declared and size < declared:
                return "truncated", status, size, ""
            os.replace(tmp, target)
            return "ok", status, size, digest.hexdigest()
    except requests.Timeout:
        return "timeout", 0, 0, ""
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
        return "truncated", 0, 0, ""
    except requests.ConnectionError:
        return "connection", 0, 0, ""
    except requests.RequestException as exc:
        return f"error: {type(exc).__name__}", 0, 0, ""
    finally:
        tmp.unlink(missing_ok=True)


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.download
    out_dir = pdf_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    session = requests.Session()
    session.headers["User-Agent"] = settings.user_agent
    outcomes: dict[str, int] = {}
    for item in tqdm([json.loads(i) for i in shard.inputs], desc=f"download {shard.index}", unit="pdf", mininterval=5):
        target = out_dir / safe_name(item["paper_id"])
        assert target.resolve().parent == out_dir.resolve()  # safe_name guarantees it; a bug must not write elsewhere
        attempts = 0
        if _verified(target):
            outcome, status, size = "cached", 0, target.stat().st_size
            sha = hashlib.sha256(target.read_bytes()).hexdigest()
        else:
            while True:
                attempts += 1
                outcome, status, size, sha = fetch(session, item["url"], target, settings)
                if outcome not in TRANSIENT or attempts > settings.retries:
                    break
                time.sleep(settings.backoff_s * 2 ** (attempts - 1) * random.uniform(0.5, 1.0))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        shard.write({"paper_id": item["paper_id"], "url": item["url"],
                     "path": str(target) if outcome in ("ok", "cached") else "", "outcome": outcome,
                     "http_status": status, "bytes": size, "sha256": sha, "attempts": attempts,
                     "keywords": item["keywords"]})
    fetched = outcomes.get("ok", 0) + outcomes.get("cached", 0)
    return {"papers": len(shard.inputs), "downloaded": fetched,
            "success_ratio": round(fetched / len(shard.inputs), 4) if shard.inputs else None, "outcomes": outcomes}


STAGE = Stage(
    name="download",
    doc="fetch the open-access PDFs of the unique papers found by `search`",
    schema=SCHEMA,
    resource_class="cpu",
    reads=(),
    make_plan=make_plan,
    run=run,
)
