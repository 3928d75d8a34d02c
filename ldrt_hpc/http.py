"""One HTTP retry policy for every client of the package: Semantic Scholar, the PDF downloads, OpenAI endpoints.

urllib3's `Retry`, mounted on a session's adapters, retries what it sees before a body is read: the statuses in
RETRY_STATUSES, refused or reset connections, timeouts while waiting for the headers. It honours `Retry-After`
and otherwise waits an exponential backoff with jitter, capped. When its retries run out on a status it returns
that last response instead of raising, so the caller can show the server's own message.

What urllib3 cannot judge (a body cut or stalled mid-way, malformed JSON in a 200) the callers retry in a short
loop of their own, waiting `backoff_delay`: urllib3's own computation, so one schedule holds. That loop counts the
adapter's retries and its own against the same budget and stops when they reach it (the adapter starts each
request with the whole budget, so a request after such a retry can still take the total past it, never to more
than twice). Retries are counted by reason ("http_429", "timeout", "connection", "truncated", ...).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import RequestHistory, Retry

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers worth asking again: rate limited, or the server (or a gateway in front of it) failed."""

BODY_ERRORS = (requests.ConnectionError, ChunkedEncodingError, ContentDecodingError)
"""What requests raises while a body is read (cut, reset or stalled): the adapter has already returned by then."""


class Retryable(Exception):
    """One request failed: `final` when the adapter's retries already ran out on it, else the failure came after the
    adapter was done (body cut or stalled, malformed content) and another request may fix it."""

    def __init__(self, reason: str, detail: str, status: int | None = None, final: bool = False):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.status, self.final = reason, detail, status, final


def retry_policy(retries: int, backoff_s: float, backoff_max_s: float, methods: Iterable[str] = ("GET",)) -> Retry:
    """At most `retries` retries of a request sent with one of `methods` (those safe to send twice). urllib3's
    schedule: the first retry at once, the second after `backoff_s`, each next one after twice as long, plus up to
    `backoff_s` of jitter, capped at `backoff_max_s`; a `Retry-After` header from the server wins."""
    return Retry(total=retries, backoff_factor=backoff_s / 2, backoff_jitter=backoff_s, backoff_max=backoff_max_s,
                 status_forcelist=RETRY_STATUSES, allowed_methods=frozenset(methods),
                 respect_retry_after_header=True, raise_on_status=False)


def retrying_session(policy: Retry, headers: Mapping[str, str] | None = None) -> requests.Session:
    """A session whose http:// and https:// adapters retry with `policy`."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(headers or {})
    return session


def backoff_delay(policy: Retry, retry_number: int) -> float:
    """Seconds to wait before retry `retry_number` (1: the first) of one request: urllib3's own computation, so a
    caller's loop waits what the adapter would have waited."""
    failures = (RequestHistory(None, None, None, None, None),) * retry_number
    return policy.new(history=failures).get_backoff_time()


def call_with_retries(policy: Retry, call: Callable[[list[str]], T], retried: list[str], what: str) -> T:
    """`call(retried)` until it returns. A Retryable failure the adapter could not see is retried while the budget
    lasts: the adapter's retries and this loop's, all listed in `retried` (which `call` extends). The last failure
    is re-raised."""
    while True:
        try:
            return call(retried)
        except Retryable as failure:
            if failure.final or len(retried) >= policy.total:
                raise
            retried.append(failure.reason)
            delay = backoff_delay(policy, len(retried))
            log.warning("%s: %s; retry %d/%d in %.1f s", what, failure.reason, len(retried), policy.total, delay)
            time.sleep(delay)


def failure_reason(error: BaseException) -> str:
    """'truncated', 'timeout' or 'connection': an exception of requests, or a urllib3 error the adapter retried."""
    if isinstance(error, (ChunkedEncodingError, ContentDecodingError)):
        return "truncated"
    cause = error.args[0] if isinstance(error, requests.RequestException) and error.args else error
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    timed_out = isinstance(error, requests.Timeout) or isinstance(cause, (ReadTimeoutError, ConnectTimeoutError))
    # urllib3 derives a refused connection (NewConnectionError) from ConnectTimeoutError
    return "timeout" if timed_out and not isinstance(cause, NewConnectionError) else "connection"


def adapter_gave_up(error: requests.RequestException) -> bool:
    """Whether the adapter already spent its retries on this error (retrying it again would double the budget)."""
    return bool(error.args) and isinstance(error.args[0], MaxRetryError)


def adapter_retries(response: requests.Response) -> list[str]:
    """Why the adapter retried before this response came, one reason per retry, redirect hops included."""
    reasons = []
    for hop in (*response.history, response):
        retry = getattr(hop.raw, "retries", None)  # urllib3 keeps the Retry, with its history, on the response
        for entry in retry.history if retry else ():
            reasons.append(f"http_{entry.status}" if entry.status else failure_reason(entry.error))
    return reasons


def read_answer(session: requests.Session, method: str, url: str, retried: list[str], **kwargs) -> requests.Response:
    """Send one request through the session's adapter and read the whole body. Appends to `retried` why the adapter
    retried; raises Retryable when no whole answer came."""
    try:
        response = session.request(method, url, stream=True, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as exc:
        reason, gave_up = failure_reason(exc), adapter_gave_up(exc)
        if gave_up:  # urllib3 raises without its history: count the adapter's whole budget under the last reason
            retried.extend([reason] * session.get_adapter(url).max_retries.total)
        raise Retryable(reason, str(exc)[:300], final=gave_up) from exc
    retried.extend(adapter_retries(response))
    with response:
        try:
            _ = response.content  # read the body here, where a cut or a stall can be caught and retried
        except BODY_ERRORS as exc:
            raise Retryable(failure_reason(exc), f"{describe(response)}, broke off: {exc}"[:400],
                            response.status_code) from exc
    return response


def describe(response: requests.Response) -> str:
    """The status, content type and declared length of an answer, for error messages."""
    length = response.headers.get("Content-Length")
    return (f"HTTP {response.status_code} {response.headers.get('Content-Type') or 'without a content type'}"
            + (f", Content-Length {length}" if length else ""))


def body_start(response: requests.Response, limit: int = 120) -> str:
    """How an answer that could not be used begins: its description and its first bytes."""
    return f"{describe(response)}, body starts {response.content[:limit]!r}"
