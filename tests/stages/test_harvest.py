"""search and download against a real HTTP server on 127.0.0.1 that replays recorded Semantic Scholar responses
(../shared/s2) and project-made pages, with injected faults. The client code is the real one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ldrt_hpc.config import DownloadConfig, load_pipeline
from ldrt_hpc.harvest.s2 import S2Client, S2Error
from ldrt_hpc.stages.download import fetch, safe_name
from ldrt_hpc.stages.search import dedupe, search_keyword
from tests.conftest import REPO, SHARED
from tests.s2_server import S2ReplayServer

RECORDINGS = SHARED / "s2" / "responses"


def paper(i: int, doi: str | None = None, url: str | None = "") -> dict:
    return {"paperId": f"p{i:04d}", "title": f"Low-dose radiation study {i}", "year": 2020,
            "externalIds": {"DOI": doi or f"10.1000/ldrt.{i}"}, "openAccessPdf": {"url": url, "status": "GOLD"}}


@pytest.fixture
def server():
    with S2ReplayServer(RECORDINGS if RECORDINGS.is_dir() else None) as replay:
        yield replay


def client(server, **kw) -> S2Client:
    options = dict(requests_per_s=1000, max_retries=4, backoff_s=0.01, backoff_max_s=0.05, read_timeout_s=2)
    options.update(kw)
    return S2Client(server.base_url, **options)


def three_pages(server, query="ldrt"):
    server.add_bulk_page(query, None, {"total": 5, "token": "t1", "data": [paper(1), paper(2)]})
    server.add_bulk_page(query, "t1", {"total": 5, "token": "t2", "data": [paper(3), paper(4)]})
    server.add_bulk_page(query, "t2", {"total": 5, "data": [paper(5)]})  # a missing token ends like null


@pytest.mark.shared
def test_recorded_bulk_pages_follow_the_token(server):
    pages = client(server).bulk_search("kubernetes", ["title"])
    first, token, total = next(pages)
    assert len(first) == 1000 and total == 2674 and token.startswith("PCOKWVSK")
    second, token2, _ = next(pages)
    assert len(second) == 1000 and token2 != token and {p["paperId"] for p in first}.isdisjoint(p["paperId"] for p in second)
    assert server.requests[1]["query"]["token"] == token
    with pytest.raises(S2Error, match="404: unknown query/token"):  # the third page was never recorded
        next(pages)


def test_paging_filters_and_api_key(server, monkeypatch):
    monkeypatch.setenv("LDRT_TEST_KEY", "sekret-123")
    three_pages(server)
    pages = list(client(server, api_key_env="LDRT_TEST_KEY").bulk_search(
        "ldrt", ["paperId", "title"], {"openAccessPdf": "", "year": "2000-"}))
    assert [len(p) for p, _, _ in pages] == [2, 2, 1] and pages[-1][1] is None
    assert [r["query"].get("token") for r in server.requests] == [None, "t1", "t2"]
    assert all(r["headers"]["x-api-key"] == "sekret-123" for r in server.requests)
    assert server.requests[0]["query"]["openAccessPdf"] == "" and server.requests[0]["query"]["year"] == "2000-"


@pytest.mark.parametrize("faults, reasons", [
    (("429", "429"), {"http_429": 2}),
    (("500",), {"http_500": 1}),
    (("malformed",), {"malformed_json": 1}),
    (("reset",), {"connection": 1}),
    (("slow:1.5",), {"timeout": 1}),
    (("truncated",), {"truncated": 1}),  # Content-Length larger than the body: cut mid-way
    (("truncated", "503", "malformed"), {"truncated": 1, "http_503": 1, "malformed_json": 1}),
])
def test_transient_faults_are_retried_and_counted(server, faults, reasons):
    three_pages(server)
    server.inject("/graph/v1/paper/search/bulk", *faults)
    s2 = client(server, read_timeout_s=0.5)
    papers = [p["paperId"] for page, _, _ in s2.bulk_search("ldrt", ["paperId"]) for p in page]
    assert papers == ["p0001", "p0002", "p0003", "p0004", "p0005"]  # no duplicates, none lost
    assert s2.stats.reasons == reasons and s2.stats.retries == len(faults)
    assert s2.stats.requests == len(server.requests) == 3 + len(faults)


def test_batch_retries_a_cut_body(server):
    server.add_batch_papers({"p1": {"paperId": "p1"}})
    server.inject("/graph/v1/paper/batch", "truncated")
    s2 = client(server)
    assert s2.batch(["p1", "p2"], ["paperId"]) == [{"paperId": "p1"}, None]
    assert s2.stats.reasons == {"truncated": 1} and len(server.requests) == 2


@pytest.mark.parametrize("status", ["429", "503"])
def test_retry_after_is_honoured(server, status):
    """The backoff here is 10 ms; the server asks for 1 s and gets it."""
    import time

    three_pages(server)
    server.inject("/graph/v1/paper/search/bulk", f"{status}:retry-after=1")
    s2 = client(server)
    started = time.monotonic()
    first, _, _ = next(s2.bulk_search("ldrt", ["paperId"]))
    assert time.monotonic() - started >= 0.9
    assert len(first) == 2 and s2.stats.reasons == {f"http_{status}": 1}


def test_errors_after_the_last_retry_say_what_came(server):
    three_pages(server)
    bulk = "/graph/v1/paper/search/bulk"
    server.inject(bulk, "malformed", "malformed", "malformed")
    with pytest.raises(S2Error) as malformed:
        next(client(server, max_retries=2).bulk_search("ldrt", ["paperId"]))
    assert malformed.value.status == 200 and "no response" not in str(malformed.value)
    assert "failed after 3 attempts (last: malformed_json)" in str(malformed.value)
    assert "application/json" in str(malformed.value) and """b'{"total": 3, "data": ['""" in str(malformed.value)
    server.inject(bulk, "429", "429", "429")
    with pytest.raises(S2Error, match=r"429: .*\(last: http_429\): Too Many Requests\. Please wait and try again"):
        next(client(server, max_retries=2).bulk_search("ldrt", ["paperId"]))
    server.inject(bulk, "truncated", "truncated")
    with pytest.raises(S2Error, match=r"200: .*failed after 2 attempts \(last: truncated\): HTTP 200 application/json"):
        next(client(server, max_retries=1).bulk_search("ldrt", ["paperId"]))
    assert server.pending_faults() == {}


def test_forbidden_names_the_key_variable(server, monkeypatch):
    monkeypatch.delenv("LDRT_TEST_KEY", raising=False)
    server.inject("/graph/v1/paper/search/bulk", "403", "403")
    with pytest.raises(S2Error, match=r"403: Forbidden \(the API key comes from \$LDRT_TEST_KEY, which is not set"):
        next(client(server, api_key_env="LDRT_TEST_KEY").bulk_search("ldrt", ["paperId"]))
    monkeypatch.setenv("LDRT_TEST_KEY", "sekret-123")
    with pytest.raises(S2Error, match=r"\$LDRT_TEST_KEY, which is set") as forbidden:
        next(client(server, api_key_env="LDRT_TEST_KEY").bulk_search("ldrt", ["paperId"]))
    assert "sekret-123" not in str(forbidden.value)


def test_a_missing_key_is_logged_once(server, monkeypatch, caplog):
    from ldrt_hpc.harvest import s2

    monkeypatch.setattr(s2, "_warned_missing_keys", set())
    monkeypatch.delenv("LDRT_TEST_KEY", raising=False)
    monkeypatch.setenv("LDRT_TEST_OTHER_KEY", "sekret-123")
    with caplog.at_level("WARNING", logger="ldrt_hpc.harvest.s2"):
        client(server, api_key_env="LDRT_TEST_OTHER_KEY")
        assert caplog.records == []
        client(server, api_key_env="LDRT_TEST_KEY")
        client(server, api_key_env="LDRT_TEST_KEY")
    assert [r.getMessage() for r in caplog.records] == [
        "$LDRT_TEST_KEY is not set: Semantic Scholar is queried without an API key (shared, lower rate limit)"]


def test_search_errors_name_the_keyword(server, tmp_path):
    from ldrt_hpc.config import SearchConfig

    three_pages(server, '"low dose" + hormesis')
    server.add_bulk_page('"low dose" + hormesis', "t1", {"error": "bad token"}, status=400)
    with pytest.raises(S2Error, match=r"""400: keyword '"low dose" \+ hormesis' \(after 1 pages\): bad token"""):
        search_keyword(client(server), '"low dose" + hormesis', tmp_path, SearchConfig(fields=["paperId"]))


def test_retries_have_a_cap(server):
    three_pages(server)
    server.inject("/graph/v1/paper/search/bulk", "500", "500", "500")
    with pytest.raises(S2Error, match="failed after 3 attempts \\(last: http_500\\)"):
        next(client(server, max_retries=2).bulk_search("ldrt", ["paperId"]))


def test_client_errors_surface_the_api_message(server):
    server.inject("/graph/v1/paper/search/bulk", "403")
    with pytest.raises(S2Error, match="403: Forbidden"):
        next(client(server).bulk_search("ldrt", ["paperId"]))
    assert client(server).stats.retries == 0


@pytest.mark.shared
def test_recorded_400_message(server):
    with pytest.raises(S2Error, match=r"400: Unrecognized or unsupported fields: \[unknown\]"):
        client(server).request("GET", "/graph/v1/paper/10.1093/mind/lix.236.433", params={"fields": "unknown"})


def test_batch_keeps_order_and_nulls(server):
    server.add_batch_papers({"p1": {"paperId": "p1"}, "p3": {"paperId": "p3"}})
    ids = ["p1", "p2", "p3"] + [f"x{i}" for i in range(600)]
    result = client(server).batch(ids, ["paperId"])
    assert len(result) == 603 and result[:3] == [{"paperId": "p1"}, None, {"paperId": "p3"}]
    assert [len(json.loads(r["body"])["ids"]) for r in server.requests] == [500, 103]  # <= 500 per call


def test_resume_continues_from_the_saved_token(server, tmp_path):
    from ldrt_hpc.config import SearchConfig

    three_pages(server)
    cfg = SearchConfig(fields=["paperId"])
    failing = client(server, max_retries=0)
    # the second request fails for good: the task dies after saving page 1 and its token
    server.add_bulk_page("ldrt", "t1", {"total": 5, "token": "t2", "data": [paper(3), paper(4)]}, status=500)
    with pytest.raises(S2Error):
        search_keyword(failing, "ldrt", tmp_path, cfg)
    state = json.loads(next(tmp_path.glob("*.state.json")).read_text())
    assert state == {"keyword": "ldrt", "token": "t1", "pages": 1, "done": False}
    three_pages(server)  # the service is back
    before = len(server.requests)
    papers = search_keyword(client(server), "ldrt", tmp_path, cfg)
    assert [r["query"].get("token") for r in server.requests[before:]] == ["t1", "t2"]  # not from the start
    assert [p["paperId"] for p in papers] == ["p0001", "p0002", "p0003", "p0004", "p0005"]
    assert search_keyword(client(server), "ldrt", tmp_path, cfg) == papers  # done: no request at all
    assert len(server.requests) == before + 2


def test_dedupe_by_id_then_doi_pmid_pmcid():
    a = paper(1)
    same_doi = {**paper(2, doi="10.1000/LDRT.1"), "paperId": "other"}  # DOI case differs
    by_pmid = [{"paperId": "q1", "externalIds": {"PubMed": "123"}}, {"paperId": "q2", "externalIds": {"PubMed": "123"}}]
    unique = dedupe([("k1", a), ("k2", a), ("k3", same_doi)] + [("k1", p) for p in by_pmid])
    assert [u["paper"]["paperId"] for u in unique] == ["p0001", "q1"]
    assert unique[0]["keywords"] == ["k1", "k2", "k3"] and unique[1]["keywords"] == ["k1"]


@pytest.mark.parametrize("paper_id", ["../../etc/passwd", "a/b/c", "..", "", "CorpusId:1234", "x" * 300, "ok-id_1.0"])
def test_safe_names_never_leave_the_folder(tmp_path, paper_id):
    name = safe_name(paper_id)
    assert "/" not in name and name.endswith(".pdf") and len(name) < 130 and not name.startswith(".")
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()
    assert safe_name("ok-id_1.0") == "ok-id_1.0.pdf"


@pytest.fixture
def pdf_bytes(synth_pdfs) -> bytes:
    return sorted(synth_pdfs.glob("*.pdf"))[0].read_bytes()


@pytest.mark.parametrize("fault, outcome", [
    (None, "ok"), ("html", "not_pdf"), ("truncated", "truncated"), ("huge", "too_large"), ("slow:2", "timeout"),
    ("reset", "connection"), ("500", "http_500"),
])
def test_download_outcomes(server, tmp_path, pdf_bytes, fault, outcome):
    import hashlib

    import requests

    server.add_file("/pdf/a.pdf", pdf_bytes)
    if fault:
        server.inject("/pdf/", fault)
    cfg = DownloadConfig(read_timeout_s=0.5, max_bytes=len(pdf_bytes) * 4)
    target = tmp_path / "a.pdf"
    got = fetch(requests.Session(), server.url("/pdf/a.pdf"), target, cfg)
    assert got.outcome == outcome
    assert target.exists() == (outcome == "ok") and not list(tmp_path.glob(".*part*"))  # no partial files left
    # the last answer's real status (0: none came), the bytes received, the declared length
    error_page = len(json.dumps({"message": "Internal Server Error"}))  # what the fault server sends with its 500
    expected = {"ok": (200, len(pdf_bytes), len(pdf_bytes)), "truncated": (200, len(pdf_bytes) // 2, len(pdf_bytes)),
                "too_large": (200, 0, 10**12), "timeout": (0, 0, 0), "connection": (0, 0, 0),
                "http_500": (500, 0, error_page)}
    if outcome in expected:
        assert (got.http_status, got.size, got.declared_size) == expected[outcome]
    assert (got.sha256 == hashlib.sha256(pdf_bytes).hexdigest()) == (outcome == "ok")
    assert (got.detail == "") == (outcome == "ok")
    assert fetch(requests.Session(), "file:///etc/passwd", tmp_path / "x.pdf", cfg).outcome == "bad_url"


def test_redirects_are_followed_but_loops_and_non_http_targets_are_named(server, tmp_path, pdf_bytes):
    import requests

    server.add_file("/pdf/real.pdf", pdf_bytes)
    server.add_redirect("/pdf/moved.pdf", "/pdf/real.pdf", 301)
    server.add_redirect("/pdf/loop.pdf", "/pdf/loop.pdf")
    server.add_redirect("/pdf/local.pdf", "file:///etc/passwd")
    cfg = DownloadConfig(read_timeout_s=2)
    moved = fetch(requests.Session(), server.url("/pdf/moved.pdf"), tmp_path / "m.pdf", cfg)
    assert moved.outcome == "ok" and (tmp_path / "m.pdf").read_bytes() == pdf_bytes
    loop = fetch(requests.Session(), server.url("/pdf/loop.pdf"), tmp_path / "l.pdf", cfg)
    assert (loop.outcome, loop.http_status) == ("redirect_loop", 302) and "30 redirects" in loop.detail
    local = fetch(requests.Session(), server.url("/pdf/local.pdf"), tmp_path / "f.pdf", cfg)
    assert local.outcome == "bad_redirect" and "file:///etc/passwd" in local.detail
    assert [p.name for p in tmp_path.iterdir()] == ["m.pdf"]  # nothing else written, not even a part file


def test_download_retries_share_one_budget(server, tmp_path, pdf_bytes):
    """A cut body is retried by the stage's loop, a 503 by the session's adapter: both count, in one budget."""
    from ldrt_hpc.http import retry_policy, retrying_session
    from ldrt_hpc.stages.download import fetch_with_retries

    server.add_file("/pdf/a.pdf", pdf_bytes)
    cfg = DownloadConfig(read_timeout_s=2, retries=2, backoff_s=0.01)
    policy = retry_policy(cfg.retries, cfg.backoff_s, cfg.backoff_max_s)
    server.inject("/pdf/a.pdf", "truncated", "503")
    got, attempts = fetch_with_retries(retrying_session(policy), policy, server.url("/pdf/a.pdf"), tmp_path / "a.pdf", cfg)
    assert (got.outcome, attempts) == ("ok", 3) and (tmp_path / "a.pdf").read_bytes() == pdf_bytes
    server.inject("/pdf/a.pdf", "truncated", "truncated", "truncated")
    got, attempts = fetch_with_retries(retrying_session(policy), policy, server.url("/pdf/a.pdf"), tmp_path / "b.pdf", cfg)
    assert (got.outcome, got.http_status, attempts) == ("truncated", 200, 3) and server.pending_faults() == {}


def write_config(folder: Path, base_url: str, keywords: list[str], cluster: str = "local") -> Path:
    (folder / "keywords.yaml").write_text("# ldrt-hpc run search (test)\n" + yaml.safe_dump({"keywords": keywords}))
    data = {
        "work_dir": str(folder / "work"), "cluster": cluster,
        "stages": {
            "search": {"keywords": str(folder / "keywords.yaml"), "base_url": base_url, "requests_per_s": 200,
                       "backoff_s": 0.01, "backoff_max_s": 0.05, "api_key_env": "LDRT_TEST_S2_KEY"},
            "download": {"num_shards": 2, "retries": 2, "backoff_s": 0.01, "read_timeout_s": 1},
            "ingest": {"from_download": True, "num_shards": 2},
        },
    }
    path = folder / "harvest.yaml"
    path.write_text("# ldrt-hpc run search --config harvest.yaml (test)\n" + yaml.safe_dump(data))
    return path


def test_search_download_ingest_chain_keeps_the_key_secret(server, tmp_path, pdf_bytes, monkeypatch):
    """search -> download -> ingest through the launcher (local array tasks): bad links get their reasons, the
    success ratio is reported, ingest reads the downloads directly, and the API key is written nowhere."""
    secret = "s2-key-must-not-leak-7f3a"
    monkeypatch.setenv("LDRT_TEST_S2_KEY", secret)
    good = [paper(i, url=server.url(f"/pdf/{i}.pdf")) for i in range(1, 5)]
    for i in range(1, 5):
        server.add_file(f"/pdf/{i}.pdf", pdf_bytes)
    bad = [paper(10, url=server.url("/pdf/html.pdf")), paper(11, url=server.url("/pdf/missing.pdf")),
           paper(12, url=None), {**paper(13, doi="10.1000/ldrt.1"), "paperId": "dup-of-1"}]
    server.add_file("/pdf/html.pdf", b"<html>login</html>" * 20, content_type="text/html")
    server.add_bulk_page("ldrt", None, {"total": 6, "token": "n", "data": good[:2] + bad[:2]})
    server.add_bulk_page("ldrt", "n", {"total": 6, "token": None, "data": good[2:] + bad[2:]})
    server.add_bulk_page("hormesis", None, {"total": 2, "token": None, "data": [good[0], bad[0]]})
    server.inject("/graph/v1/paper/search/bulk", "429")
    server.inject("/pdf/2.pdf", "reset")  # transient: retried
    config = write_config(tmp_path, server.base_url, ["ldrt", "hormesis"])
    cfg = load_pipeline(config)

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "ldrt_hpc.cli", *args, "--config", str(config)],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    cli("run", "search")
    cli("run", "download")
    out = cli("run", "ingest")
    assert "2 shards: 2 done" in out
    from ldrt_hpc.shards import iter_stage

    found = list(iter_stage(cfg.work_dir / "search", [0]))
    assert sorted(r["paper_id"] for r in found) == ["p0001", "p0002", "p0003", "p0004", "p0010", "p0011", "p0012"]
    assert next(r for r in found if r["paper_id"] == "p0001")["keywords"].split("\n") == ["ldrt", "hormesis"]
    outcomes = {r["paper_id"]: r["outcome"] for r in iter_stage(cfg.work_dir / "download", [0, 1])}
    assert outcomes == {"p0001": "ok", "p0002": "ok", "p0003": "ok", "p0004": "ok", "p0010": "not_pdf",
                        "p0011": "http_404"}  # p0012 has no PDF link: not planned
    attempts = {r["paper_id"]: r["attempts"] for r in iter_stage(cfg.work_dir / "download", [0, 1])}
    assert attempts["p0002"] == 2 and attempts["p0001"] == 1
    from ldrt_hpc.shards import read_marker

    stats = [read_marker(cfg.work_dir / "download", i)["stats"] for i in (0, 1)]
    assert sum(s["downloaded"] for s in stats) == 4 and sum(s["papers"] for s in stats) == 6
    assert read_marker(cfg.work_dir / "search", 0)["stats"]["retry_reasons"] == {"http_429": 1}
    ingested = list(iter_stage(cfg.work_dir / "ingest", [0, 1]))
    assert sorted(r["paper_id"] for r in ingested) == ["p0001", "p0002", "p0003", "p0004"] and all(r["ok"] for r in ingested)
    assert all(r["headers"].get("x-api-key") == secret for r in server.requests if r["path"].startswith("/graph"))
    # the key is nowhere on disk: configs, shards, markers, state, job logs, submitit pickles
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == []
    # downloaded and verified papers are skipped on a rerun of a shard
    again = cli("run", "download", "--shards", "0")
    assert "nothing to submit" in again
    good_paths = {f"/pdf/{i}.pdf" for i in range(1, 5)}
    pdf_requests = sum(r["path"] in good_paths for r in server.requests)
    cli("task", "download", "--shard", "0", "--force")  # the same shard again, in this process
    redone = [r for r in iter_stage(cfg.work_dir / "download", [0]) if r["path"]]
    assert redone and all(r["outcome"] == "cached" and r["attempts"] == 0 for r in redone)
    assert sum(r["path"] in good_paths for r in server.requests) == pdf_requests  # verified PDFs are not fetched again


def test_rate_limit_spaces_requests(server):
    import time

    three_pages(server)
    s2 = client(server, requests_per_s=10)
    started = time.monotonic()
    list(s2.bulk_search("ldrt", ["paperId"]))
    assert time.monotonic() - started >= 0.2  # three requests at 10/s: at least two intervals of 0.1 s


def test_search_stage_enriches_through_batch(server, tmp_path):
    """`enrich: true` fills missing fields (here the PDF link) through POST /paper/batch."""
    from ldrt_hpc.config import load_pipeline
    from ldrt_hpc.shards import iter_stage
    from tests.conftest import run_inline

    server.add_bulk_page("ldrt", None, {"total": 2, "token": None, "data": [paper(1, url="http://x/1.pdf"),
                                                                            {"paperId": "p0002"}]})
    server.add_batch_papers({"p0002": {"paperId": "p0002", "openAccessPdf": {"url": "http://x/2.pdf", "status": "GREEN"},
                                       "title": "Enriched"}})
    config = write_config(tmp_path, server.base_url, ["ldrt"])
    data = yaml.safe_load(config.read_text())
    data["stages"]["search"]["enrich"] = True
    config.write_text("# ldrt-hpc run search (test)\n" + yaml.safe_dump(data))
    cfg = load_pipeline(config)
    run_inline(cfg, "search")
    records = {r["paper_id"]: r for r in iter_stage(cfg.work_dir / "search", [0])}
    assert records["p0002"]["pdf_url"] == "http://x/2.pdf" and records["p0002"]["title"] == "Enriched"
    assert json.loads(next(r for r in server.requests if r["method"] == "POST")["body"])["ids"] == ["p0002"]
