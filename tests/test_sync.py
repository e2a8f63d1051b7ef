"""Hooks + sync against real git, the real model and LanceDB: after every git operation the
synced index equals a fresh full index of the same tree; a kill -9 loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from codekin import githooks
from codekin.cli import main
from codekin.config import Config, load_config
from codekin.errors import IndexLockedError, IndexMissingError
from codekin.index.lock import IndexLock
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from codekin.queue import ChangeQueue
from codekin.sync import SyncSummary, Watcher, drain
from tests.conftest import git, make_repo


def module(name: str, *functions: str) -> str:
    body = "\n\n".join(f'  @doc "{f} of {name}"\n  def {f}(x) do\n    x |> {f}_step() |> Enum.map(& &1 + 1)\n  end'
                       for f in functions)
    return f"defmodule {name} do\n{body}\nend\n"


FILES = {
    "lib/cart.ex": module("Cart", "add_item", "remove_item"),
    "lib/retry.ex": module("Retry", "with_backoff"),
    "src/kin.erl": "-module(kin).\n-export([start/0]).\n\nstart() ->\n    ok.\n",
    "c_src/nif.cpp": "static int add(int a, int b) {\n  return a + b;\n}\n",
}


def chunk_keys(root: Path) -> set[tuple]:
    table = IndexStore(root).load_chunks()
    return set(zip(*(table.column(c).to_pylist() for c in ("path", "start_line", "end_line", "content_hash")),
                   strict=True))


def file_hashes(root: Path) -> dict[str, str]:
    return {p: r.file_hash for p, r in IndexStore(root).file_records().items()}


def assert_like_fresh_index(root: Path, minilm, tag: str) -> None:
    """The index of `root` has the rows a full index of a copy of its tree has, and vectors for all."""
    copy = root.parent / f"fresh-{tag}"
    shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns(".codekin"))
    Indexer(copy, load_config(copy), embedder=minilm).run()
    assert chunk_keys(root) == chunk_keys(copy), tag
    assert file_hashes(root) == file_hashes(copy), tag
    store = IndexStore(root)
    assert store.chunk_hashes() <= store.vector_hashes(minilm.key), tag
    shutil.rmtree(copy)


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


@pytest.fixture
def indexed(tmp_path: Path, minilm) -> tuple[Path, Config]:
    root = make_repo(tmp_path / "repo", FILES)
    config = load_config(root)
    Indexer(root, config, embedder=minilm).run()
    githooks.install(root)
    return root, config


@pytest.mark.slow
def test_every_git_operation_syncs_to_a_fresh_index(indexed: tuple[Path, Config], minilm) -> None:
    root, config = indexed

    def sync(tag: str, full_check: bool = False) -> SyncSummary:
        summary = drain(root, config, minilm, full_check=full_check)
        assert_like_fresh_index(root, minilm, tag)
        with ChangeQueue(root) as queue:
            assert not queue.take(), tag  # drained
        return summary

    write(root, "lib/cart.ex", module("Cart", "add_item", "remove_item", "total"))
    write(root, "lib/orders.ex", module("Orders", "place"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "commit")
    summary = sync("commit")  # queue only: the hooks' records alone bring the index up to date
    assert (summary.records, summary.queued, summary.full_check) == (1, 2, False)

    write(root, "lib/orders.ex", module("Orders", "place", "cancel"))
    git(root, "commit", "-q", "-a", "--amend", "-m", "amended")
    sync("amend")

    git(root, "checkout", "-q", "-b", "feature")
    write(root, "src/kin.erl", "-module(kin).\n-export([start/0, stop/0]).\n\nstart() ->\n    ok.\n\nstop() ->\n    ok.\n")
    git(root, "commit", "-q", "-a", "-m", "stop")
    git(root, "checkout", "-q", "main")
    write(root, "c_src/nif.cpp", "static int mul(int a, int b) {\n  return a * b;\n}\n")
    git(root, "commit", "-q", "-a", "-m", "mul")
    sync("commit on main")
    git(root, "checkout", "-q", "feature")
    sync("checkout of another branch")
    git(root, "rebase", "-q", "main")
    sync("rebase")

    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "feature")
    sync("fast-forward merge")
    git(root, "checkout", "-q", "-b", "other", "HEAD~1")
    write(root, "lib/retry.ex", module("Retry", "with_jitter"))
    write(root, "lib/clean.ex", module("Clean", "sweep"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "other")
    git(root, "checkout", "-q", "main")
    write(root, "lib/retry.ex", module("Retry", "give_up"))
    git(root, "commit", "-q", "-a", "-m", "give up")
    sync("commit before the merge")
    assert subprocess.run(["git", "-C", str(root), "merge", "other"], capture_output=True).returncode != 0
    write(root, "lib/retry.ex", module("Retry", "with_backoff", "with_jitter"))
    git(root, "commit", "-q", "-a", "--no-edit")
    sync("merge with a conflict")

    write(root, "lib/cart.ex", module("Cart", "add_item"))
    sync("uncommitted edit (full check)", full_check=True)
    git(root, "stash", "-q")  # no git hook runs for a stash: the full check finds it
    sync("stash", full_check=True)
    git(root, "stash", "pop", "-q")
    sync("stash pop", full_check=True)
    git(root, "checkout", "--", "lib/cart.ex")  # the hook asks for a full scan
    summary = sync("file checkout")
    assert summary.full_check

    git(root, "rm", "-q", "src/kin.erl")
    git(root, "commit", "-q", "-m", "delete")
    sync("delete")
    git(root, "mv", "lib/clean.ex", "lib/sweeper.ex")
    git(root, "commit", "-q", "-m", "rename")
    summary = sync("rename")
    assert summary.index is not None and summary.index.new_embeddings == 0  # same hashes: vectors re-used

    (root / "lib").rename(root / "elixir")  # a folder renamed on disk, as a watcher reports it
    with ChangeQueue(root) as queue:
        queue.add(["lib", "elixir"], event="watch")
    sync("folder rename")
    assert drain(root, config, minilm, full_check=True).index is None  # idempotent: nothing left


@pytest.mark.slow
def test_kill_during_sync_loses_nothing(tmp_path: Path, minilm) -> None:
    root = make_repo(tmp_path / "repo", {"lib/seed.ex": module("Seed", "grow")})
    config = load_config(root)
    Indexer(root, config, embedder=minilm).run()
    githooks.install(root)
    names = [f"lib/gen_{i}.ex" for i in range(50)]
    for i, name in enumerate(names):
        write(root, name, module(f"Gen{i}", f"fetch_{i}", f"store_{i}", f"drop_{i}"))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "many")

    proc = subprocess.Popen([sys.executable, "-m", "codekin.cli", "sync", "--device", "cpu", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if len(IndexStore(root).file_records()) > 1:  # chunk rows committed; embedding comes next
            break
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""

    store = IndexStore(root)
    assert store.chunk_hashes() - store.vector_hashes(minilm.key)  # killed half way through
    with ChangeQueue(root) as queue:
        assert queue.take().paths == sorted(names)  # nothing left the queue

    summary = drain(root, config, minilm)
    assert summary.resumed and summary.completed == len(names) and summary.remaining == 0
    assert_like_fresh_index(root, minilm, "after kill -9")


@pytest.mark.slow
def test_one_sync_at_a_time(indexed: tuple[Path, Config], minilm, capsys: pytest.CaptureFixture[str]) -> None:
    root, config = indexed
    write(root, "lib/retry.ex", module("Retry", "with_backoff", "locked"))
    git(root, "commit", "-q", "-a", "-m", "x")
    lock = IndexLock(root / ".codekin", name="sync.lock").__enter__()
    try:
        with pytest.raises(IndexLockedError, match="locked by pid") as exc:
            drain(root, config, minilm)
        assert "--wait" in exc.value.hint
        assert main(["sync", str(root)]) == IndexLockedError.exit_code
        assert "codekin: error: the index is locked by pid" in capsys.readouterr().err
        threading.Timer(0.5, lock.__exit__, (None, None, None)).start()
        summary = drain(root, config, minilm, wait=30)  # waits for the other one
    finally:
        lock.__exit__(None, None, None)
    assert summary.index is not None and summary.index.changed_files == 1
    assert main(["sync", str(root), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["index"] is None and payload["remaining"] == 0 and payload["full_check"]


def test_sync_without_index_says_how_to_make_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    with pytest.raises(IndexMissingError, match="no index") as exc:
        drain(root, load_config(root))
    assert "codekin index" in exc.value.hint
    for command in ("sync", "watch"):
        assert main([command, str(root)]) == IndexMissingError.exit_code
        assert "run `codekin index" in capsys.readouterr().err


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.slow
def test_watcher_indexes_saved_edits_commits_and_ignores_noise(indexed: tuple[Path, Config], minilm) -> None:
    root, config = indexed
    write(root, ".gitignore", "*.log\n")
    git(root, "add", ".gitignore")
    git(root, "commit", "-q", "-m", "ignore logs")
    syncs: list[SyncSummary] = []
    errors: list[BaseException] = []
    watcher = Watcher(root, config, embedder=minilm, debounce_ms=100, retry_s=0.5,
                      on_sync=syncs.append, on_error=errors.append)
    watcher.start()
    try:
        assert watcher.wait_ready(60)

        def has_text(token: str) -> bool:
            return any(token in text for text in IndexStore(root).load_chunks().column("text").to_pylist())

        write(root, "lib/retry.ex", module("Retry", "with_backoff", "saved_not_committed"))
        assert wait_for(lambda: has_text("saved_not_committed"))

        write(root, "lib/late.ex", module("Late", "arrives_by_commit"))
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "late")
        assert wait_for(lambda: has_text("arrives_by_commit"))
        assert wait_for(lambda: githooks.status(root).pending_records == 0)

        time.sleep(1.0)  # past the watcher's first quiet moment (its second full check)
        count = len(syncs)
        write(root, "debug.log", "noise\n")  # ignored by git
        write(root, "_build/dev/lib/app.ex", module("Built", "artifact"))  # excluded by [index] exclude
        time.sleep(1.0)
        assert len(syncs) == count, [(s.queued, s.records, s.index.files if s.index else 0) for s in syncs[count:]]  # nothing indexed, no index write
    finally:
        watcher.stop()
    assert not watcher.running and errors == [] and watcher.error is None
    assert_like_fresh_index(root, minilm, "watched")


def _default_sigint() -> None:
    """Ctrl-C as in a terminal: a shell that runs the tests in the background without job control
    starts them with SIGINT ignored, and Python keeps an inherited SIG_IGN."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_codekin_watch_command(indexed: tuple[Path, Config], stop: signal.Signals) -> None:
    root, _ = indexed
    proc = subprocess.Popen([sys.executable, "-m", "codekin.cli", "watch", "--json", "--debounce", "50",
                             "--device", "cpu"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"}, preexec_fn=_default_sigint)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline()) == {"event": "ready", "root": str(root)}
        write(root, "lib/cart.ex", module("Cart", "add_item", "from_the_watcher"))
        event = json.loads(proc.stdout.readline())
        assert (event["event"], event["changed"], event["index"]["changed_files"]) == ("sync", 1, 1)
    finally:
        proc.send_signal(stop)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # the fault handler prints every thread's stack
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"`codekin watch` did not end within 60 s of {stop.name}; its threads:\n{err[-8000:]}")
    assert proc.returncode == 0, err
    assert "stopping; queued changes are kept" in err
