"""A small client for OpenAI-compatible chat-completions endpoints (vLLM, hosted models), standard library only.

Used by the contextual data builder for LLM hotword extraction and group summaries. Every response is
cached on disk under the SHA-256 of the request body (model, messages, temperature), so a rerun, or a run
interrupted half-way, sends only what it has not asked before. Failed tries (connection errors, timeouts,
HTTP 429 and 5xx, a reply that is not a chat completion) are retried with exponential back-off; other HTTP
errors (401, 404, ...) stop at once with what the server said.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from wenet_llm.config.context_data import LLMEndpointConfig
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

URL_ENV = ("WENET_LLM_CONTEXT_BASE_URL", "OPENAI_BASE_URL")
MODEL_ENV = ("WENET_LLM_CONTEXT_MODEL", "OPENAI_MODEL")
_OFFLINE_HINT = "or build offline: --override hotwords.extractor=statistical --override summary.source=extractive"


class EndpointError(RuntimeError):
    """The chat endpoint could not be reached or refused the request."""


@dataclass
class ClientStats:
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    cache_hits: int = 0

    def to_dict(self) -> dict:
        return {"requests": self.requests, "retries": self.retries, "cache_hits": self.cache_hits}


def _from_env(value: str, names: tuple[str, ...]) -> str:
    if value:
        return value
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return ""


class ChatClient:
    """``complete(messages) -> str``: the assistant text of one chat completion (cached, retried)."""

    def __init__(self, cfg: LLMEndpointConfig, cache_dir: str | os.PathLike,
                 sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self.base_url = _from_env(cfg.base_url, URL_ENV).rstrip("/")
        self.model = _from_env(cfg.model, MODEL_ENV)
        missing = [what for what, value, names in (("llm.base_url", self.base_url, URL_ENV),
                                                   ("llm.model", self.model, MODEL_ENV)) if not value]
        if missing:
            raise EndpointError(
                f"the LLM extractor needs {' and '.join(missing)}: set it in the config (e.g. --override "
                f"llm.base_url=http://localhost:8000/v1 --override llm.model=NAME) or in the environment "
                f"({', '.join(URL_ENV)} / {', '.join(MODEL_ENV)}), {_OFFLINE_HINT}")
        self.api_key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        self.url = self.base_url + "/chat/completions"
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.sleep = sleep
        self.stats = ClientStats()
        self._lock = threading.Lock()

    def _count(self, **inc: int) -> None:
        with self._lock:
            for k, v in inc.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def body(self, messages: list[dict]) -> dict:
        return {"model": self.model, "messages": messages, "temperature": self.cfg.temperature}

    def cache_path(self, body: dict) -> Path:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.json"

    def complete(self, messages: list[dict], use_cache: bool = True) -> str:
        body = self.body(messages)
        path = self.cache_path(body)
        if use_cache and path.is_file():
            try:
                text = json.loads(path.read_text(encoding="utf-8"))["content"]
                self._count(cache_hits=1)
                return text
            except (OSError, ValueError, KeyError, TypeError):
                logger.warning("unreadable cache entry %s; asking the endpoint again", path)
        text = self._post(body)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as f:
            json.dump({"request": body, "content": text}, f, ensure_ascii=False)
        return text

    def forget(self, messages: list[dict]) -> None:
        """Drop the cached reply of ``messages`` (e.g. one that could not be parsed)."""
        self.cache_path(self.body(messages)).unlink(missing_ok=True)

    def _post(self, body: dict) -> str:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: Optional[str] = None
        tries = self.cfg.max_retries + 1
        for attempt in range(tries):
            if attempt:
                self._count(retries=1)
                self.sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
            self._count(requests=1)
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    reply = json.loads(resp.read().decode("utf-8"))
                return _content(reply)
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", errors="replace")[:300]
                if e.code == 429 or e.code >= 500:
                    last = f"HTTP {e.code} {detail}"
                    continue
                hint = (f"check the API key in ${self.cfg.api_key_env}" if e.code in (401, 403)
                        else "check llm.base_url and llm.model")
                raise EndpointError(f"LLM endpoint {self.url} refused the request: HTTP {e.code} {detail}; "
                                    f"{hint}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = str(getattr(e, "reason", e))
            except (ValueError, KeyError, IndexError, TypeError) as e:
                last = f"not a chat completion ({e})"
        raise EndpointError(f"LLM endpoint {self.url} unreachable after {tries} tries (last error: {last}); "
                            f"check that the server runs and llm.base_url (or ${URL_ENV[0]}) points to it, "
                            f"{_OFFLINE_HINT}")


def _content(reply: object) -> str:
    """The assistant text of a chat-completions reply."""
    text = reply["choices"][0]["message"]["content"]  # type: ignore[index]
    if not isinstance(text, str):
        raise TypeError(f"message content is {type(text).__name__}")
    return text


def parse_json_reply(text: str) -> object:
    """The JSON value in a model's reply, which may be wrapped in a ```json fence or in prose."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for open_, close in (("{", "}"), ("[", "]")):
        a, b = text.find(open_), text.rfind(close)
        if 0 <= a < b:
            try:
                return json.loads(text[a:b + 1])
            except json.JSONDecodeError:
                continue
    raise ValueError(f"no JSON in the reply: {text[:120]!r}")
