"""Everything at once on one repository, then check that nothing was lost or mixed:

- `codekin serve` (the real server over stdio, watching the tree and draining the hooks'
  queue) answers a search loop the whole time: a dense query made of one chunk's own
  text (a file nobody touches) must come back with that chunk first at cosine ~1, so an
  answer embedded with one model and searched in another model's table is caught;
- `codekin index --wait` runs again and again (a full pass each time, taking the index
  lock away from the server's syncs) until 80% of the commits are made, so the last ones
  reach the index through the hooks' queue only;
- a script makes N commits with the hooks installed (`commit_storm.py`), every git
  command checked;
- half way, `codekin models promote` makes a new tiny model active, followed at once by a
  `codekin index` from the terminal (which embeds with the promoted model and may switch
  the table before the server notices): the server must hot-reload it (re-embed + switch)
  and never answer from two vector spaces, while all of the above goes on.

Then the server is shut down, one `codekin sync --queue-only` drains what is left, and
the index must equal a fresh full index of the final tree (no queued path lost), with the
promoted model's table active. Every wait is bounded: a deadlock fails, it never hangs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.harness import (
    STATE_DIR,
    CrashBench,
    check_index,
    codekin_command,
    fresh_rows,
    initial_files,
    lost_paths,
    make_repo,
)
from tests.reliability.rawclient import RawClient
from tests.reliability.reembed_trials import SELF_SCORE, register_version, tiny_model_for

STORM = Path(__file__).with_name("commit_storm.py")
ANCHOR = "lib/anchor/anchor.ex"
ANCHOR_TEXT = """defmodule Kin.Anchor do
  @moduledoc "Nobody edits this file during the storm: the search loop looks for it."

  def backoff_delay(attempt, base_ms) do
    jitter = :rand.uniform(base_ms)
    min(base_ms * :math.pow(2, attempt) + jitter, 30_000)
  end
