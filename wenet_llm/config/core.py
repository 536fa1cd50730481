"""Strict dataclass configuration: YAML files are instances of dataclass schemas.

The dataclass is the schema and holds every default. Loading is strict, unlike WeNet's
plain-dict configs: an unknown key, a wrong type or a malformed ``--override a.b=c`` raises
:class:`ConfigError` naming the file and key and listing the valid keys. The YAML itself is read
strictly too (:class:`StrictLoader`): a key repeated in one mapping is an error naming its lines,
and only ``true``/``false`` are booleans. A value that fails a schema's ``validate()`` is reported
with where it came from: the file, or the command-line option that set it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar, Union

import yaml

from wenet_llm.utils.fileio import atomic_open

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file, key, value or override is invalid."""


# ----------------------------------------------------------------------------- YAML


class DuplicateKeyError(yaml.YAMLError):
    """A key written twice in one YAML mapping (lines are 1-based)."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r} (first at line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


_BOOL_TAG = "tag:yaml.org,2002:bool"


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader with two YAML 1.2 rules that PyYAML (YAML 1.1) lacks.

    - A key repeated in one mapping raises :class:`DuplicateKeyError` (PyYAML keeps the last one,
      so a forgotten earlier setting silently loses). Keys merged in with ``<<`` may be overridden.
    - Only ``true``/``false`` (also ``True``, ``TRUE``, ...) are booleans. YAML 1.1's ``yes``, ``no``,
      ``on``, ``off``, ``y``, ``n`` are plain strings: a boolean field rejects them, and a string
      field keeps them as written (the language code ``no`` stays ``"no"``).
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.get(key)
                except TypeError:  # an unhashable key: PyYAML reports it below
                    continue
                line = key_node.start_mark.line + 1
                if seen is not None:
                    raise DuplicateKeyError(key, line, seen)
                first[key] = line
        return super().construct_mapping(node, deep=deep)


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text_or_stream) -> Any:
    """Parse YAML with :class:`StrictLoader`."""
    return yaml.load(text_or_stream, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)


# ----------------------------------------------------------------------------- schemas


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _convert(value: Any, tp: Any, where: str, origins: Mapping[str, str] | None = None, path: str = "") -> Any:
    """Check ``value`` (parsed YAML) against type ``tp``; return it converted (lists, dataclasses).

    ``path`` is the dotted key of ``value`` and ``origins`` maps dotted keys set on the command line
    to the option that set them (see :func:`load_config`)."""
    optional, inner = _is_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ConfigError(f"{where}: null is not allowed, expected {_type_name(tp)}")
    tp = inner
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return _build(tp, value, where, origins, path)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)}")
        return value
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = [_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        return {_convert(k, key_tp, f"{where}.<key>"): _convert(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r} (quote it in YAML)")
        return value
    raise ConfigError(f"{where}: unsupported schema type {_type_name(tp)}")


def _set_here(origins: Mapping[str, str] | None, path: str, message: str) -> list[str]:
    """The command-line options that set a field of the section at ``path`` (or the section itself);
    of those, the ones whose field the error ``message`` names, when it names any."""
    found = {}
    for key, origin in (origins or {}).items():
        parent = key.rpartition(".")[0]
        if parent == path or key == path or path.startswith(key + "."):
            found[key.rpartition(".")[2]] = origin
    named = [origin for field, origin in found.items() if re.search(rf"\b{re.escape(field)}\b", message)]
    return named or list(found.values())


def _build(cls: type[T], data: dict, where: str, origins: Mapping[str, str] | None = None, path: str = "") -> T:
    types_ = _field_types(cls)
    unknown = [k for k in data if k not in types_]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {sorted(types_)}"
        )
    kwargs = {k: _convert(v, types_[k], f"{where}.{k}", origins, f"{path}.{k}" if path else k)
              for k, v in data.items()}
    try:
        obj = cls(**kwargs)
    except TypeError as e:  # a required field without a default is missing
        raise ConfigError(f"{where}: {e}; valid keys: {sorted(types_)}") from None
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            cli = _set_here(origins, path, str(e))
            if cli:  # name the option first: the file may be fine
                source = where.replace("<defaults>", "the defaults", 1)
                raise ConfigError(f"{', '.join(cli)}: {e} (other values from {source})") from None
            raise ConfigError(f"{where}: {e}") from None
    return obj


def from_dict(cls: type[T], data: dict | None, source: str = "<dict>",
              origins: Mapping[str, str] | None = None) -> T:
    """Build dataclass ``cls`` from a plain dict, strictly. ``source`` names the origin in errors;
    ``origins`` maps dotted keys set on the command line to the option that set them."""
    return _build(cls, data or {}, source, origins)


def to_dict(cfg: Any) -> dict:
    """The config as plain YAML-able data (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def _schema_at(cls: type, dotted: str, source: str) -> Any:
    """The schema type at ``a.b.c``; errors list the valid keys of the level that failed."""
    tp: Any = cls
    walked = []
    for part in dotted.split("."):
        _, tp = _is_optional(tp)
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"{source}: '{'.'.join(walked)}' is a value, not a section; cannot set '{dotted}'")
        fields = _field_types(tp)
        if part not in fields:
            level = ".".join(walked) or "<top>"
            raise ConfigError(f"{source}: unknown key '{dotted}' (at {level}); valid keys: {sorted(fields)}")
        tp = fields[part]
        walked.append(part)
    return tp


def apply_override(cls: type, data: dict, override: str, origin: str | None = None) -> str:
    """Apply ``a.b=c`` to the raw dict ``data`` in place; ``c`` is parsed as YAML. Returns the key path.

    ``origin`` is how the value was given (e.g. ``--num-utts 5``), for errors; by default ``--override a.b=c``."""
    source = origin or f"--override {override!r}"
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"{source}: malformed override; expected key.path=value, e.g. seed=3")
    tp = _schema_at(cls, key, source)
    _, inner = _is_optional(tp)
    if inner is str:
        value: Any = raw  # a string field takes the text as written ("007" stays "007")
    else:
        try:
            value = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: value is not valid YAML: {e}") from None
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"{source}: '{part}' is not a mapping in the config")
        node = child
    node[parts[-1]] = value
    _convert(value, tp, source)  # fail here, naming the override, rather than later
    return key


Override = Union[str, tuple[str, str]]


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: Iterable[Override] = ()) -> T:
    """Load YAML ``path`` (or only defaults when None) into ``cls``, then apply overrides.

    An override is ``"a.b=c"`` or ``("a.b=c", origin)``, where ``origin`` is the command-line
    option that gave the value (``"--num-utts 5"``); errors about that value name it.
    """
    data: dict = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        if not Path(path).is_file():
            raise ConfigError(f"config file not found: {path}")
        with open(path, encoding="utf-8") as f:
            try:
                loaded = load_yaml(f)
            except DuplicateKeyError as e:
                raise ConfigError(f"{path}:{e.line}: duplicate key {e.key!r} (first at line {e.first_line}); "
                                  "write each key once per mapping") from None
            except yaml.YAMLError as e:
                raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
        data = loaded or {}
    origins: dict[str, str] = {}
    for ov in overrides:
        text, origin = (ov, None) if isinstance(ov, str) else ov
        origins[apply_override(cls, data, text, origin)] = origin or f"--override {text}"
    return from_dict(cls, data, source, origins)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (temporary file, then rename)."""
    with atomic_open(path) as f:
        yaml.safe_dump(to_dict(cfg), f, allow_unicode=True, sort_keys=False)
