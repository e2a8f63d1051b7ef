"""A tool call's arguments, checked against the tool's input schema (tools.py) and returned as
typed values. Anything unknown, missing or of the wrong type raises InvalidArguments, which the
server answers with an MCP error (-32602, invalid params) saying what to change."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from codekin.mcp.tools import DEFINITION, MAX_LIMIT, RETRAIN, SEARCH, SIMILAR, STATUS, TOOLS
from codekin.request_fields import field_problem


class InvalidArguments(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


@dataclass(frozen=True)
class SearchArgs:
    query: str
    limit: int | None = None
    mode: str | None = None
    lang: str | None = None
    path: str | None = None
    files: bool = False
    tests: bool = False
    min_similarity: float | None = None


@dataclass(frozen=True)
class SimilarArgs:
    path: str | None = None
    line: int | None = None
    end_line: int | None = None
    code: str | None = None
    language: str | None = None
    limit: int | None = None
    mode: str | None = None
    min_similarity: float | None = None


@dataclass(frozen=True)
class DefinitionArgs:
    symbol: str
    limit: int | None = None
    lang: str | None = None
    path: str | None = None
    tests: bool = False


@dataclass(frozen=True)
class StatusArgs:
    pass


@dataclass(frozen=True)
class RetrainArgs:
    epochs: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None


Args = SearchArgs | SimilarArgs | DefinitionArgs | StatusArgs | RetrainArgs
_TYPES: dict[str, type[Args]] = {SEARCH: SearchArgs, SIMILAR: SimilarArgs, DEFINITION: DefinitionArgs,
                                 STATUS: StatusArgs, RETRAIN: RetrainArgs}


@cache
def _validator(tool: str) -> Any:
    from jsonschema.validators import validator_for

    schema = TOOLS[tool]["inputSchema"]
    return validator_for(schema)(schema)


def parse(tool: str, arguments: Any) -> Args:
    """The typed arguments of a call of `tool`; InvalidArguments when they do not fit its schema."""
    if tool not in TOOLS:
        raise InvalidArguments(f"unknown tool {tool!r}", f"the tools are {', '.join(TOOLS)}")
    arguments = {} if arguments is None else arguments
    if not isinstance(arguments, dict):
        raise InvalidArguments(f"{tool}: arguments must be an object, got {type(arguments).__name__}")
    errors = sorted(_validator(tool).iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        problems = "; ".join(_describe(e) for e in errors[:5])
        known = ", ".join(TOOLS[tool]["inputSchema"]["properties"]) or "none"
        raise InvalidArguments(f"{tool}: {problems}", f"arguments: {known}; see the tool's input schema")
    values = {k: _number(v) for k, v in arguments.items()}
    args = _TYPES[tool](**values)
    _check(tool, args)
    return args


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown argument(s)")
    if not where:
        return error.message
    common = field_problem(where, error.instance, MAX_LIMIT)  # the language server's words for it too
    return f"{where}: {error.message}" + (f" ({where} {common})" if common else "")


def _number(value: Any) -> Any:
    """2.0 passes an integer schema; hand it on as 2."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def _check(tool: str, args: Args) -> None:
    """What the schemas cannot say in their portable subset."""
    if isinstance(args, SearchArgs) and not args.query.strip():
        raise InvalidArguments("search: query is blank", 'give words, a symbol or code, e.g. "retry with backoff"')
    if isinstance(args, DefinitionArgs) and not args.symbol.strip():
        raise InvalidArguments("definition: symbol is blank", "give a name, e.g. Shop.Cart or put_header/3")
    if isinstance(args, SimilarArgs):
        if (args.path is None) != (args.line is None) and not (args.path is not None and args.code is not None):
            raise InvalidArguments("similar: path and line go together",
                                   "give path and line (and end_line for a span), or code")
        if args.path is None and args.code is None:
            raise InvalidArguments("similar: nothing to compare", "give path and line (and end_line), or code")
        if args.end_line is not None and (args.line is None or args.end_line < args.line):
            raise InvalidArguments(f"similar: end_line {args.end_line} needs a line at or before it",
                                   "give line <= end_line, both 1-based")
        if args.code is not None and not args.code.strip():
            raise InvalidArguments("similar: code is blank", "give the code to compare")
