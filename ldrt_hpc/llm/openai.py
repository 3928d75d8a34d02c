"""The `openai` backend: POST {base_url}/chat/completions, one request per prompt, retried with the package's one
policy (`ldrt_hpc.http`): 429, 5xx, timeouts and resets by urllib3 (honouring `Retry-After`), a cut body or a
malformed answer by `_complete`, on the same budget and backoff schedule."""

from __future__ import annotations

import os

from ..config import LLMConfig
from ..http import RETRY_STATUSES, Retryable, body_start, call_with_retries, read_answer, retry_policy, retrying_session
from . import Messages, Output, Sampling


class OpenAIBackend:
    name = "openai"

    def __init__(self, cfg: LLMConfig):
        self.cfg = cfg
        key = os.environ.get(cfg.api_key_env)
        # a chat completion has no side effect worth guarding: sending it twice costs tokens, not correctness
        self.policy = retry_policy(cfg.max_retries, cfg.backoff_s, cfg.backoff_max_s, methods=("POST",))
        self.session = retrying_session(self.policy, {"Authorization": f"Bearer {key}"} if key else None)
        self.retries = 0

    def _complete(self, messages: Messages, sampling: Sampling) -> Output:
        body = {"model": self.cfg.model, "messages": messages, "temperature": sampling.temperature,
                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        url = self.cfg.base_url.rstrip("/") + "/chat/completions"
        retried: list[str] = []  # why each retry of this prompt was made
        try:
            return call_with_retries(self.policy, lambda so_far: self._answer(url, body, so_far), retried, url)
        except Retryable as failure:
            raise RuntimeError(f"{url}: no answer after {len(retried) + 1} attempts (last: {failure.reason}): "
                               f"{failure.detail}") from None
        finally:
            self.retries += len(retried)

    def _answer(self, url: str, body: dict, retried: list[str]) -> Output:
        """The parsed answer of one request (which the adapter may have retried, listing why in `retried`)."""
        response = read_answer(self.session, "POST", url, retried, json=body, timeout=(10, self.cfg.timeout_s))
        if response.status_code in RETRY_STATUSES:  # the adapter's retries ran out
            raise Retryable(f"http_{response.status_code}", response.text[:300], response.status_code, final=True)
        if response.status_code >= 400:
            raise RuntimeError(f"{url}: {response.status_code}: {response.text[:300]}")
        try:
            data = response.json()
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return Output(choice["message"]["content"] or "", int(usage.get("prompt_tokens", 0)),
                          int(usage.get("completion_tokens", 0)), choice.get("finish_reason") or "stop")
        except (ValueError, KeyError, IndexError, TypeError):
            raise Retryable("malformed_response", body_start(response), response.status_code) from None

    def generate(self, prompts: list[Messages], sampling: Sampling) -> list[Output]:
        return [self._complete(messages, sampling) for messages in prompts]
