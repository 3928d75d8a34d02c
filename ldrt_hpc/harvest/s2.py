"""Semantic Scholar Graph API client: bulk search with token paging, batch lookup, rate limit, retries.

- The API key is read from an environment variable (name in the config) and sent as `x-api-key`; it is never
  logged, stored in a config, a shard, a state file or a submitit pickle. A missing key is logged once.
- About 1 request/s (configurable). Retries follow the package's one policy (`ldrt_hpc.http`): 429, 5xx,
  timeouts and resets are retried by urllib3 (honouring `Retry-After`), bodies cut mid-way and malformed JSON by
  `S2Client.request`, on the same budget and backoff schedule. Other 4xx errors raise with the API's own message.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from ..http import RETRY_STATUSES, Retryable, body_start, call_with_retries, read_answer, retry_policy, retrying_session

log = logging.getLogger(__name__)

BULK_PATH = "/graph/v1/paper/search/bulk"
BATCH_PATH = "/graph/v1/paper/batch"
BATCH_MAX = 500
_warned_missing_keys: set[str] = set()  # environment variables already reported unset by this process


class S2Error(RuntimeError):
    """An API error that retrying cannot fix (bad request, forbidden key, not found) or retries ran out."""

    def __init__(self, status: int | None, message: str):
        super().__init__(f"Semantic Scholar API: {status or 'no response'}: {message}")
        self.status = status
        self.message = message


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def record(self, retried: list[str]) -> None:
        """One API call: its first request and one retry per reason in `retried`."""
        self.requests += 1 + len(retried)
        self.retries += len(retried)
        for reason in retried:
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
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env)
        self.has_key = bool(key)
        if not key and api_key_env not in _warned_missing_keys:
            _warned_missing_keys.add(api_key_env)
            log.warning("$%s is not set: Semantic Scholar is queried without an API key (shared, lower rate limit)",
                        api_key_env)
        self.policy = retry_policy(max_retries, backoff_s, backoff_max_s, methods=("GET", "POST"))  # batch only reads
        self.session = retrying_session(self.policy, {"x-api-key": key} if key else None)
        self.min_interval = 1.0 / requests_per_s if requests_per_s > 0 else 0.0
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.stats = ClientStats()
        self._last_request = float("-inf")

    def _wait_for_slot(self) -> None:
        pause = self._last_request + self.min_interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        self._last_request = time.monotonic()

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> Any:
        """One API call with rate limiting and retries; returns the decoded JSON body."""
        retried: list[str] = []  # why each retry of this call was made
        try:
            return call_with_retries(self.policy, lambda so_far: self._answer(method, path, params, body, so_far),
                                     retried, f"{method} {path}")
        except Retryable as failure:
            raise S2Error(failure.status, f"{method} {path} failed after {len(retried) + 1} attempts "
                                          f"(last: {failure.reason}): {failure.detail}") from None
        finally:
            self.stats.record(retried)

    def _answer(self, method: str, path: str, params: dict | None, body: Any, retried: list[str]) -> Any:
        """The decoded JSON of one request (which the adapter may have retried, listing why in `retried`)."""
        self._wait_for_slot()
        response = read_answer(self.session, method, self.base_url + path, retried, params=params, json=body,
                               timeout=self.timeout)
        status = response.status_code
        if status in RETRY_STATUSES:  # the adapter's retries ran out: the API's advice (on 429) is in the body
            raise Retryable(f"http_{status}", _api_message(response), status, final=True)
        if status >= 400:
            raise S2Error(status, _api_message(response) + self._key_hint(status))
        try:
            return response.json()
        except ValueError:
            raise Retryable("malformed_json", body_start(response), status) from None

    def _key_hint(self, status: int) -> str:
        if status not in (401, 403):
            return ""
        state = "set: is the key valid?" if self.has_key else "not set: requests go without a key"
        return f" (the API key comes from ${self.api_key_env}, which is {state})"

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
