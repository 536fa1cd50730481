"""The argument parser of every ``python -m wenet_llm.bin.X`` entry point, with the toolkit's conventions.

- The usage line shows how the tool is called: ``python -m wenet_llm.bin.validate``.
- Options are declared with dashes (``--num-utts``) and also accepted with underscores
  (``--num_utts``): recipes and WeNet's own tools (``average_model.py --dst_model``) use underscores,
  so either habit works everywhere. ``--help`` shows the dash spelling.
- ``--help`` shows every option's help text and default; an option without a help text is a
  programming error, raised when the parser is built.
- Abbreviations are not accepted: ``--num`` never silently means ``--num-utts``.

Only the standard library is imported here, so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence


def module_name(name: str) -> str:
    """The dotted name of a module from its ``__name__``; ``__main__`` under ``python -m`` is resolved."""
    if name == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is not None and spec.name:
            return spec.name
    return name


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and each option's default after its help text."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default is argparse.SUPPRESS:
            return text
        if not action.option_strings or action.nargs == 0:  # positionals and on/off switches
            return text
        if action.required:
            return text + " (required)"
        return text + " (default: " + _show(action.default).replace("%", "%%") + ")"


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for an entry point; see the module docstring for what differs."""

    def __init__(self, module: str, description: Optional[str] = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(prog=f"python -m {module_name(module)}", description=description, **kwargs)

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        for name in names:
            if name.startswith("--") and "_" in name:
                raise ValueError(f"declare option {name} with dashes ({name.replace('_', '-')}); "
                                 "the underscore spelling is accepted automatically")
        if not kwargs.get("help") and names != ("-h", "--help"):
            raise ValueError(f"option {names[0]} needs a help text")
        return super().add_argument(*names, **kwargs)

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(normalize_flags(args), namespace)


def normalize_flags(args: Sequence[str]) -> list[str]:
    """``--num_utts 5`` -> ``--num-utts 5`` and ``--num_utts=5`` -> ``--num-utts=5``; values and
    everything after a bare ``--`` are left as they are."""
    out: list[str] = []
    rest = False
    for arg in args:
        if rest or not arg.startswith("--") or arg == "--":
            rest = rest or arg == "--"
            out.append(arg)
            continue
        name, sep, value = arg.partition("=")
        out.append(name.replace("_", "-") + sep + value)
    return out