end
"""
INDEX_UNTIL = 0.8  # share of the commits after which `codekin index` stops: the rest goes through the queue


@dataclass
class StormReport:
    commits: int
    seconds: float = 0.0
    answers: int = 0  # search answers received
    index_runs: int = 0  # `codekin index` runs that ended
    hot_reloads: int = 0  # the server switched model version (seen in status)
    git_failures: list[str] = field(default_factory=list)
    failed_answers: list[str] = field(default_factory=list)
    mixed_answers: list[str] = field(default_factory=list)
    index_failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # everything else (lost paths, deadlock, ...)

    @property
    def failures(self) -> list[str]:
        return self.git_failures + self.failed_answers + self.mixed_answers + self.index_failures + self.problems

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"commits": self.commits, "seconds": round(self.seconds, 1), "answers": self.answers,
                "index_runs": self.index_runs, "hot_reloads": self.hot_reloads,
                "git_failures": self.git_failures[:5], "failed_answers": self.failed_answers[:5],
                "mixed_answers": self.mixed_answers[:5], "index_failures": self.index_failures[:5],
                "problems": self.problems[:10], "ok": self.ok}


def prepare(bench: CrashBench, root: Path) -> tuple[str, str]:
    """The repository indexed with the base tiny model, hooks installed, a version v1 registered
    (not yet active). Returns (v1, the anchor chunk's embedded text)."""
    from codekin import githooks
    from codekin.config import load_config
    from codekin.index.store import IndexStore
    from codekin.indexer import Indexer

    make_repo(root, {**initial_files(), ANCHOR: ANCHOR_TEXT})
    Indexer(root, load_config(root), embedder=bench.embedder).run()
    githooks.install(root)
    version = register_version(root, tiny_model_for(bench, 1))
    store = IndexStore(root)
    rows = [r for r in store.load_chunks().to_pylist() if r["path"] == ANCHOR and "backoff_delay" in r["text"]]
    return version, store.chunk_texts({rows[0]["content_hash"]})[rows[0]["content_hash"]]


def _progress(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


class IndexLoop(threading.Thread):
    """`codekin index --wait` again and again while `keep_going()` holds."""

    def __init__(self, root: Path, env: dict[str, str], log: Path, keep_going: Any, report: StormReport) -> None:
        super().__init__(name="index-loop", daemon=True)
        self.root, self.env, self.log, self.keep_going, self.report = root, env, log, keep_going, report

    def run(self) -> None:
        while self.keep_going():
            started = time.monotonic()
            try:
                done = subprocess.run(codekin_command("index", str(self.root), "--wait", "120"), env=self.env,
                                      capture_output=True, text=True, timeout=300)
            except subprocess.TimeoutExpired:
                self.report.index_failures.append("codekin index ran for more than 300 s (deadlock?)")
                return
            with self.log.open("a") as out:
                out.write(f"--- index exit {done.returncode} in {time.monotonic() - started:.1f} s\n"
                          f"{done.stdout}{done.stderr}")
            self.report.index_runs += 1
            if done.returncode != 0:
                self.report.index_failures.append(f"codekin index exit {done.returncode}: {done.stderr.strip()[-300:]}")
            time.sleep(0.2)


def run_storm(bench: CrashBench, work: Path, commits: int, deadline_s: float = 1500.0) -> StormReport:
    """The whole scenario (see the module docstring); `deadline_s` bounds it."""
    started = time.monotonic()
    deadline = started + deadline_s
    report = StormReport(commits)
    result: dict[str, Any] = {"failures": [], "touched": []}
    root = work / "storm-repo"
    version, anchor_text = prepare(bench, root)
    env = {**bench.env, "CODEKIN_JOBS_TICK_S": "5", "CODEKIN_CACHE_DIR": str(work / "cache")}
    server = RawClient(codekin_command("serve"), env, root, bench.log("storm-serve"))
    try:
        _initialize(server, root, deadline)
        progress = work / "storm.progress"
        progress.unlink(missing_ok=True)
        storm = subprocess.Popen([sys.executable, str(STORM), str(root), str(commits), "--progress", str(progress)],
                                 env=bench.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        indexing = IndexLoop(root, env, bench.log("storm-index"),
                             lambda: storm.poll() is None and _progress(progress) < INDEX_UNTIL * commits
                             and time.monotonic() < deadline, report)
        indexing.start()
        indexers = [indexing]
        promoted = False
        served = "base"
        while storm.poll() is None and time.monotonic() < deadline:
            _search(server, anchor_text, report)
            if not promoted and _progress(progress) >= commits // 2:
                promoted = True
                done = subprocess.run(codekin_command("models", "promote", version, "--repo", str(root)), env=env,
                                      capture_output=True, text=True, timeout=120)
                if done.returncode != 0:
                    report.problems.append(f"codekin models promote exit {done.returncode}: {done.stderr[-300:]}")
                # and at once a full index from the terminal, as a user would: it embeds with the
                # promoted model and may switch the table before the server's hot reload does
                indexers.append(IndexLoop(root, env, bench.log("storm-index"), iter([True, False]).__next__, report))
                indexers[-1].start()
            if report.answers % 20 == 0:
                served = _served(server, served, report)
            time.sleep(0.05)  # two shared cores: leave the others room
        if storm.poll() is None:
            storm.kill()
            report.problems.append(f"the commit script did not finish within {deadline_s:.0f} s "
                                   f"({_progress(progress)} of {commits} commits)")
        out, err = storm.communicate()
        result = json.loads(out) if storm.returncode == 0 and out.strip() else {"failures": [err[-500:]], "touched": []}
        report.git_failures += result["failures"]
        for thread in indexers:
            thread.join(max(1.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in indexers):
            report.problems.append("`codekin index` did not finish (deadlock?)")
        _settle(server, version, served, anchor_text, report, deadline)
    finally:
        if not server.close():
            report.problems.append("the server did not shut down cleanly")
    _final_checks(bench, root, version, set(result["touched"]), report)
    report.seconds = time.monotonic() - started
    return report


def _initialize(server: RawClient, root: Path, deadline: float) -> None:
    init = server.request("initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}}, timeout=120)
    if "result" not in init:
        raise RuntimeError(f"initialize failed: {init}")
    server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    while time.monotonic() < deadline:
        if _status(server).get("state") == "ready":
            return
        time.sleep(0.3)
    raise RuntimeError("the server never became ready")


def _status(server: RawClient) -> dict[str, Any]:
    answer = server.request("workspace/executeCommand", {"command": "codekin.status", "arguments": [{}]})
    return answer.get("result") or {}


def _search(server: RawClient, anchor_text: str, report: StormReport) -> None:
    arguments = [{"query": anchor_text, "mode": "dense", "limit": 3}]
    try:
        answer = server.request("workspace/executeCommand", {"command": "codekin.search", "arguments": arguments})
    except AssertionError as exc:  # no answer in time, or the server died
        report.failed_answers.append(str(exc))
        return
    report.answers += 1
    results = (answer.get("result") or {}).get("results")
    if "error" in answer or not results:
        report.failed_answers.append(json.dumps(answer)[:300])
    elif results[0]["path"] != ANCHOR or results[0]["score"] < SELF_SCORE:
        report.mixed_answers.append(f"answer {report.answers}: top {results[0]['path']} at {results[0]['score']:.3f}")


def _served(server: RawClient, before: str, report: StormReport) -> str:
    version = _status(server).get("modelVersion") or before
    if version != before:
        report.hot_reloads += 1
    return version


def _settle(server: RawClient, version: str, served: str, anchor_text: str, report: StormReport,
            deadline: float) -> None:
    """Keep searching until the server serves `version` with nothing queued (bounded)."""
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _search(server, anchor_text, report)
        status = _status(server)
        if (status.get("modelVersion") or served) != served:
            served = status["modelVersion"]
            report.hot_reloads += 1
        if status.get("modelVersion") == version and status.get("state") == "ready" and not status.get("queue"):
            return
        time.sleep(0.2)
    report.problems.append(f"the server did not settle on {version} with an empty queue in time: {status}")


def _final_checks(bench: CrashBench, root: Path, version: str, touched: set[str], report: StormReport) -> None:
    from codekin.index.store import IndexStore
    from codekin.models.registry import ModelRegistry

    done = subprocess.run(codekin_command("sync", str(root), "--queue-only", "--wait", "60"), env=bench.env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        report.problems.append(f"the final `codekin sync --queue-only` exit {done.returncode}: {done.stderr[-300:]}")
    lost = lost_paths(root, touched)
    if lost:
        report.problems.append(f"{len(lost)} committed paths never reached the index: {lost[:5]}")
    report.problems += check_index(root, None, fresh_rows(root, bench.embedder))
    state = IndexStore(root).state()
    if ModelRegistry(root).active_ref() != version or f"/models/{version}/" not in state.get("model", ""):
        report.problems.append(f"the index ends on model {state.get('model')}, not the promoted {version}")
    hook_log = root / STATE_DIR / "logs" / "hooks.log"
    if hook_log.is_file() and hook_log.read_text().strip():
        report.problems.append(f"the hooks logged failures: {hook_log.read_text()[-300:]}")
