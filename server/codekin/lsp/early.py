"""Answering `initialize` before pygls is imported.

Importing lsprotocol's types alone takes 0.5-3 s on a 2-core laptop, so a server that imports
pygls first answers `initialize` late. But the answer depends only on the client's
capabilities, the initializationOptions and the server's own code: the first time a
combination is seen, pygls answers and the answer is kept in the user cache under a key of
all of those (with the versions of codekin, pygls and lsprotocol and a stamp of codekin/lsp's
files); every later start reads the first frame itself, sends the kept answer at once and
imports pygls meanwhile. pygls then handles the same `initialize` as always (workspace,
options, session) with its response dropped, since it is the one already sent.

A client's first start (no kept answer yet: a new client, or a new codekin) is answered at once
too, from `built_answer`: what pygls answers for codekin's features, built without it. pygls's
own answer still comes, is compared (a difference is logged) and kept for the next start, so
pygls stays the authority. Importing pygls first cost a first VS Code start 1.5-2 s.

`Warmup` opens the workspace's engine on another thread meanwhile (index snapshot, then the
model), which the session takes over: the first request does not wait for pygls and the
engine one after the other.

Nothing here imports pygls, lsprotocol or asyncio.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlparse

from codekin import __version__
from codekin.config import cache_root
from codekin.errors import CodekinError
from codekin.lsp.framing import Fault, Frame, FrameDecoder

if TYPE_CHECKING:
    from codekin.engine import Engine

log = logging.getLogger(__name__)

HEADER = "Content-Length: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"  # as pygls
# codekin's commands in the order the server registers them (similar.py, then commands.py), and
# the position encodings pygls supports: what `built_answer` needs to answer as pygls does
COMMANDS = ("codekin.findSimilar", "codekin.search", "codekin.status", "codekin.retrain", "codekin.index")
POSITION_ENCODINGS = ("utf-8", "utf-16", "utf-32")


def _code_stamp() -> list[Any]:
    """codekin's version, and (name, size, mtime) of codekin/lsp's files and of pygls's and
    lsprotocol's installed files that define the answer (stat calls: no import, no metadata scan)."""
    files = [Path(__file__).parent / name for name in sorted(os.listdir(Path(__file__).parent))
             if name.endswith(".py")]
    for package, names in (("pygls", ("__init__.py", "capabilities.py")), ("lsprotocol", ("__init__.py", "types.py"))):
        spec = find_spec(package)
        if spec is not None and spec.origin:
            files.extend(Path(spec.origin).parent / name for name in names)
    stamp = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        stamp.append((str(path), st.st_size, st.st_mtime_ns))
    return [__version__, stamp]


def answer_key(params: dict[str, Any]) -> str:
    """What pygls's answer to `initialize` depends on, as one digest."""
    inputs = [_code_stamp(), params.get("capabilities"), params.get("initializationOptions")]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:32]


def built_answer(params: dict[str, Any]) -> dict[str, Any] | None:
    """pygls's answer to `initialize` with these params for codekin's features, without pygls;
    None for params pygls may refuse (no `capabilities` object): pygls answers those itself.
    tests/test_instant_start.py checks it against pygls's own answer for several clients."""
    from codekin.lsp.options import parse_options

    capabilities = params.get("capabilities")
    if not isinstance(capabilities, dict) or "processId" not in params:
        return None
    general = capabilities.get("general")
    encodings = general.get("positionEncodings") if isinstance(general, dict) else None
    encoding = next((e for e in encodings if e in POSITION_ENCODINGS), "utf-16") if isinstance(encodings, list) \
        else "utf-16"  # pygls: the client's first supported choice, else utf-16
    options, _ = parse_options(params.get("initializationOptions"))
    sync: dict[str, Any] = {"openClose": True, "change": 2}
    document = capabilities.get("textDocument")
    client_sync = document.get("synchronization") if isinstance(document, dict) else None
    for name in ("willSave", "willSaveWaitUntil"):  # pygls: the client's flag `and` a feature codekin lacks
        if isinstance(client_sync, dict) and client_sync.get(name) is not None:
            sync[name] = False
    sync["save"] = {"includeText": False}
    answer: dict[str, Any] = {"positionEncoding": encoding, "textDocumentSync": sync}
    if options.code_lens.enabled:
        answer["codeLensProvider"] = {"resolveProvider": True}
    answer["workspaceSymbolProvider"] = {"resolveProvider": False}
    answer["executeCommandProvider"] = {"commands": list(COMMANDS)}
    answer["workspace"] = {"workspaceFolders": {"supported": True, "changeNotifications": True}, "fileOperations": {}}
    return {"capabilities": answer, "serverInfo": {"name": "codekin", "version": __version__}}


def _answer_path(key: str) -> Path:
    return cache_root() / "lsp" / f"initialize-{key}.json"


