"""A local replay server for the Semantic Scholar Graph API, with fault injection (test helper).

`S2ReplayServer` runs a real `http.server.ThreadingHTTPServer` on 127.0.0.1 (ephemeral port) in a daemon thread.
It serves:

- `GET /graph/v1/paper/search/bulk`: pages registered with `add_bulk_page(query, token, body)`, matched on the
  `query` and `token` parameters only (other parameters are recorded but ignored); recorded bulk pages are
  registered this way at construction.
- `POST /graph/v1/paper/batch`: `{"ids": [...]}` answered with a list in request order (the known paper or null);
  more than 500 ids gives 400 `{"error": ...}`.
- raw files registered with `add_file(path, content)`, redirects registered with `add_redirect(path, location)`.
- any other recording, matched on method, path and the exact query dict (and, for POST, the JSON body).

Faults queued with `inject(path_prefix, *faults)` are consumed one per matching request, FIFO. A status fault
may ask the client to wait: "429:retry-after=1" and "503:retry-after=1" send `Retry-After: 1`.
Every request is recorded in `requests` (thread-safe).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BULK_PATH = "/graph/v1/paper/search/bulk"
BATCH_PATH = "/graph/v1/paper/batch"
BATCH_LIMIT = 500

DEFAULT_429 = {
    "message": "Too Many Requests. Please wait and try again or apply for a key for higher rate limits. "
    "https://www.semanticscholar.org/product/api#api-key-form",
    "code": "429",
}
MALFORMED_JSON = b'{"total": 3, "data": ['
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Access denied</title></head>\n"
    b"<body><h1>Please log in</h1><p>This is an HTML page, not a PDF.</p></body></html>\n"
)
SIMPLE_FAULTS = {"429", "500", "503", "403", "malformed", "reset", "html", "truncated", "huge"}
RETRY_AFTER_FAULTS = {"429", "503"}
HUGE_LENGTH = 10**12
HUGE_MAX_SECONDS = 5.0
CHUNK = 64 * 1024


def _json_bytes(value: Any) -> bytes:
    """A recorded body: a JSON string is sent as-is (it already is the raw text), anything else is serialised."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


