"""Typed, validated arguments of the codekin.* commands (plain Python: no pygls here).

Every command takes exactly one argument object (status and retrain also accept none).
Anything missing, unknown or of the wrong type raises `ArgumentError`, which the server
turns into a JSON-RPC InvalidParams response.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import unquote, urlparse

from codekin.errors import ArgumentError
from codekin.lsp.options import MAX_LIMIT
from codekin.request_fields import field_problem


@dataclass(frozen=True)
class LineSpan:
    """1-based inclusive lines; `end` is None for a bare cursor (the enclosing chunk)."""

    start: int
    end: int | None


@dataclass(frozen=True)
class FindSimilarArgs:
    uri: str
    path: Path  # absolute, inside the workspace
    span: LineSpan
    text: str | None = None
    limit: int | None = None
    min_similarity: float | None = None


@dataclass(frozen=True)
class SearchArgs:
    query: str
    limit: int | None = None
    min_similarity: float | None = None
    mode: str | None = None
    files: bool = False  # rank files instead of chunks
    tests: bool = False  # rank tests like the code


@dataclass(frozen=True)
class RetrainArgs:
    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None


def single_object(command: str, args: tuple[Any, ...], optional: bool = False) -> dict[str, Any]:
    """The one argument object of a workspace/executeCommand call."""
    if not args and optional:
        return {}
    if len(args) != 1 or not isinstance(args[0], dict):
        shape = ", ".join(type(a).__name__ for a in args) or "nothing"
        raise ArgumentError(f"{command} takes exactly one argument object, got {shape}",
                            f"call it with arguments: [{{...}}] (see {command} in the LSP contract)")
    return args[0]


def _reject_unknown(command: str, obj: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(obj) - set(known))
    if unknown:
        raise ArgumentError(f"{command}: unknown field(s) {', '.join(unknown)}",
                            f"known fields: {', '.join(known)}")


def _int(command: str, obj: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ArgumentError(f"{command}: {name} must be an integer between {low} and {high}, got {value!r}")
    return value


def _float(command: str, obj: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ArgumentError(f"{command}: {name} must be a number between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _common(command: str, obj: dict[str, Any], name: str) -> Any:
    """A field both servers take (request_fields.py): checked by the one rule, with its message."""
    value = obj.get(name)
    problem = field_problem(name, value, MAX_LIMIT) if value is not None else None
    if problem is not None:
        raise ArgumentError(f"{command}: {name} {problem}, got {value!r}")
    return value


def _similarity(command: str, obj: dict[str, Any]) -> float | None:
    value = _common(command, obj, "minSimilarity")
    return None if value is None else float(value)


def _bool(command: str, obj: dict[str, Any], name: str) -> bool:
    value = obj.get(name, False)
    if not isinstance(value, bool):
        raise ArgumentError(f"{command}: {name} must be true or false, got {value!r}")
    return value


@overload
def _str(command: str, obj: dict[str, Any], name: str, required: Literal[True]) -> str: ...


@overload
def _str(command: str, obj: dict[str, Any], name: str, required: Literal[False]) -> str | None: ...


def _str(command: str, obj: dict[str, Any], name: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ArgumentError(f"{command}: {name} must be a string, got {value!r}"
                            if value is not None else f"{command}: missing required field {name!r}")
    return value


def parse_lens_data(data: Any) -> tuple[str, int, int, dict[str, Any]]:
    """The uri, 1-based lines and full range that `textDocument/codeLens` put in a lens's data."""
    keys = ("uri", "startLine", "endLine", "range")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise ArgumentError("codeLens/resolve: this lens was not made by codekin (its data lacks uri/lines)",
                            "resolve only lenses returned by textDocument/codeLens")
    start, end = data["startLine"], data["endLine"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in (start, end)):
        raise ArgumentError(f"codeLens/resolve: bad lines {start!r}-{end!r} in the lens data")
    return str(data["uri"]), start, end, data["range"]


def path_of_uri(uri: str, root: Path, what: str = "uri") -> Path:
    """The absolute path of a file:// URI, which must lie inside the workspace root."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise ArgumentError(f"{what} {uri!r} is not a file:// URI", "codekin only indexes files on disk")
    path = Path(unquote(parsed.path)).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ArgumentError(f"{uri} is outside the workspace {root}",
                            "open the repository that holds it as the workspace folder")
    return path


def _position(command: str, value: Any, name: str) -> tuple[int, int]:
    if not isinstance(value, dict):
        raise ArgumentError(f"{command}: {name} must be a position object {{line, character}}, got {value!r}")
    numbers: list[int] = []
    for part in ("line", "character"):
        number = value.get(part)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ArgumentError(f"{command}: {name}.{part} must be an integer >= 0, got {number!r}")
        numbers.append(number)
    return numbers[0], numbers[1]


def span_of_range(command: str, value: Any) -> LineSpan:
    """LSP range (0-based, end exclusive) -> 1-based lines; an empty or one-line range is a cursor."""
    if not isinstance(value, dict):
        raise ArgumentError(f"{command}: range must be an object {{start, end}}, got {value!r}")
    start = _position(command, value.get("start"), "range.start")
    end = _position(command, value.get("end"), "range.end")
    if end < start:
        raise ArgumentError(f"{command}: range ends before it starts ({start} > {end})")
    if end[0] == start[0]:
        return LineSpan(start[0] + 1, None)
    last = end[0] if end[1] == 0 else end[0] + 1  # an end at column 0 excludes that line
    return LineSpan(start[0] + 1, last)


def parse_find_similar(args: tuple[Any, ...], root: Path) -> FindSimilarArgs:
    command = "codekin.findSimilar"
    obj = single_object(command, args)
    _reject_unknown(command, obj, ("uri", "range", "text", "limit", "minSimilarity"))
    uri = _str(command, obj, "uri", required=True)
    if "range" not in obj:
        raise ArgumentError(f"{command}: missing required field 'range'",
                            "give the LSP range of the code: {start: {line, character}, end: {...}}")
    span = span_of_range(command, obj["range"])
    text = _str(command, obj, "text", required=False)
    return FindSimilarArgs(uri, path_of_uri(uri, root), span, text if text and text.strip() else None,
                           _common(command, obj, "limit"), _similarity(command, obj))


def parse_search(args: tuple[Any, ...]) -> SearchArgs:
    command = "codekin.search"
    obj = single_object(command, args)
    _reject_unknown(command, obj, ("query", "limit", "minSimilarity", "mode", "files", "tests"))
    query = _str(command, obj, "query", required=True)
    if not query.strip():
        raise ArgumentError(f"{command}: query is empty", 'give some text, e.g. "retry with backoff"')
    return SearchArgs(query, _common(command, obj, "limit"), _similarity(command, obj), _common(command, obj, "mode"),
                      _bool(command, obj, "files"), _bool(command, obj, "tests"))


def parse_status(args: tuple[Any, ...]) -> None:
    obj = single_object("codekin.status", args, optional=True)
    _reject_unknown("codekin.status", obj, ())


def parse_index(args: tuple[Any, ...]) -> None:
    obj = single_object("codekin.index", args, optional=True)
    _reject_unknown("codekin.index", obj, ())


def parse_retrain(args: tuple[Any, ...]) -> RetrainArgs:
    command = "codekin.retrain"
    obj = single_object(command, args, optional=True)
    _reject_unknown(command, obj, ("epochs", "learningRate", "batchSize"))
    return RetrainArgs(_int(command, obj, "epochs", 1, 1000), _float(command, obj, "learningRate", 1e-9, 1.0),
                       _int(command, obj, "batchSize", 1, 65536))
