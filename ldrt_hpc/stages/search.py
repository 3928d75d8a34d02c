"""`search`: Semantic Scholar bulk search over the keyword list, resumable, deduplicated.

One task (one API key, one rate limit). After each page the keyword's next token and the page's papers are
saved in the shard's state dir (WORK/search/_state/shard-00000/), so a killed task continues where it stopped. The shard holds one record per
unique paper (dedupe by paperId, then DOI / PMID / PMCID) with the keywords that found it: the input of
`download`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..config import PipelineConfig, load_keywords
from ..harvest.s2 import S2Client, S2Error
from ..plan import Plan
from ..shards import Schema, atomic_write_text, read_jsonl_log
from . import Shard

SCHEMA = Schema(
    version=1,
    fields={
        "paper_id": "str", "title": "str", "abstract": "str", "year": "int64", "doi": "str", "pmid": "str",
        "pmcid": "str", "venue": "str", "pdf_url": "str", "oa_status": "str", "fields_of_study": "str",
        "publication_types": "str", "keywords": "str",
    },
)


def make_plan(cfg: PipelineConfig, num_shards: int | None) -> Plan:
    if num_shards not in (None, 1):
        raise ValueError("search runs as one task (one API key, one rate limit): --num-shards must be 1")
    keywords = load_keywords(cfg.stages.search.keywords)
    return Plan(stage="search", num_shards=1, upstream=(), assignments=(tuple(keywords),))


def search_keyword(client: S2Client, keyword: str, state_dir: Path, cfg) -> list[dict]:
    """All papers of one keyword, resuming from the saved token; pages are saved before the token moves on."""
    key = hashlib.sha1(keyword.encode()).hexdigest()[:16]
    state_path, pages_path = state_dir / f"{key}.state.json", state_dir / f"{key}.pages.jsonl"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"keyword": keyword, "token": None,
                                                                           "pages": 0, "done": False}
    read_jsonl_log(pages_path)  # drops a page cut short by a killed task (its token was not saved either)
    if not state["done"]:
        filters = {"openAccessPdf": ""} if cfg.open_access_only else {}
        if cfg.year:
            filters["year"] = cfg.year
        if cfg.fields_of_study:
            filters["fieldsOfStudy"] = ",".join(cfg.fields_of_study)
        resume = state["token"] if state["pages"] else None
        try:
            for papers, token, _total in client.bulk_search(keyword, cfg.fields, filters, token=resume):
                with open(pages_path, "a") as handle:  # the page first, then the token that follows it
                    handle.write(json.dumps(papers) + "\n")
                state.update(token=token, pages=state["pages"] + 1, done=token is None)
                if cfg.max_pages_per_keyword and state["pages"] >= cfg.max_pages_per_keyword:
                    state["done"] = True
                atomic_write_text(state_path, json.dumps(state))
                if state["done"]:
                    break
        except S2Error as exc:  # a task log with many keywords must say which one failed, and after which page
            raise S2Error(exc.status, f"keyword {keyword!r} (after {state['pages']} pages): {exc.message}") from exc
    papers: list[dict] = []
    for page in read_jsonl_log(pages_path):
        papers += page
    return papers


def _ids(paper: dict) -> list[str]:
    external = paper.get("externalIds") or {}
    ids = [f"s2:{paper['paperId']}"] if paper.get("paperId") else []
    for name in ("DOI", "PubMed", "PubMedCentral"):
        if external.get(name):
            ids.append(f"{name}:{str(external[name]).lower()}")
    return ids


def dedupe(found: list[tuple[str, dict]]) -> list[dict]:
    """Unique papers by paperId, then DOI / PMID / PMCID; keeps, per paper, the keywords that found it."""
    unique: list[dict] = []
    index: dict[str, int] = {}
    for keyword, paper in found:
        ids = _ids(paper)
        if not ids:
            continue
        slot = next((index[i] for i in ids if i in index), None)
        if slot is None:
            slot = len(unique)
            unique.append({"paper": dict(paper), "keywords": []})
        else:  # fill fields the first copy lacked
            for name, value in paper.items():
                if unique[slot]["paper"].get(name) in (None, "", [], {}) and value not in (None, "", [], {}):
                    unique[slot]["paper"][name] = value
        if keyword not in unique[slot]["keywords"]:
            unique[slot]["keywords"].append(keyword)
        for i in _ids(unique[slot]["paper"]):
            index.setdefault(i, slot)
    return unique


def to_record(entry: dict) -> dict[str, Any]:
    paper = entry["paper"]
    external = paper.get("externalIds") or {}
    pdf = paper.get("openAccessPdf") or {}
    return {
        "paper_id": paper["paperId"], "title": paper.get("title") or "", "abstract": paper.get("abstract") or "",
        "year": int(paper.get("year") or 0), "doi": str(external.get("DOI") or ""),
        "pmid": str(external.get("PubMed") or ""), "pmcid": str(external.get("PubMedCentral") or ""),
        "venue": paper.get("venue") or "", "pdf_url": pdf.get("url") or "", "oa_status": pdf.get("status") or "",
        "fields_of_study": "; ".join(paper.get("fieldsOfStudy") or []),
        "publication_types": "; ".join(paper.get("publicationTypes") or []),
        "keywords": "\n".join(entry["keywords"]),
    }


def run(shard: Shard, cfg: PipelineConfig) -> dict[str, Any]:
    settings = cfg.stages.search
    client = S2Client(settings.base_url, settings.api_key_env, settings.requests_per_s, settings.max_retries,
                      settings.backoff_s, settings.backoff_max_s, read_timeout_s=settings.timeout_s)
    state_dir = shard.state_dir
    found: list[tuple[str, dict]] = []
    for keyword in tqdm(shard.inputs, desc="search", unit="keyword"):
        found += [(keyword, paper) for paper in search_keyword(client, keyword, state_dir, settings)]
    unique = dedupe(found)
    if settings.enrich:
        missing = [e for e in unique if not (e["paper"].get("openAccessPdf") or {}).get("url")]
        details = client.batch([e["paper"]["paperId"] for e in missing], settings.fields)
        for entry, detail in zip(missing, details):
            for name, value in (detail or {}).items():
                if entry["paper"].get(name) in (None, "", [], {}):
                    entry["paper"][name] = value
    with_pdf = 0
    for entry in unique:
        record = to_record(entry)
        with_pdf += bool(record["pdf_url"])
        shard.write(record)
    return {"keywords": len(shard.inputs), "hits": len(found), "unique": len(unique), "with_pdf_url": with_pdf,
            "requests": client.stats.requests, "retries": client.stats.retries, "retry_reasons": client.stats.reasons}