def _parse_query(query: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


def _retry_after(fault: str) -> tuple[str, str | None]:
    """("429", "1") for "429:retry-after=1"; (fault, None) for a fault without a Retry-After."""
    status, marker, seconds = fault.partition(":retry-after=")
    return (status, seconds) if marker else (fault, None)


def _check_fault(fault: str) -> str:
    if fault in SIMPLE_FAULTS:
        return fault
    status, seconds = _retry_after(fault)
    if seconds is not None:
        if status not in RETRY_AFTER_FAULTS or not seconds.isdigit():
            raise ValueError(f"bad fault {fault!r}: expected 429:retry-after=SECONDS or 503:retry-after=SECONDS")
        return fault
    if fault.startswith("slow:"):
        try:
            seconds = float(fault[5:])
        except ValueError:
            raise ValueError(f"bad slow fault {fault!r}: expected slow:SECONDS") from None
        if seconds < 0:
            raise ValueError(f"bad slow fault {fault!r}: negative delay")
        return fault
    raise ValueError(f"unknown fault {fault!r}; known: {sorted(SIMPLE_FAULTS)}, slow:S and 429/503:retry-after=S")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    replay: S2ReplayServer

    def handle_error(self, request, client_address) -> None:  # quiet: clients hanging up are expected here
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "S2Replay/1.0"
    timeout = 30  # idle keep-alive connections end eventually
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # --- reading -----------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        replay = self.server.replay
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = _parse_query(split.query)
        body = self._read_body()
        replay._record(
            {
                "method": self.command,
                "path": path,
                "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        fault = replay._take_fault(path)
        try:
            self._answer(replay, fault, path, query, body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    # --- answering ---------------------------------------------------------------------------------------------

    def _answer(self, replay: S2ReplayServer, fault: str | None, path: str, query: dict, body: bytes) -> None:
        fault, retry_after = _retry_after(fault) if fault else (None, None)
        extra = {"Retry-After": retry_after} if retry_after is not None else {}
        if fault is None and path in replay._redirects:
            status, location = replay._redirects[path]
            self._send(status, "text/plain", b"", {"Location": location})
        elif fault is None:
            self._send(*replay._resolve(self.command, path, query, body))
        elif fault == "429":
            self._send(429, "application/json", _json_bytes(replay._body_429), extra)
        elif fault == "500":
            self._send(500, "application/json", _json_bytes({"message": "Internal Server Error"}))
        elif fault == "503":
            self._send(503, "application/json", _json_bytes({"message": "Service Unavailable"}), extra)
        elif fault == "403":
            self._send(403, "application/json", _json_bytes({"message": "Forbidden"}))
        elif fault == "malformed":
            self._send(200, "application/json", MALFORMED_JSON)
        elif fault == "html":
            self._send(200, "text/html; charset=utf-8", HTML_PAGE)
        elif fault == "reset":
            self._reset()
        elif fault == "truncated":
            status, ctype, content = replay._resolve(self.command, path, query, body)
            self._send_head(status, ctype, len(content))
            if self.command != "HEAD":
                self.wfile.write(content[: len(content) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif fault == "huge":
            self._huge(replay)
        elif fault.startswith("slow:"):
            replay._stop.wait(float(fault[5:]))
            if replay._stop.is_set():
                self.close_connection = True
                return
            self._send(*replay._resolve(self.command, path, query, body))
        else:  # pragma: no cover - faults are validated in inject()
            raise AssertionError(fault)

    def _send_head(self, status: int, content_type: str, length: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _send(self, status: int, content_type: str, content: bytes, headers: dict[str, str] | None = None) -> None:
        self._send_head(status, content_type, len(content), headers)
        if self.command != "HEAD":
            view = memoryview(content)
            for start in range(0, len(content), CHUNK):
                self.wfile.write(view[start : start + CHUNK])
        self.wfile.flush()

    def _reset(self) -> None:
        """Close the TCP connection without a response; SO_LINGER 0 makes the kernel send an RST."""
        conn = self.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drop the makefile reference so close() really closes the socket
        except OSError:
            pass
        try:
            conn.close()
        except OSError:
            pass
        # The base class flushes/closes these after the handler; give it harmless stand-ins.
        self.rfile = _NullFile()
        self.wfile = _NullFile()
        self.close_connection = True

    def _huge(self, replay: S2ReplayServer) -> None:
        self._send_head(200, "application/pdf", HUGE_LENGTH)
        self.close_connection = True
        if self.command == "HEAD":
            return
        self.wfile.write(b"%PDF-1.7\n" + b"%" + b"0" * 16375 + b"\n")
        self.wfile.flush()
        deadline = time.monotonic() + HUGE_MAX_SECONDS
        block = b"0" * 16384
        while time.monotonic() < deadline and not replay._stop.is_set():
            if replay._stop.wait(0.02):
                break
            # a client that stops reading fills the socket buffers: bound each blocked write by the time left
            self.connection.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            self.wfile.write(block)  # raises BrokenPipe/ConnectionReset once the client has hung up
            self.wfile.flush()


class _NullFile:
    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def readline(self, *args: Any) -> bytes:
        return b""

    def read(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        pass


class S2ReplayServer:
    """Replays recorded Semantic Scholar responses on 127.0.0.1 and injects faults. Use as a context manager."""

    def __init__(self, recordings: Path | None = None):
        self.base_url = ""
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bulk: dict[tuple[str, str | None], tuple[int, bytes]] = {}
        self._papers: dict[str, dict | None] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._recorded: list[tuple[str, str, dict[str, str], Any, int, bytes]] = []
        self._faults: dict[str, deque[str]] = {}
        self._body_429: Any = DEFAULT_429
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if recordings is not None:
            self._load(Path(recordings))

    # --- recordings --------------------------------------------------------------------------------------------

    def _load(self, folder: Path) -> None:
        if not folder.is_dir():
            return
        reconstructed = folder / "RECONSTRUCTED_429_too_many_requests.json"
        if reconstructed.is_file():
            self._body_429 = json.loads(reconstructed.read_text(encoding="utf-8")).get("body", DEFAULT_429)
        for file in sorted(folder.glob("*.json")):
            if file.name.startswith("RECONSTRUCTED_"):
                continue  # not a recording
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict) or not isinstance(data.get("request"), dict) or "status" not in data:
                continue  # bare objects such as Paper.json
            request = data["request"]
            method = str(request.get("method", "GET")).upper()
            split = urllib.parse.urlsplit(request.get("uri", ""))
            path = urllib.parse.unquote(split.path)
            query = _parse_query(split.query)
            status = int(data["status"])
            content = _json_bytes(data.get("body"))
            if method == "GET" and path == BULK_PATH and "query" in query:
                self._bulk[(query["query"], query.get("token"))] = (status, content)
                continue
            request_body = request.get("body")
            if isinstance(request_body, str):
                try:
                    request_body = json.loads(request_body)
                except ValueError:
                    pass
            self._recorded.append((method, path, query, request_body, status, content))

    # --- configuration -----------------------------------------------------------------------------------------

    def add_bulk_page(self, query: str, token: str | None, body: dict, status: int = 200) -> None:
        """Response for GET /graph/v1/paper/search/bulk with this `query` and `token` (None = first page, no token)."""
        with self._lock:
            self._bulk[(query, token)] = (status, _json_bytes(body))

    def add_batch_papers(self, papers: dict[str, dict | None]) -> None:
        """Known papers for POST /graph/v1/paper/batch (None = answered as null, like an unknown id)."""
        with self._lock:
            self._papers.update(papers)

    def add_file(self, path: str, content: bytes, content_type: str = "application/pdf") -> None:
        """Serve raw bytes at GET `path` (e.g. "/pdf/a.pdf"), with Content-Length."""
        if not path.startswith("/"):
            path = "/" + path
        with self._lock:
            self._files[urllib.parse.unquote(path)] = (bytes(content), content_type)

    def add_redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer GET `path` with `status` and `Location: location` (a path on this server or any URL)."""
        with self._lock:
            self._redirects[urllib.parse.unquote(path)] = (status, location)

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def inject(self, path_prefix: str, *faults: str) -> None:
        """Queue faults for the next requests whose path starts with `path_prefix` (one per request, FIFO)."""
        checked = [_check_fault(f) for f in faults]
        with self._lock:
            self._faults.setdefault(path_prefix, deque()).extend(checked)

    def pending_faults(self) -> dict[str, list[str]]:
        """Faults not consumed yet, by path prefix."""
        with self._lock:
            return {prefix: list(queue) for prefix, queue in self._faults.items() if queue}

    # --- used by the handler -----------------------------------------------------------------------------------

    def _record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def _take_fault(self, path: str) -> str | None:
        """The next fault for this path: the longest matching prefix with a non-empty queue wins."""
        with self._lock:
            matching = [p for p, q in self._faults.items() if q and path.startswith(p)]
            if not matching:
                return None
            return self._faults[max(matching, key=len)].popleft()

    def _resolve(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        """The normal (fault-free) answer: (status, content type, content)."""
        json_type = "application/json"
        with self._lock:
            if method in ("GET", "HEAD") and path == BULK_PATH:
                page = self._bulk.get((query.get("query", ""), query.get("token") or None))
                if page is None:
                    return 404, json_type, _json_bytes({"error": "unknown query/token"})
                return page[0], json_type, page[1]
            if method == "POST" and path == BATCH_PATH:
                return self._batch(query, body)
            if method in ("GET", "HEAD") and path in self._files:
                content, ctype = self._files[path]
                return 200, ctype, content
            for r_method, r_path, r_query, r_body, status, content in self._recorded:
                if r_method == method or (method == "HEAD" and r_method == "GET"):
                    if r_path == path and r_query == query and (method != "POST" or _same_json(r_body, body)):
                        return status, json_type, content
        return 404, json_type, _json_bytes({"error": f"no recording for {method} {path}"})

    def _batch(self, query: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        json_type = "application/json"
        try:
            ids = json.loads(body.decode("utf-8") or "null")["ids"]
            if not isinstance(ids, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return 400, json_type, _json_bytes({"error": 'Body must be a JSON object {"ids": [...]}'})
        if len(ids) > BATCH_LIMIT:
            return 400, json_type, _json_bytes({"error": f"Cannot process more than {BATCH_LIMIT} ids (got {len(ids)})"})
        if not any(isinstance(i, str) and i in self._papers for i in ids):
            for r_method, r_path, r_query, r_body, status, content in self._recorded:
                if r_method == "POST" and r_path == BATCH_PATH and r_query == query and _same_json(r_body, body):
                    return status, json_type, content
        return 200, json_type, _json_bytes([self._papers.get(i) if isinstance(i, str) else None for i in ids])

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> S2ReplayServer:
        if self._server is not None:
            return self
        self._stop.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.replay = self
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="s2-replay", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stop.set()  # wakes "slow" and "huge" responses still in progress
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def __enter__(self) -> S2ReplayServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _same_json(recorded: Any, body: bytes) -> bool:
    """Whether a request body equals a recorded one (compared as JSON when both parse)."""
    try:
        return json.loads(body.decode("utf-8")) == recorded
    except ValueError:
        return body.decode("utf-8", "replace") == (recorded if isinstance(recorded, str) else json.dumps(recorded))
