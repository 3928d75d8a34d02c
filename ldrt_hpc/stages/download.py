"""`download`: fetch each unique paper's open-access PDF (a CPU array stage).

Streams with connect/read timeouts and a size cap, checks the `%PDF-` magic (many "PDF" links return HTML),
writes PDFS/<safe name>.pdf through a temporary name, records sha256 and size. Transient failures are retried
with the package's one policy (`ldrt_hpc.http`): 429, 5xx, timeouts and resets by urllib3 (honouring
`Retry-After`), a body cut or stalled mid-way by `run`, on the same budget (`retries`) and backoff schedule.
Papers already downloaded and verified are skipped.

Every paper gets one outcome; `http_status` is the last answer's status (0: none came), `bytes` what was
received, `declared_bytes` the Content-Length (0: none), `detail` says more when the outcome is not ok:

- ok: a whole PDF, saved (sha256 of the file).
- cached: already on disk and verified (%PDF- at the start, %%EOF at the end); not fetched again.
- http_<status>: the server answered with that error status (429 and 5xx only once the retries ran out).
- not_pdf: the body does not start with %PDF- (often an HTML landing or login page).
- too_large: the Content-Length or the bytes received exceed `max_bytes`; the download is abandoned.
- truncated: the body ended or broke off before its Content-Length.
- timeout: no connection or no data within the timeouts, after the retries.
- connection: the connection was refused or reset, after the retries.
- redirect_loop: more redirects than requests follows (30): a loop, or a chain that never ends.
- bad_redirect: a redirect to a URL that is not http(s) or not valid (file://, ftp://, ...): not followed.
- bad_url: the paper's PDF link itself is not a valid http(s) URL.
- error: any other failure of the HTTP library (the detail names it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests
from tqdm import tqdm
from urllib3.util.retry import Retry

from .. import layout
from ..config import DownloadConfig, PipelineConfig
from ..http import (
    BODY_ERRORS,
    adapter_gave_up,
    adapter_retries,
    backoff_delay,
    failure_reason,
    retry_policy,
    retrying_session,
)
from ..plan import Plan, PlanError, assign
from ..shards import Schema, ShardReader, is_complete, shard_path
from . import Shard

SCHEMA = Schema(
    version=2,
    fields={
        "paper_id": "str", "url": "str", "path": "str", "outcome": "str", "http_status": "int64", "bytes": "int64",
        "declared_bytes": "int64", "sha256": "str", "attempts": "int64", "detail": "str", "keywords": "str",
    },
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_FOLLOWED = (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)


@dataclass
class Fetched:
    """What one fetch of a PDF link came to: the download record's outcome fields, and how to go on."""

    outcome: str
    http_status: int = 0
    size: int = 0
    """Bytes received."""
    declared_size: int = 0
    """The Content-Length header (0: none, or malformed)."""
    sha256: str = ""
    detail: str = ""
    retried: list[str] = field(default_factory=list)
    """Why the session's adapter retried before the last answer."""
    worth_retrying: bool = False
    """A failure the adapter could not see (a body cut or stalled mid-way): another request may succeed."""


def safe_name(paper_id: str) -> str:
    """A file name from a paper id that cannot leave the output folder, whatever the id holds."""
    name = _UNSAFE.sub("_", paper_id).strip("._")[:100]
    if name != paper_id or not name:
        name = f"{name or 'paper'}-{hashlib.sha1(paper_id.encode()).hexdigest()[:10]}"
    return name + ".pdf"


def pdf_dir(cfg: PipelineConfig) -> Path:
    return cfg.stages.download.out_dir or layout.downloads_dir(cfg.work_dir)


def make_plan(cfg: PipelineConfig, num_shards: int | None) -> Plan:
    search_dir = layout.stage_dir(cfg.work_dir, "search")
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


def _bad_url(url: str) -> str:
    """Why a PDF link cannot be fetched ('' when it can): only valid http(s) URLs are."""
    if urlparse(url).scheme not in ("http", "https"):
        return f"not an http(s) URL: {url[:200]}"
    try:
        requests.Request("GET", url).prepare()
    except requests.RequestException as exc:
        return str(exc)[:300]
    return ""


def fetch(session: requests.Session, url: str, target: Path, cfg: DownloadConfig) -> Fetched:
    """One request (which the session's adapter may retry); the file appears under `target` only when ok."""
    problem = _bad_url(url)
    if problem:
        return Fetched("bad_url", detail=problem)
    try:
        response = session.get(url, stream=True, timeout=(cfg.connect_timeout_s, cfg.read_timeout_s),
                               allow_redirects=True)
    except requests.TooManyRedirects as exc:
        last = exc.response
        return Fetched("redirect_loop", last.status_code if last is not None else 0, detail=str(exc)[:300])
    except _NOT_FOLLOWED as exc:  # the link itself is valid (checked above): a redirect led here
        return Fetched("bad_redirect", detail=str(exc)[:300])
    except (requests.ConnectionError, requests.Timeout) as exc:
        return Fetched(failure_reason(exc), detail=str(exc)[:300], worth_retrying=not adapter_gave_up(exc))
    except requests.RequestException as exc:
        return Fetched("error", detail=f"{type(exc).__name__}: {exc}"[:300])
    with response:
        return _save(response, target, cfg)


