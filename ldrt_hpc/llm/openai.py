"""The `openai` backend: POST {base_url}/chat/completions, one request per prompt, retried with backoff."""

from __future__ import annotations

import logging
import os
import random
import time

import requests

from ..config import LLMConfig
from . import Messages, Output, Sampling

log = logging.getLogger(__name__)


class OpenAIBackend:
    name = "openai"

    def __init__(self, cfg: LLMConfig):
        self.cfg = cfg
        self.session = requests.Session()
        key = os.environ.get(cfg.api_key_env)
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        self.retries = 0

    def _complete(self, messages: Messages, sampling: Sampling) -> Output:
        body = {"model": self.cfg.model, "messages": messages, "temperature": sampling.temperature,
                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens}
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        url = self.cfg.base_url.rstrip("/") + "/chat/completions"
        for attempt in range(self.cfg.max_retries + 1):
            reason = None
            try:
                response = self.session.post(url, json=body, timeout=(10, self.cfg.timeout_s))
            except (requests.Timeout, requests.ConnectionError) as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    reason = f"http_{response.status_code}"
                elif response.status_code >= 400:
                    raise RuntimeError(f"{url}: {response.status_code}: {response.text[:300]}")
                else:
                    try:
                        data = response.json()
                        choice = data["choices"][0]
                        usage = data.get("usage") or {}
                        return Output(choice["message"]["content"] or "", int(usage.get("prompt_tokens", 0)),
                                      int(usage.get("completion_tokens", 0)), choice.get("finish_reason") or "stop")
                    except (ValueError, KeyError, IndexError, TypeError):
                        reason = "malformed_response"
            if attempt == self.cfg.max_retries:
                raise RuntimeError(f"{url}: no answer after {attempt + 1} attempts (last: {reason})")
            self.retries += 1
            delay = min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0)
            log.warning("%s: %s; retry in %.1f s", url, reason, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def generate(self, prompts: list[Messages], sampling: Sampling) -> list[Output]:
        return [self._complete(messages, sampling) for messages in prompts]
