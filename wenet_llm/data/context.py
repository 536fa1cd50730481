"""Per-utterance context (hotword lists, paragraph summaries) as JSON lines keyed by utterance id.

The one file format for context at inference and in scoring: the contextual data builder and the decoder
write it, the decoder and the scorer read it. UTF-8, one JSON object per line, blank lines skipped::

    {"key": "utt1", "hotwords": ["Zorblax", "王小明"], "summary": "A meeting about the Zorblax launch."}
    {"key": "utt2", "hotwords": []}

- ``key`` (required): the utterance id, a string without whitespace, unique in the file;
- ``hotwords`` (optional, default ``[]``): a list of strings, in the order given (a decoder may rely on it);
- ``summary`` (optional, default none): a string;
- any other field is kept in ``Context.extra`` and written back unchanged.

A WeNet ``data.list`` line carries the same fields at its top level (``{"key": .., "wav": .., "txt": ..,
"hotwords": [..], "summary": ".."}``, as the dataset reads them and the contextual data builder writes them)
or nested in a ``context`` object; either is read the same way, so such a list can be given wherever a
context file is expected. An utterance without a line has no context; an empty hotword list means no list.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional

from wenet_llm.utils.fileio import atomic_open

_FIELDS = ("key", "hotwords", "summary")


@dataclass
class Context:
    key: str
    hotwords: list[str] = field(default_factory=list)
    summary: Optional[str] = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out: dict = {"key": self.key, "hotwords": list(self.hotwords)}
        if self.summary is not None:
            out["summary"] = self.summary
        out.update(self.extra)
        return out


def parse_context(obj: object, where: str) -> Context:
    """One line's JSON object -> Context; ``where`` (``file:line``) prefixes every error."""
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    key = obj.get("key")
    if not isinstance(key, str) or not key or any(c.isspace() for c in key):
        raise ValueError(f"{where}: 'key' must be a non-empty string without whitespace, got {key!r}")
    body = obj
    if "context" in obj:  # a data.list line: the context fields are nested
        body = obj["context"]
        if not isinstance(body, dict):
            raise ValueError(f"{where}: 'context' must be a JSON object with hotwords and/or summary, got {body!r}")
    hotwords = body.get("hotwords", [])
    if hotwords is None:
        hotwords = []
    if not isinstance(hotwords, list) or not all(isinstance(w, str) for w in hotwords):
        raise ValueError(f"{where}: 'hotwords' must be a list of strings, got {hotwords!r}")
    summary = body.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise ValueError(f"{where}: 'summary' must be a string, got {summary!r}")
    extra = {k: v for k, v in obj.items() if k not in _FIELDS}
    if body is not obj:
        extra.pop("context")
        extra.update((k, v) for k, v in body.items() if k not in _FIELDS)
    return Context(key, list(hotwords), summary, extra)


def read_context(path: str | os.PathLike) -> dict[str, Context]:
    """key -> Context for every line of a context file (or a data.list with ``context`` fields)."""
    out: dict[str, Context] = {}
    first: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: not valid UTF-8 (byte {e.start}); convert the file to UTF-8") from None
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not a JSON object ({e.msg}): {line[:80]!r}; expected e.g. "
                                 '{"key": "utt1", "hotwords": ["Zorblax"]}') from None
            ctx = parse_context(obj, where)
            if ctx.key in out:
                raise ValueError(f"{where}: duplicate key {ctx.key!r} (first at line {first[ctx.key]})")
            out[ctx.key] = ctx
            first[ctx.key] = lineno
    return out


def write_context(contexts: Iterable[Context], path: str | os.PathLike) -> int:
    """Write context lines (atomically, in the given order); returns the number of lines."""
    n = 0
    seen: set[str] = set()
    with atomic_open(path) as f:
        for ctx in contexts:
            if ctx.key in seen:
                raise ValueError(f"duplicate context key {ctx.key!r} while writing {path}")
            seen.add(ctx.key)
            parse_context(ctx.to_dict(), f"context {ctx.key!r}")  # the reader must accept what we write
            f.write(json.dumps(ctx.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def read_term_list(path: str | os.PathLike) -> list[str]:
    """One term per line (a hotword list, or the terms seen in training); blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        return [t for t in (line.strip() for line in f) if t]