def _save(response: requests.Response, target: Path, cfg: DownloadConfig) -> Fetched:
    """Stream a response's body to a temporary file, checking size and magic; it becomes `target` when ok."""
    try:
        declared = int(response.headers.get("Content-Length") or 0)
    except ValueError:  # a malformed or duplicated header ("123, 123"): read and count instead
        declared = 0
    got = Fetched("ok", response.status_code, declared_size=declared, retried=adapter_retries(response))
    if got.http_status >= 400:
        got.outcome, got.detail = f"http_{got.http_status}", response.reason or ""
        return got
    if declared > cfg.max_bytes:
        got.outcome, got.detail = "too_large", f"Content-Length {declared} > max_bytes {cfg.max_bytes}: not read"
        return got
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
    digest, head = hashlib.sha256(), b""
    try:
        with open(tmp, "wb") as handle:
            for chunk in response.iter_content(chunk_size=1 << 16):
                got.size += len(chunk)
                if len(head) < 1024:
                    head += chunk[: 1024 - len(head)]
                    if len(head) >= 5 and b"%PDF-" not in head[:1024] and len(head) >= min(1024, declared or 1024):
                        break
                if got.size > cfg.max_bytes:
                    got.outcome, got.detail = "too_large", f"more than max_bytes {cfg.max_bytes} received"
                    return got
                digest.update(chunk)
                handle.write(chunk)
        if b"%PDF-" not in head:
            got.outcome, got.detail = "not_pdf", f"{response.headers.get('Content-Type', '')} starting {head[:40]!r}"
        elif declared and got.size < declared:
            got.outcome, got.worth_retrying = "truncated", True
            got.detail = f"the body ended after {got.size} of {declared} bytes"
        else:
            os.replace(tmp, target)
            got.sha256 = digest.hexdigest()
        return got
    except BODY_ERRORS as exc:
        got.outcome, got.worth_retrying = failure_reason(exc), True
        got.size = max(got.size, response.raw.tell())  # iter_content loses the chunk it was reading; urllib3 counted it
        got.detail = f"broke off after {got.size} bytes: {exc}"[:300]
        return got
    finally:
        tmp.unlink(missing_ok=True)


def fetch_with_retries(session: requests.Session, policy: Retry, url: str, target: Path, cfg: DownloadConfig
                       ) -> tuple[Fetched, int]:
    """`fetch`, again after a failure the adapter could not see, while the policy's budget lasts: (the last result,
    the number of requests made, the adapter's retries included)."""
    retried: list[str] = []  # why each retry was made, by the adapter or by this loop
    while True:
        got = fetch(session, url, target, cfg)
        retried += got.retried
        if not got.worth_retrying or len(retried) >= policy.total:
            return got, len(retried) + 1
        retried.append(got.outcome)
        time.sleep(backoff_delay(policy, len(retried)))


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.download
    out_dir = pdf_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = retry_policy(settings.retries, settings.backoff_s, settings.backoff_max_s)
    session = retrying_session(policy, {"User-Agent": settings.user_agent})
    outcomes: dict[str, int] = {}
    for item in tqdm([json.loads(i) for i in shard.inputs], desc=f"download {shard.index}", unit="pdf", mininterval=5):
        target = out_dir / safe_name(item["paper_id"])
        assert target.resolve().parent == out_dir.resolve()  # safe_name guarantees it; a bug must not write elsewhere
        if _verified(target):
            got = Fetched("cached", size=target.stat().st_size, sha256=hashlib.sha256(target.read_bytes()).hexdigest())
            attempts = 0
        else:
            got, attempts = fetch_with_retries(session, policy, item["url"], target, settings)
        outcomes[got.outcome] = outcomes.get(got.outcome, 0) + 1
        shard.write({"paper_id": item["paper_id"], "url": item["url"],
                     "path": str(target) if got.outcome in ("ok", "cached") else "", "outcome": got.outcome,
                     "http_status": got.http_status, "bytes": got.size, "declared_bytes": got.declared_size,
                     "sha256": got.sha256, "attempts": attempts, "detail": got.detail, "keywords": item["keywords"]})
    fetched = outcomes.get("ok", 0) + outcomes.get("cached", 0)
    return {"papers": len(shard.inputs), "downloaded": fetched,
            "success_ratio": round(fetched / len(shard.inputs), 4) if shard.inputs else None, "outcomes": outcomes}
