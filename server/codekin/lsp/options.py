"""Initialization options of the language server: nested, fully defaulted, camelCase on the wire.

`parse_options(raw)` never fails: each invalid value is reported in the returned problem
list (the server shows them with window/showMessage) and its default is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codekin.request_fields import limit_problem, min_similarity_problem, mode_problem

MAX_LIMIT = 1000
# The cosine similarity a chunk needs to be counted by a code lens. With the default model the
# twins that Find Similar lists first are often under 0.8: on examples/, compute_backoff/1's
# first two (kin_util:backoff_ms/3 0.73, StockSyncWorker.backoff_delay/1 0.79) were not counted
# at 0.8 and its lens read "no similar code"; at 0.7 the first result of 92% of the lenses is
# counted (63% at 0.8), with a median of 9 counted. The editors' settings default to it
# (editors/vscode/package.json and src/settings.ts, editors/nvim/lua/codekin/config.lua and
# doc/codekin.txt, editors/README.md; tests/test_lens_default.py keeps them equal).
LENS_MIN_SIMILARITY = 0.7


@dataclass
class CodeLensOptions:
    enabled: bool = True
    min_similarity: float = LENS_MIN_SIMILARITY


@dataclass
class SearchOptions:
    """What the client sent; None leaves the setting to the configuration (defaults < user
    < repository < these)."""

    limit: int | None = None
    min_similarity: float | None = None
    mode: str | None = None


@dataclass
class ServerOptions:
    code_lens: CodeLensOptions = field(default_factory=CodeLensOptions)
    search: SearchOptions = field(default_factory=SearchOptions)


def _similarity(value: Any) -> str | None:
    return min_similarity_problem(value)


def _limit(value: Any) -> str | None:
    return limit_problem(value, MAX_LIMIT)


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _mode(value: Any) -> str | None:
    return mode_problem(value)


# wire name -> (attribute, validator) for each section
_FIELDS = {
    "codeLens": ("code_lens", {"enabled": ("enabled", _flag), "minSimilarity": ("min_similarity", _similarity)}),
    "search": ("search", {"limit": ("limit", _limit), "minSimilarity": ("min_similarity", _similarity),
                          "mode": ("mode", _mode)}),
}


def parse_options(raw: Any) -> tuple[ServerOptions, list[str]]:
    """Options from `initializationOptions`, and what was wrong with them (defaults used)."""
    options = ServerOptions()
    if raw is None:
        return options, []
    if not isinstance(raw, dict):
        return options, [f"initializationOptions must be an object, got {type(raw).__name__}"]
    problems: list[str] = []
    for key, section_raw in raw.items():
        if key not in _FIELDS:
            problems.append(f"unknown option {key!r} (known: {', '.join(_FIELDS)})")
            continue
        attribute, fields = _FIELDS[key]
        section = getattr(options, attribute)
        if not isinstance(section_raw, dict):
            problems.append(f"{key} must be an object")
            continue
        for name, value in section_raw.items():
            if name not in fields:
                problems.append(f"unknown option {key}.{name} (known: {', '.join(fields)})")
                continue
            field_name, check = fields[name]
            error = check(value)
            if error:
                kept = getattr(section, field_name)
                using = "the configured value" if kept is None else repr(kept)
                problems.append(f"{key}.{name} {error}, got {value!r}; using {using}")
            else:
                setattr(section, field_name, float(value) if field_name == "min_similarity" else value)
    return options, problems