class EarlyStart:
    """The first message from the client, read before pygls exists, and what became of it."""

    def __init__(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.stdin, self.stdout = stdin, stdout
        self.decoder = FrameDecoder()
        self.pending: list[Frame | Fault] = []  # decoded, for the server's loop to handle first
        self.request_id: Any = None  # of `initialize`, when the first message is one
        self.answered = False        # the kept (or built) answer was sent: pygls's own is dropped
        self.built: dict[str, Any] | None = None  # the built answer sent, to compare with pygls's
        self.key = ""
        self.params: dict[str, Any] = {}

    def answer_initialize(self) -> None:
        """Read up to the first whole message; when it is `initialize` with a kept answer, send it."""
        while not any(isinstance(item, Frame) for item in self.pending):
            data = self.stdin.read1(65536) if hasattr(self.stdin, "read1") else self.stdin.read(1)
            if not data:
                return  # the input ended: the server's loop sees the same
            self.pending.extend(self.decoder.feed(data))
        first = next(item for item in self.pending if isinstance(item, Frame))
        try:
            message = json.loads(first.body)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("method") != "initialize" or "id" not in message:
            return
        params = message.get("params")
        if not isinstance(params, dict):
            return
        self.request_id, self.key, self.params = message["id"], answer_key(params), params
        try:
            result = json.loads(_answer_path(self.key).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # not seen before: built now, pygls's answer kept (keep())
            result = self.built = built_answer(params)
            if result is None:
                return
        body = json.dumps({"id": self.request_id, "jsonrpc": "2.0", "result": result})
        self.stdout.write(HEADER.format(len(body)).encode() + body.encode())
        self.stdout.flush()
        self.answered = True

    def keep(self, result: Any) -> None:
        """pygls's answer to this `initialize`, kept for the next start with the same inputs."""
        if not self.key or (self.answered and self.built is None):
            return
        if self.built is not None and result != self.built:
            log.warning("the early answer to initialize differs from pygls's, which the next start sends: "
                        "%s != %s", json.dumps(self.built), json.dumps(result))
        path = _answer_path(self.key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(result), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # a read-only cache: every start answers through pygls
            log.info("cannot keep the answer to initialize in %s: %s", path, exc)


class InitializeTap:
    """pygls's writer, which drops (sent early) or keeps (for the next start) pygls's response
    to the `initialize` of `early`; every other message passes through unchanged."""

    def __init__(self, inner: Any, early: EarlyStart) -> None:
        self.inner, self.early = inner, early
        self.waiting = early.request_id is not None

    def write(self, data: bytes) -> None:
        if self.waiting:
            try:
                message = json.loads(data.split(b"\r\n\r\n", 1)[-1])
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("id") == self.early.request_id and "method" not in message:
                self.waiting = False
                if "result" in message:
                    self.early.keep(message["result"])
                elif self.early.answered:
                    log.warning("initialize was answered early, but pygls answers it with an error: %s",
                                message.get("error"))
                if self.early.answered:
                    return
        self.inner.write(data)

    def close(self) -> None:
        self.inner.close()


def workspace_root(root_uri: str | None, folder_uris: list[str], root_path: str | None) -> Path:
    """rootUri, else the first workspace folder, else rootPath, else the current directory;
    then the nearest directory holding an index (else the git root), as the CLI does."""
    from codekin.workspace import index_root

    uri = root_uri or (folder_uris[0] if folder_uris else None)
    if uri:
        start = Path(unquote(urlparse(uri).path))
    else:
        start = Path(root_path) if root_path else Path.cwd()
    if not start.is_dir():
        return start.resolve()
    return index_root(start)


class Warmup:
    """The engine of `root`, opened on a thread while pygls loads: config, the index snapshot
    (`index_ready`), then the model. A failure leaves `engine` None: the session then opens
    its own and reports what fails, as without a warm-up."""

    def __init__(self, root: Path, overrides: dict[str, dict[str, Any]]) -> None:
        self.root, self.overrides = root, overrides
        self.engine: Engine | None = None
        self.index_ready = threading.Event()
        self.model_ready = threading.Event()  # set when the model loaded or failed to (`model_loaded` says)
        self.model_loaded = False
        self.thread = threading.Thread(target=self._run, name="codekin-warmup", daemon=True)

    @classmethod
    def start(cls, early: EarlyStart, overrides: dict[str, dict[str, Any]]) -> Warmup | None:
        """For the workspace of the `initialize` that `early` read; None when there was none."""
        params = early.params
        if not params:
            return None
        folders = [f.get("uri") for f in params.get("workspaceFolders") or [] if isinstance(f, dict)]
        try:
            root = workspace_root(params.get("rootUri"), [u for u in folders if isinstance(u, str)],
                                  params.get("rootPath"))
        except (CodekinError, OSError, TypeError, ValueError):
            return None
        warm = cls(root, overrides)
        warm.thread.start()
        return warm

    def _run(self) -> None:
        try:
            self._open()
        finally:
            self.index_ready.set()
            self.model_ready.set()

    def _open(self) -> None:
        try:
            from codekin.config import load_config
            from codekin.engine import Engine, lower_thread_priority

            engine = Engine(self.root, load_config(self.root, self.overrides))
            if engine.store.exists():
                # compiled on its own thread while the index loads, in spare CPU: an editor starting
                # beside the server, and the first code lenses (no model needed), come first;
                # VS Code e2e, load 3-6: first lens 11.6 -> 10.7 s (3 rounds each, model not loaded)
                engine.load_model_meanwhile(background=True)
                engine.index()
            self.engine = engine
        except CodekinError as exc:
            log.info("warm-up of %s stopped: %s", self.root, exc)
            return
        finally:
            self.index_ready.set()
        lower_thread_priority()
        try:
            engine.embedder.encode(["warm-up"])  # loads the model; its first inference is the slowest
            self.model_loaded = True
        except CodekinError as exc:
            log.info("warm-up could not load the model: %s", exc)

    def take(self, root: Path, timeout: float) -> Engine | None:
        """The warmed engine when it serves `root`, once its index snapshot is loaded."""
        if root != self.root or not self.index_ready.wait(timeout):
            return None
        return self.engine
