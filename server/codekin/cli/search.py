"""`codekin search` and `codekin similar`: queries through the Engine."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from codekin.cli.common import config_for, emit, repo_root, shown_path
from codekin.errors import WorkspaceError

if TYPE_CHECKING:  # imported lazily: LanceDB costs seconds, and `codekin serve` must start fast
    from codekin.config import Config
    from codekin.engine import Engine
    from codekin.index.hits import Hit


def _engine(args: argparse.Namespace, start: Path) -> Engine:
    from codekin.engine import Engine

    root = repo_root(args.repo, start)
    return Engine(root, config_for(root, args))


_SCORE_MEANING = {"hybrid": "scores are the ranking score: dense + lexical fusion and the ranking stack; "
                            "--json adds each chunk's cosine",
                  "dense": "scores are the ranking score: cosine scaled to [0, 1] with the path priors; "
                           "--json adds each chunk's cosine",
                  "lexical": "scores are the ranking score: BM25 relative to the best match with the ranking stack"}


def _score_note(args: argparse.Namespace, config: Config) -> str:
    return _SCORE_MEANING.get(args.mode or config.search.mode, "")


def _format_hits(hits: list[Hit], root: Path) -> str:
    if not hits:
        return "No results. Try --mode lexical, a lower --min-similarity, or `codekin index` if files changed."
    lines = []
    for rank, hit in enumerate(hits, 1):
        lines.append(f"{rank:>2}. {hit.shown_score:.3f}  {shown_path(root, hit.path)}:{hit.start_line}-"
                     f"{hit.end_line}  {hit.symbol}")
        snippet = [s.strip() for s in hit.text.split("\n") if s.strip() and not s.strip().startswith(("@doc", '"""'))]
        for text in snippet[:2]:
            lines.append(f"      {text[:100]}")
    return "\n".join(lines)


def _format_files(files, root: Path) -> str:
    if not files:
        return "No files. Try other words, or `codekin index` if files changed."
    return "\n".join(f"{rank:>2}. {f.score:.3f}  {shown_path(root, f.path)}  (best: {f.symbol}, lines {f.start_line}-{f.end_line})"
                     for rank, f in enumerate(files, 1))


def cmd_search(args: argparse.Namespace) -> int:
    root = repo_root(args.repo, Path.cwd())
    config = config_for(root, args)
    answer = _ask_server(root, config, args)  # a running `codekin serve` has the model loaded
    if answer is not None:
        _print_search(args, root, config, answer, answer["seconds"])
        return 0
    from codekin.ahead import embed_ahead

    ahead = embed_ahead(root, config, args.query, args.mode)  # compiles while the search code imports
    from codekin.engine import Engine

    engine = args.engine = Engine(root, config, ahead=ahead)  # on args: lives until a quick exit (main.main)
    started = time.perf_counter()
    if args.files:
        files = engine.search_files(args.query, args.limit, args.mode, args.lang, args.path, tests=args.tests)
        _print_search(args, root, config, {"files": files}, time.perf_counter() - started)
        return 0
    hits = engine.search(args.query, args.limit, args.min_similarity, args.mode, args.lang, args.path,
                         tests=args.tests)
    elapsed = time.perf_counter() - started
    _print_search(args, root, config, {"hits": hits, "undefined": engine.undefined_symbol(args.query),
                                       "coverage": engine.dense_coverage()}, elapsed)
    return 0


def _ask_server(root: Path, config: Config, args: argparse.Namespace) -> dict | None:
    """The running language server's answer, with its hits as objects; None: search here."""
    from codekin.state import SERVE_SOCKET, state_path

    if not state_path(root, SERVE_SOCKET).exists():  # no server: skip the socket code's imports
        return None
    from codekin import query_socket

    request = query_socket.search_request(config, args.query, limit=args.limit, min_similarity=args.min_similarity,
                                          mode=args.mode, language=args.lang, path_glob=args.path, tests=args.tests,
                                          files=args.files)
    answer = query_socket.ask(root, request)
    if answer is None:
        return None
    try:
        if args.files:
            return {"files": query_socket.file_hits_of(answer), "seconds": float(answer["seconds"])}
        return {"hits": query_socket.hits_of(answer), "undefined": answer.get("undefined"),
                "coverage": tuple(answer["coverage"]), "seconds": float(answer["seconds"])}
    except (KeyError, TypeError, ValueError):  # an answer of another shape: search here
        return None


