"""Semantic Scholar Graph API client: bulk search with token paging, batch lookup, rate limit, retries.

- The API key is read from an environment variable (name in the config) and sent as `x-api-key`; it is never
  logged, stored in a config, a shard, a state file or a submitit pickle.
- About 1 request/s (configurable); 429, 5xx, timeouts, connection resets and malformed JSON are retried with
  exponential backoff and jitter, up to a cap; other 4xx errors raise with the API's own message.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import requests

log = logging.getLogger(__name__)

BULK_PATH = "/graph/v1/paper/search/bulk"
BATCH_PATH = "/graph/v1/paper/batch"
BATCH_MAX = 500


class S2Error(RuntimeError):
    """An API error that retrying cannot fix (bad request, forbidden key, not found) or retries ran out."""

    def __init__(self, status: int | None, message: str):
        super().__init__(f"Semantic Scholar API: {status or 'no response'}: {message}")
        self.status = status


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def retry(self, reason: str) -> None:
        self.retries += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1


class S2Client:
    def __init__(
        self,
        base_url: str,
        api_key_env: str = "S2_API_KEY",
        requests_per_s: float = 1.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        key = os.environ.get(api_key_env)
        if key:
            self.session.headers["x-api-key"] = key
        self.min_interval = 1.0 / requests_per_s if requests_per_s > 0 else 0.0
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.stats = ClientStats()
        self._last_request = float("-inf")

    def _wait_for_slot(self) -> None:
        pause = self._last_request + self.min_interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._last_request = time.monotonic()

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * 2**attempt) * random.uniform(0.5, 1.0)

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> Any:
        """One API call with rate limiting and retries; returns the decoded JSON body."""
        url = self.base_url + path
        for attempt in range(self.max_retries + 1):
            self._wait_for_slot()
            self.stats.requests += 1
            reason = None
            try:
                response = self.session.request(method, url, params=params, json=body, timeout=self.timeout)
            except requests.Timeout:
                reason = "timeout"
            except requests.ConnectionError:
                reason = "connection"
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    reason = f"http_{response.status_code}"
                elif response.status_code >= 400:
                    raise S2Error(response.status_code, _api_message(response))
                else:
                    try:
                        return response.json()
                    except ValueError:
                        reason = "malformed_json"
            if attempt == self.max_retries:
                raise S2Error(None, f"{method} {path} failed after {attempt + 1} attempts (last: {reason})")
            self.stats.retry(reason)
            delay = self._backoff(attempt)
            log.warning("%s %s: %s; retry %d/%d in %.1f s", method, path, reason, attempt + 1, self.max_retries, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def bulk_search(
        self, query: str, fields: list[str], filters: dict[str, str] | None = None, token: str | None = None
    ) -> Iterator[tuple[list[dict], str | None, int | None]]:
        """Pages of a bulk search: (papers, next token or None, total). Start from `token` to resume."""
        while True:
            params = {"query": query, "fields": ",".join(fields), **(filters or {})}
            if token:
                params["token"] = token
            page = self.request("GET", BULK_PATH, params=params)
            if not isinstance(page, dict) or not isinstance(page.get("data", []), list):
                raise S2Error(200, f"unexpected bulk search response for {query!r}: {str(page)[:200]}")
            token = page.get("token") or None  # a missing token means the same as null: the last page
            yield page.get("data") or [], token, page.get("total")
            if token is None:
                return

    def batch(self, ids: list[str], fields: list[str]) -> list[dict | None]:
        """Papers by id (<= 500 per call, split here); None where an id is unknown; same order as `ids`."""
        result: list[dict | None] = []
        for start in range(0, len(ids), BATCH_MAX):
            chunk = ids[start : start + BATCH_MAX]
            page = self.request("POST", BATCH_PATH, params={"fields": ",".join(fields)}, body={"ids": chunk})
            if not isinstance(page, list) or len(page) != len(chunk):
                raise S2Error(200, f"batch returned {type(page).__name__} of {len(page) if isinstance(page, list) else '?'} "
                                   f"for {len(chunk)} ids")
            result += page
        return result


def _api_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:500]
    return json.dumps(body)[:300]
