"""A `codekin search` asked of the language server already running for the repository.

`codekin serve` keeps the index snapshot and the model loaded; a cold CLI process needs about
a second to load them. Once its model is loaded, the server listens on a Unix domain socket
in the index directory (`.codekin/serve.sock`, owner-only: created 0600, and a peer of another
user is refused; never a TCP port). The CLI sends one JSON line (the query, its flags and the
search settings it would use) and reads one JSON line back: the hits, as the local search
would return them, which it prints as it prints its own.

The CLI falls back to searching itself, without a word, whenever the server cannot answer
exactly as it would: no server (a socket file left by a killed one refuses the connection),
a server on another model configuration, an error, a timeout. The server only ever answers
searches; the socket carries no other command.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codekin.index.hits import FileHit, Hit
from codekin.state import SERVE_SOCKET, STATE_DIR

if TYPE_CHECKING:
    from codekin.config import Config
    from codekin.engine import Engine

log = logging.getLogger(__name__)

SOCKET = SERVE_SOCKET
VERSION = 1  # of the messages; a server of another version is not asked
CONNECT_TIMEOUT_S = 0.5
ANSWER_TIMEOUT_S = 10.0  # a warm server answers in milliseconds; past this the CLI searches itself
MAX_MESSAGE = 1 << 20  # a request line is a query and its flags
Answer = dict[str, Any]


def socket_path(root: Path) -> Path:
    return root / STATE_DIR / SOCKET


# -- the CLI's side ---------------------------------------------------------------------------------
def search_request(config: Config, query: str, *, limit: int | None, min_similarity: float | None,
                   mode: str | None, language: str | None, path_glob: str | None, tests: bool,
                   files: bool) -> dict[str, Any]:
    return {"version": VERSION, "query": query, "limit": limit, "min_similarity": min_similarity, "mode": mode,
            "language": language, "path_glob": path_glob, "tests": tests, "files": files,
            "search": asdict(config.search), "model": asdict(config.model)}


def ask(root: Path, request: dict[str, Any]) -> Answer | None:
    """The running server's answer to `request`, None when there is none to be had (search here)."""
    path = socket_path(root)
    if not hasattr(socket, "AF_UNIX") or not path.exists():
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(CONNECT_TIMEOUT_S)
        client.connect(str(path))
        client.settimeout(ANSWER_TIMEOUT_S)
        client.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(_read_line(client))
    except (OSError, ValueError):  # no server (a stale socket file), too slow, cut off
        return None
    finally:
        client.close()
    if not isinstance(answer, dict) or answer.get("version") != VERSION or "fallback" in answer:
        return None
    return answer


def hits_of(answer: Answer) -> list[Hit]:
    return [Hit(**fields) for fields in answer["hits"]]


def file_hits_of(answer: Answer) -> list[FileHit]:
    return [FileHit(**fields) for fields in answer["files"]]


def _read_line(sock: socket.socket, limit: int | None = None) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if limit is not None and len(data) > limit:
            raise ValueError("message too long")
    return data


# -- the server's side ------------------------------------------------------------------------------
def answer_search(engine: Engine, request: dict[str, Any]) -> Answer:
    """What the CLI would compute for `request`, with this engine's snapshot and model; a
    `fallback` reason when it would not be the same (the CLI then searches itself)."""
    import time

    from codekin.config import SearchConfig
    from codekin.errors import CodekinError

    if request.get("version") != VERSION:
        return {"version": VERSION, "fallback": "another version"}
    if request.get("model") != asdict(engine.config.model):
        return {"version": VERSION, "fallback": "another model configuration"}
    try:
        view = engine.with_config(replace(engine.config, search=SearchConfig(**request["search"])))
        started = time.perf_counter()
        args = (request["query"], request["limit"])
        if request["files"]:
            files = view.search_files(*args, request["mode"], request["language"], request["path_glob"],
                                      tests=request["tests"])
            elapsed = time.perf_counter() - started
            return {"version": VERSION, "files": [asdict(f) for f in files], "seconds": elapsed}
        hits = view.search(*args, request["min_similarity"], request["mode"], request["language"],
                           request["path_glob"], tests=request["tests"])
        elapsed = time.perf_counter() - started
        return {"version": VERSION, "hits": [asdict(h) for h in hits], "seconds": elapsed,
                "undefined": view.undefined_symbol(request["query"]), "coverage": list(view.dense_coverage())}
    except (CodekinError, KeyError, TypeError, ValueError) as exc:  # the CLI's own search says it its way
        return {"version": VERSION, "fallback": f"{type(exc).__name__}: {exc}"}


class QuerySocket:
    """The server's listener: one thread, one connection at a time, each answered by `answer`."""

    def __init__(self, path: Path, answer: Callable[[dict[str, Any]], Answer]) -> None:
        self.path, self.answer = path, answer
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._identity: tuple[int, int] | None = None
        self.thread = threading.Thread(target=self._serve, name="codekin-socket", daemon=True)

    @classmethod
    def open(cls, root: Path, answer: Callable[[dict[str, Any]], Answer]) -> QuerySocket | None:
        """Listening at `.codekin/serve.sock` (replacing one a killed server left), else None
        (a path too long for a socket, a read-only directory: the CLI searches itself)."""
        if not hasattr(socket, "AF_UNIX"):  # no Unix sockets here: the CLI searches itself
            return None
        listener = cls(socket_path(root), answer)
        try:
            listener._bind()
        except OSError as exc:
            log.info("no query socket at %s: %s", listener.path, exc)
            listener.sock.close()
            return None
        listener.thread.start()
        return listener

    def _bind(self) -> None:
        # Bound under a temporary name, made owner-only, then renamed into place: the socket is
        # never reachable by others, and a stale one (a killed server's) is replaced at once.
        tmp = self.path.with_name(f".{SOCKET}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        self.sock.bind(str(tmp))
        try:
            os.chmod(tmp, 0o600)
            self.sock.listen(8)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        st = self.path.stat()
        self._identity = (st.st_ino, st.st_dev)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                try:
                    self._handle(conn)
                except OSError as exc:  # the client went away
                    log.info("query socket: %s", exc)

    def _handle(self, conn: socket.socket) -> None:
        if not _same_user(conn):
            return
        conn.settimeout(ANSWER_TIMEOUT_S)
        try:
            request = json.loads(_read_line(conn, MAX_MESSAGE))
        except ValueError:
            return
        answer = self.answer(request) if isinstance(request, dict) else {"version": VERSION, "fallback": "not a request"}
        conn.sendall(json.dumps(answer).encode() + b"\n")

    def close(self) -> None:
        """Stop listening; the socket file goes unless another server has replaced it since."""
        try:
            st = self.path.stat()
            if (st.st_ino, st.st_dev) == self._identity:
                self.path.unlink()
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.sock.close()


def _same_user(conn: socket.socket) -> bool:
    """The peer runs as this user (SO_PEERCRED on Linux; elsewhere the 0600 file mode decides)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True
    import struct

    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    return uid == os.getuid()
