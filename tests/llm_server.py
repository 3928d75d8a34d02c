"""A scripted OpenAI-compatible chat server on 127.0.0.1 (test helper): answers come from a queue, faults too."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedChatServer:
    """`answers`: texts returned in order (the last one repeats); `inject("500", "429")` queues failures: a status,
    a status that asks the client to wait ("429:retry-after=1" sends `Retry-After: 1`) or "malformed"."""

    def __init__(self, answers: list[str]):
        self.answers = deque(answers)
        self.faults: deque[str] = deque()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.failing: set[int] = set()

    def fail_requests(self, *numbers: int) -> None:
        """Answer these requests (1-based, counted from the start) with a 500: a failure at a known point."""
        self.failing.update(numbers)

    def inject(self, *faults: str) -> None:
        self.faults.extend(faults)

    def _next(self) -> tuple[int, dict, dict[str, str]]:
        """The next answer: (status, JSON body, extra headers)."""
        with self.lock:
            if len(self.requests) in self.failing:
                return 500, {"error": {"message": f"injected failure of request {len(self.requests)}"}}, {}
            if self.faults:
                fault = self.faults.popleft()
                if fault == "malformed":
                    return 200, {"choices": []}, {}
                status, marker, seconds = fault.partition(":retry-after=")
                return int(status), {"error": {"message": f"injected {fault}"}}, {"Retry-After": seconds} if marker else {}
            text = self.answers.popleft() if len(self.answers) > 1 else self.answers[0]
        return 200, {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 11, "completion_tokens": len(text.split())}}, {}

    def __enter__(self) -> "ScriptedChatServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                status, answer, headers = server._next()
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
