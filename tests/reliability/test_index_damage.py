"""A damaged index, hostile file names and leftovers of a killed index never stop codekin or
mislead it: each command says what happened and what to do, or repairs it (issue 19, items
1, 2, 3 and 10). Real git repositories, real LanceDB, the real command line."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codekin.queue import ChangeQueue
from tests.reliability.damage import (
    BAD_NAME,
    FAULTS,
    LANCE,
    answers,
    codekin,
    copy_index,
    damage_trial,
    lance_leftovers,
    non_utf8_name,
    scribble_vectors,
)
from tests.reliability.harness import CrashBench, base_env, initial_files, make_repo

pytestmark = [pytest.mark.reliability]


@pytest.fixture(scope="module")
def indexed(crash_bench: CrashBench, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, list]]:
    """(repository indexed with the tiny model, its user config dir, its undamaged answers)."""
    from codekin.config import load_config
    from codekin.indexer import Indexer

    xdg = crash_bench.work / "xdg"  # the crash trials' user config: the tiny model as primary
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(xdg))
        root = make_repo(tmp_path_factory.mktemp("damage") / "base", initial_files(6))
        Indexer(root, load_config(root), embedder=crash_bench.embedder).run()
        outcome, expected = answers(root)
        assert outcome.code == 0 and all(expected), outcome.err
        yield root, xdg, expected


@pytest.fixture
def repo(indexed: tuple[Path, Path, list], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the indexed repository (index included)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(indexed[1]))
    return copy_index(indexed[0], tmp_path / "repo")


def test_a_name_that_is_not_utf8_is_skipped_and_the_queue_drains(repo: Path):
    from codekin import githooks

    githooks.install(repo)
    good = non_utf8_name(repo, random.Random(1))  # committed through the hooks, after the first index
    sync = codekin("sync", str(repo), "--queue-only", "--json")
    assert (sync.code, sync.traceback) == (0, ""), sync.err
    assert '"name is not UTF-8": 1' in sync.out
    with ChangeQueue(repo) as queue:
        assert queue.stats().pending == 0
    outcome, found = answers(repo)
    hits = codekin("search", "fresh_answer", "--repo", str(repo), "--json", "--mode", "lexical")
    assert outcome.code == 0 and good in hits.out
    (repo / BAD_NAME.decode("utf-8", "surrogateescape")).with_name("bad\udcfeuntracked.ex").write_text("x = 1\n")
    index = codekin("index", str(repo))
    assert index.code == 0 and "name is not UTF-8: 2" in index.out, index.err + index.traceback


@pytest.mark.parametrize("fault", ["scribble-vectors", "truncate-manifest", "delete-data", "truncate-data-unrecorded"])
def test_a_damaged_index_says_so_and_is_rebuilt(repo: Path, indexed: tuple[Path, Path, list], fault: str):
    trial = damage_trial(fault, repo, indexed[2], random.Random(fault))
    assert trial.ok, trial.to_dict()


def test_index_rebuild_and_automatic_rebuild_are_announced(repo: Path, indexed: tuple[Path, Path, list]):
    rebuilt = codekin("index", str(repo), "--rebuild", "--json")
    assert rebuilt.code == 0 and '"rebuilt": "a rebuild was asked for"' in rebuilt.out
    scribble_vectors(repo, random.Random(3))
    automatic = codekin("index", str(repo))
    assert automatic.code == 0, automatic.err
    assert "is damaged" in automatic.err and "rebuilding it from the source files" in automatic.err
    assert automatic.out.startswith("Rebuilt the index from the source files (the index in .codekin/index.lance is "
                                    "damaged: vectors_")
    assert answers(repo)[1] == indexed[2]


def test_doctor_hashes_every_file_even_when_the_mtime_was_kept(repo: Path):
    data = sorted((repo / LANCE).glob("chunks.lance/data/*.lance"))[0]
    before = data.stat()
    with data.open("r+b") as handle:
        handle.seek(before.st_size // 2)
        handle.write(b"\0" * 16)
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))  # bit rot: no write the file system saw
    doctor = codekin("doctor", str(repo), "--skip-model")
    assert doctor.code == 1
    assert f"FAIL index: the index in .codekin/index.lance is damaged: chunks.lance/data/{data.name} changed" \
           in doctor.out
    assert "fix: run `codekin index --rebuild`" in doctor.out


def test_lance_temporary_files_of_a_killed_index_are_cleaned_by_the_next(repo: Path):
    lance_leftovers(repo, random.Random(5))
    assert list((repo / LANCE).rglob(".tmp*"))
    outcome = codekin("index", str(repo))
    assert outcome.code == 0, outcome.err
    assert not list((repo / LANCE).rglob("*.tmp*"))


@pytest.mark.parametrize(("message", "damage"), [
    ("lance error: LanceError(IO): Generic LocalFileSystem error: failed to fill whole buffer", True),
    ("lance error: Not found: repo/.codekin/index.lance/chunks.lance/data/0110.lance", True),
    ("lance error: Retryable commit conflict for version 7: This Append transaction was preempted", False),
    ("lance error: LanceError(IO): Permission denied (os error 13)", False),
    ("lance error: LanceError(IO): No space left on device (os error 28)", False),
    ("division by zero", False),
])
def test_only_errors_about_damaged_files_count_as_damage(message: str, damage: bool):
    """A commit conflict, a refusal or a full disk must not make `codekin index` discard the index."""
    from codekin.index.integrity import lance_damage

    assert lance_damage(RuntimeError(message)) is damage


def test_the_real_command_prints_no_traceback(repo: Path, indexed: tuple[Path, Path, list]):
    """The same edge in a real process: the damaged-index error, exit 6, the fix."""
    FAULTS["truncate-data"](repo, random.Random(9))
    out = subprocess.run([sys.executable, "-m", "codekin.cli", "status", str(repo)], capture_output=True, text=True,
                         env=base_env(indexed[1]), timeout=120)
    assert out.returncode == 6, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("codekin: error: the index in .codekin/index.lance is damaged: ")
    assert "hint: run `codekin index --rebuild` to rebuild it from the source files" in out.stderr