def _print_search(args: argparse.Namespace, root: Path, config: Config, found: dict, elapsed: float) -> None:
    """The same lines whether this process searched or the language server did."""
    if args.files:
        files = found["files"]
        human = _format_files(files, root) + f"\n{len(files)} files in {elapsed * 1000:.0f} ms (ranked by their " \
            "chunks, summary and mean vector)"
        emit(args, [{**f.to_dict(), "root": str(root)} for f in files], human)
        return
    hits = found["hits"]
    human = _format_hits(hits, root) + f"\n{len(hits)} results in {elapsed * 1000:.0f} ms ({_score_note(args, config)})"
    if found["undefined"]:
        human = f"No definition of {found['undefined']} in the index; these are the closest text matches.\n{human}"
    emit(args, _json_hits(hits, root), human + _dense_note(*found["coverage"]))


def _json_hits(hits: list[Hit], root: Path) -> list[dict]:
    """Repository-relative paths, each with the root they are relative to."""
    return [{**h.to_dict(), "root": str(root)} for h in hits]


def _dense_note(embedded: int, total: int) -> str:
    """A line when the dense layer is incomplete (phase 2 of indexing not finished); with
    --json, each such hit says `"embedded": false`."""
    if embedded >= total:
        return ""
    return (f"\nnote: {total - embedded} of {total} chunks have no vector yet and rank by their words; "
            "`codekin index` (or the language server) embeds them")


_LOCATION = re.compile(r"^(?P<path>.+?):(?P<start>\d+)(?:-(?P<end>\d+))?$")


def cmd_similar(args: argparse.Namespace) -> int:
    match = _LOCATION.match(args.location)
    if not match:
        raise WorkspaceError(f"cannot read location {args.location!r}", "use FILE:LINE or FILE:START-END")
    path = match["path"]
    engine = args.engine = _engine(args, Path(path) if not args.repo else Path.cwd())
    start = int(match["start"])
    end = int(match["end"]) if match["end"] else None
    query, hits = engine.similar(path, start, end, limit=args.limit, min_similarity=args.min_similarity,
                                 mode=args.mode)
    about = f"Similar to {query.symbol} ({shown_path(engine.root, query.path)}:{query.start_line}-" \
        f"{query.end_line})" if query else f"Similar to {args.location}"
    emit(args, _json_hits(hits, engine.root), f"{about}\n{_format_hits(hits, engine.root)}\n"
                                               f"({_score_note(args, engine.config)})")
    return 0


def register(subparsers: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, model, query = parents["common"], parents["model"], parents["query"]
    p = subparsers.add_parser("search", parents=[common, model, query], help="natural-language or code search")
    p.add_argument("query")
    p.add_argument("--lang", help="only this language (elixir, erlang, cpp, c, ...)")
    p.add_argument("--path", help="only paths matching this glob, e.g. 'lib/**'")
    p.add_argument("--files", action="store_true", help="rank files instead of chunks (whole-file questions)")
    p.add_argument("--tests", action="store_true",
                   help="rank tests, fixtures and examples like the code (default: weighed down for questions)")
    p.set_defaults(func=cmd_search, quick_exit=True)  # see main.main

    p = subparsers.add_parser("similar", parents=[common, model, query],
                              help="code similar to FILE:LINE or FILE:START-END")
    p.add_argument("location")
    p.set_defaults(func=cmd_similar, quick_exit=True)
