"""The Semantic Scholar replay server (tests/s2_server.py): recorded pages, project-made pages, batch, files, faults."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from tests.conftest import SHARED
from tests.s2_server import S2ReplayServer

RECORDINGS = SHARED / "s2" / "responses"
BULK = "/graph/v1/paper/search/bulk"
BATCH = "/graph/v1/paper/batch"
FIRST_TOKEN = (
    "PCOKWVSKJJGM4TWNJNI3EUSQJIWVNUSRKBFEYK2JFUBHFI4VJRJU2DOMSMGIYLGMZRG4YDJMCJGS3DIN2PGJGLKNFRGYZTINZXGFELETJQJ42DKNSVRGWAOXLUJSW"
)
TIMEOUT = 2.0


def need_recordings() -> Path:
    if not RECORDINGS.is_dir():
        pytest.skip("../shared/s2/responses is absent (recorded Semantic Scholar responses live there)")
    return RECORDINGS


@pytest.fixture
def server():
    with S2ReplayServer() as srv:
        srv.add_bulk_page("dose", None, {"total": 2, "token": "T1", "data": [{"paperId": "a"}]})
        srv.add_bulk_page("dose", "T1", {"total": 2, "token": None, "data": [{"paperId": "b"}]})
        yield srv


@pytest.fixture
def recorded():
    with S2ReplayServer(need_recordings()) as srv:
        yield srv


def bulk(srv: S2ReplayServer, query: str, token: str | None = None, **params) -> requests.Response:
    params = {"query": query, **params}
    if token is not None:
        params["token"] = token
    return requests.get(srv.url(BULK), params=params, timeout=TIMEOUT)


# --- recordings ------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_recorded_first_and_next_bulk_pages(recorded):
    first = bulk(recorded, "kubernetes", fields="title")
    assert first.status_code == 200
    page = first.json()
    assert page["total"] == 2674 and page["token"] == FIRST_TOKEN and len(page["data"]) == 1000
    assert page["data"][0]["paperId"] == "0018ce3db8f9957b520d6b7e0cec84abfa230e1c"

    second = bulk(recorded, "kubernetes", token=page["token"], fields="title,year", year="2020-")
    assert second.status_code == 200
    nxt = second.json()
    assert nxt["token"] and nxt["token"] != FIRST_TOKEN
    assert nxt["data"][0]["paperId"] == "5e620a3f2211053a39a0a48a717dc65133d3a0ac"
    assert {p["paperId"] for p in nxt["data"]}.isdisjoint(p["paperId"] for p in page["data"])
    assert recorded.requests[-1]["query"] == {"query": "kubernetes", "token": FIRST_TOKEN, "fields": "title,year",
                                               "year": "2020-"}


@pytest.mark.shared
def test_recorded_get_404_400_and_batch(recorded):
    ok = requests.get(recorded.url("/graph/v1/paper/10.1093/mind/lix.236.433"), params={"fields": "title"},
                      timeout=TIMEOUT)
    assert ok.status_code == 200 and ok.json()["title"] == "Computing Machinery and Intelligence"

    bad = requests.get(recorded.url("/graph/v1/paper/10.1093/mind/lix.236.433"), params={"fields": "unknown"},
                       timeout=TIMEOUT)
    assert bad.status_code == 400 and "Unrecognized" in bad.json()["error"]

    missing = requests.get(recorded.url("/graph/v1/paper/0"), params={"fields": "t,i,t,l,e"}, timeout=TIMEOUT)
    assert missing.status_code == 404 and missing.json() == {"error": "Paper with id 0 not found"}

    unrecorded = requests.get(recorded.url("/graph/v1/paper/0"), params={"fields": "title"}, timeout=TIMEOUT)
    assert unrecorded.status_code == 404 and "no recording" in unrecorded.json()["error"]

    ids = ["CorpusId:211530585", "CorpusId:470667", "10.2139/ssrn.2250500", "0f40b1f08821e22e859c6050916cec3667778613"]
    fields = ("abstract,authors,citationCount,citationStyles,corpusId,externalIds,fieldsOfStudy,influentialCitationCount,"
              "isOpenAccess,journal,openAccessPdf,paperId,publicationDate,publicationTypes,publicationVenue,"
              "referenceCount,s2FieldsOfStudy,title,url,venue,year")
    batch = requests.post(recorded.url(BATCH), params={"fields": fields}, json={"ids": ids}, timeout=TIMEOUT)
    assert batch.status_code == 200
    papers = batch.json()
    assert len(papers) == 4 and papers[0] is None
    assert papers[3]["paperId"] == "0f40b1f08821e22e859c6050916cec3667778613"


def test_missing_recordings_folder_is_not_an_error(tmp_path):
    with S2ReplayServer(tmp_path / "absent") as srv:
        assert bulk(srv, "kubernetes").status_code == 404


# --- project-made pages, batch, files --------------------------------------------------------------------------


def test_project_bulk_pages_match_on_query_and_token_only(server):
    first = bulk(server, "dose", fields="title,openAccessPdf", year="2015-", openAccessPdf="",
                 fieldsOfStudy="Medicine", publicationTypes="JournalArticle")
    assert first.status_code == 200 and first.json()["token"] == "T1"
    second = bulk(server, "dose", token="T1", fields="title")
    assert second.json() == {"total": 2, "token": None, "data": [{"paperId": "b"}]}

    unknown = bulk(server, "dose", token="nope")
    assert unknown.status_code == 404 and unknown.json() == {"error": "unknown query/token"}
    assert bulk(server, "other").status_code == 404

    req = server.requests[0]
    assert req["method"] == "GET" and req["path"] == BULK and req["body"] == b""
    assert req["query"] == {"query": "dose", "fields": "title,openAccessPdf", "year": "2015-", "openAccessPdf": "",
                            "fieldsOfStudy": "Medicine", "publicationTypes": "JournalArticle"}
    assert "token" not in req["query"] and server.requests[1]["query"]["token"] == "T1"
    assert len(server.requests) == 4


def test_add_bulk_page_with_error_status(server):
    server.add_bulk_page("broken", None, {"error": "Unrecognized or unsupported fields: [x]"}, status=400)
    r = bulk(server, "broken")
    assert r.status_code == 400 and r.json()["error"].startswith("Unrecognized")


def test_batch_nulls_in_request_order_and_limit(server):
    server.add_batch_papers({"p1": {"paperId": "p1", "title": "One"}, "p2": {"paperId": "p2", "title": "Two"}})
    r = requests.post(server.url(BATCH), params={"fields": "title"}, json={"ids": ["p2", "zz", "p1", "p2"]},
                      timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.json() == [{"paperId": "p2", "title": "Two"}, None, {"paperId": "p1", "title": "One"},
                        {"paperId": "p2", "title": "Two"}]
    assert json.loads(server.requests[-1]["body"]) == {"ids": ["p2", "zz", "p1", "p2"]}
    assert server.requests[-1]["query"] == {"fields": "title"}

    ok = requests.post(server.url(BATCH), json={"ids": [f"id{i}" for i in range(500)]}, timeout=TIMEOUT)
    assert ok.status_code == 200 and ok.json() == [None] * 500
    too_many = requests.post(server.url(BATCH), json={"ids": [f"id{i}" for i in range(501)]}, timeout=TIMEOUT)
    assert too_many.status_code == 400 and isinstance(too_many.json()["error"], str)


def test_file_serving_streams_with_content_length(server):
    content = b"%PDF-1.4\n" + bytes(range(256)) * 1000 + b"\n%%EOF\n"
    server.add_file("/pdf/a.pdf", content)
    with requests.get(server.url("/pdf/a.pdf"), stream=True, timeout=TIMEOUT) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/pdf"
        assert int(r.headers["Content-Length"]) == len(content)
        got = b"".join(r.iter_content(8192))
    assert got == content
    server.add_file("/page.txt", b"hello", content_type="text/plain")
    r = requests.get(server.url("/page.txt"), timeout=TIMEOUT)
    assert r.text == "hello" and r.headers["Content-Type"] == "text/plain"
    assert requests.get(server.url("/pdf/missing.pdf"), timeout=TIMEOUT).status_code == 404


def test_requests_are_recorded_with_lower_case_headers(server):
    bulk(server, "dose")
    requests.get(server.url(BULK), params={"query": "dose"}, headers={"X-API-KEY": "secret-key"}, timeout=TIMEOUT)
    assert "x-api-key" not in server.requests[0]["headers"]
    headers = server.requests[1]["headers"]
    assert headers["x-api-key"] == "secret-key"
    assert all(k == k.lower() for k in headers) and "user-agent" in headers


# --- faults ----------------------------------------------------------------------------------------------------


def test_429_twice_then_success(server):
    server.inject(BULK, "429", "429")
    first, second, third = (bulk(server, "dose") for _ in range(3))
    assert first.status_code == second.status_code == 429
    assert first.json()["code"] == "429" and first.json()["message"].startswith("Too Many Requests")
    assert "Retry-After" not in first.headers
    assert third.status_code == 200 and third.json()["token"] == "T1"
    assert server.pending_faults() == {}


@pytest.mark.shared
def test_429_body_comes_from_the_reconstructed_file():
    folder = need_recordings()
    expected = json.loads((folder / "RECONSTRUCTED_429_too_many_requests.json").read_text())["body"]
    with S2ReplayServer(folder) as srv:
        srv.inject("/", "429")
        r = bulk(srv, "radiotherapy", fields="title")
        assert r.status_code == 429 and r.json() == expected
        # the reconstructed file is not a recording of a page
        assert bulk(srv, "radiotherapy", fields="title").status_code == 404


def test_status_faults(server):
    server.inject("/graph/v1/paper", "500", "503", "403")
    r500, r503, r403, ok = (bulk(server, "dose") for _ in range(4))
    assert r500.status_code == 500 and r500.json() == {"message": "Internal Server Error"}
    assert r503.status_code == 503
    assert r403.status_code == 403 and r403.json() == {"message": "Forbidden"}
    assert ok.status_code == 200


def test_status_faults_can_send_retry_after(server):
    server.inject(BULK, "429:retry-after=2", "503:retry-after=0")
    r429, r503, ok = (bulk(server, "dose") for _ in range(3))
    assert r429.status_code == 429 and r429.headers["Retry-After"] == "2" and r429.json()["code"] == "429"
    assert r503.status_code == 503 and r503.headers["Retry-After"] == "0"
    assert ok.status_code == 200 and "Retry-After" not in ok.headers
    for bad in ("500:retry-after=1", "429:retry-after=soon", "429:retry-after=-1"):
        with pytest.raises(ValueError):
            server.inject(BULK, bad)


def test_redirects(server):
    server.add_file("/pdf/a.pdf", b"%PDF-1.4 a")
    server.add_redirect("/pdf/old.pdf", "/pdf/a.pdf", 301)
    server.add_redirect("/pdf/away.pdf", "file:///etc/passwd")
    r = requests.get(server.url("/pdf/old.pdf"), allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 301 and r.headers["Location"] == "/pdf/a.pdf"
    assert requests.get(server.url("/pdf/old.pdf"), timeout=TIMEOUT).content == b"%PDF-1.4 a"
    away = requests.get(server.url("/pdf/away.pdf"), allow_redirects=False, timeout=TIMEOUT)
    assert away.status_code == 302 and away.headers["Location"] == "file:///etc/passwd"


def test_faults_only_hit_matching_paths_in_fifo_order(server):
    server.add_file("/pdf/a.pdf", b"%PDF-1.4 a")
    server.inject(BATCH, "500")
    server.inject("/pdf/", "403", "html")
    assert bulk(server, "dose").status_code == 200  # not under /graph/v1/paper/batch
    assert requests.get(server.url("/pdf/a.pdf"), timeout=TIMEOUT).status_code == 403
    assert requests.post(server.url(BATCH), json={"ids": []}, timeout=TIMEOUT).status_code == 500
    assert requests.get(server.url("/pdf/a.pdf"), timeout=TIMEOUT).headers["Content-Type"].startswith("text/html")
    assert requests.get(server.url("/pdf/a.pdf"), timeout=TIMEOUT).content == b"%PDF-1.4 a"


def test_unknown_fault_is_rejected(server):
    with pytest.raises(ValueError):
        server.inject(BULK, "teapot")
    with pytest.raises(ValueError):
        server.inject(BULK, "slow:soon")


def test_malformed_json(server):
    server.inject(BULK, "malformed")
    r = bulk(server, "dose")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        r.json()


def test_reset_raises_a_client_error(server):
    server.inject(BULK, "reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        bulk(server, "dose")
    assert bulk(server, "dose").status_code == 200  # the server carries on
    assert len(server.requests) == 2


def test_slow_triggers_a_read_timeout(server):
    server.inject(BULK, "slow:2")
    start = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(server.url(BULK), params={"query": "dose"}, timeout=0.5)
    assert time.monotonic() - start < 1.5
    assert bulk(server, "dose").status_code == 200


def test_slow_answers_normally_after_the_delay(server):
    server.inject(BULK, "slow:0.2")
    start = time.monotonic()
    r = bulk(server, "dose")
    assert r.status_code == 200 and r.json()["token"] == "T1"
    assert time.monotonic() - start >= 0.2


def test_html_instead_of_pdf(server):
    server.add_file("/pdf/a.pdf", b"%PDF-1.4 real")
    server.inject("/pdf/a.pdf", "html")
    r = requests.get(server.url("/pdf/a.pdf"), timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert r.content.lstrip().lower().startswith(b"<!doctype html") and not r.content.startswith(b"%PDF")


def test_truncated_sends_fewer_bytes_than_content_length(server):
    content = b"%PDF-1.4\n" + b"x" * 100_000
    server.add_file("/pdf/t.pdf", content)
    server.inject("/pdf/t.pdf", "truncated", "truncated")

    host, port = urllib.parse.urlsplit(server.base_url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        conn.request("GET", "/pdf/t.pdf")
        resp = conn.getresponse()
        assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(content)
        with pytest.raises(http.client.IncompleteRead) as err:
            resp.read()
        assert err.value.partial == content[: len(content) // 2]
    finally:
        conn.close()

    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        requests.get(server.url("/pdf/t.pdf"), timeout=TIMEOUT)
    assert requests.get(server.url("/pdf/t.pdf"), timeout=TIMEOUT).content == content


def test_huge_announces_a_terabyte_and_the_client_can_stop(server):
    server.add_file("/pdf/h.pdf", b"%PDF-1.4 small")
    server.inject("/pdf/h.pdf", "huge")
    start = time.monotonic()
    with requests.get(server.url("/pdf/h.pdf"), stream=True, timeout=TIMEOUT) as r:
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf"
        assert int(r.headers["Content-Length"]) == 10**12
        got = 0
        for chunk in r.iter_content(8192):
            got += len(chunk)
            if got >= 64 * 1024:
                break
    assert got >= 64 * 1024 and time.monotonic() - start < 2.5
    assert requests.get(server.url("/pdf/h.pdf"), timeout=TIMEOUT).content == b"%PDF-1.4 small"


def test_exit_is_quick_with_responses_in_progress():
    srv = S2ReplayServer()
    with srv:
        srv.add_file("/pdf/h.pdf", b"%PDF-1.4")
        srv.inject("/pdf/h.pdf", "huge")
        r = requests.get(srv.url("/pdf/h.pdf"), stream=True, timeout=TIMEOUT)
        next(r.iter_content(1024))
        srv.add_bulk_page("q", None, {"data": []})
        srv.inject(BULK, "slow:30")
        with pytest.raises(requests.exceptions.Timeout):
            requests.get(srv.url(BULK), params={"query": "q"}, timeout=0.2)
        start = time.monotonic()
    assert time.monotonic() - start < 1.0
    r.close()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(srv.url(BULK), params={"query": "q"}, timeout=0.5)
