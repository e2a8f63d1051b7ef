"""An index that this machine did not make is never used (issue 19, item 5): one a repository
commits (LanceDB tables, state.json, query.chunks, checksums), or one in a copied tree written
on another machine. Commands ignore it with a message that says why, `status` and `doctor`
say so, and `codekin index` rebuilds it from the files at hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codekin.config import load_config
from codekin.doctor import run_checks
from codekin.errors import IndexForeignError
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from tests.conftest import git, make_repo

pytestmark = pytest.mark.reliability

HONEST = "defmodule Billing do\n  def add_tax(amount, rate), do: amount * (1 + rate)\nend\n"
PLANTED = "defmodule Planted do\n  def exfiltrate_tokens(conn), do: send(conn, :tokens)\nend\n"


def codekin(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codekin.cli", *args], cwd=root, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def restamp(root: Path, machine: str | None) -> None:
    """state.json as another machine (or a codekin that recorded none) would have written it."""
    path = root / ".codekin/state.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    state.pop("machine")
    path.write_text(json.dumps({**state, **({"machine": machine} if machine else {})}), encoding="utf-8")


@pytest.fixture
def cloned(tmp_path: Path, minilm) -> Path:
    """A clone of a repository that committed its whole .codekin/ index, built elsewhere over a
    file (lib/planted.ex) that the repository no longer has."""
    origin = make_repo(tmp_path / "origin", {"lib/billing.ex": HONEST, "lib/planted.ex": PLANTED})
    Indexer(origin, load_config(origin), embedder=minilm).run()
    restamp(origin, "e" * 32)
    git(origin, "rm", "-q", "lib/planted.ex")
    git(origin, "add", "-f", ".codekin/state.json", ".codekin/index.lance", ".codekin/index.sums.json",
        ".codekin/query.chunks")
    git(origin, "commit", "-q", "-m", "ship an index")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, capture_output=True)
    assert (clone / ".codekin/index.lance").is_dir() and not (clone / "lib/planted.ex").exists()
    return clone


def test_a_committed_index_is_ignored_and_rebuilt_here(cloned: Path):
    status = codekin(cloned, "status")
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert "Ignoring the index" in status.stdout and "git tracks .codekin/" in status.stdout
    assert f"codekin index {cloned}" in status.stdout

    search = codekin(cloned, "search", "exfiltrate tokens", "--json")
    assert search.returncode == 7 and "Traceback" not in search.stderr, search.stderr
    assert "ignoring the index" in search.stderr and "codekin index" in search.stderr

    index_check = next(c for c in run_checks(cloned, load_config(cloned), load_model=False) if c.name == "index")
    assert not index_check.ok and "git tracks .codekin/" in index_check.detail
    assert index_check.fix == f"codekin index {cloned}"

    rebuilt = codekin(cloned, "index", "--json")
    assert rebuilt.returncode == 0 and "Traceback" not in rebuilt.stderr, rebuilt.stderr
    assert "ignoring the index" in rebuilt.stderr and "rebuilding it from the source files" in rebuilt.stderr
    assert json.loads(rebuilt.stdout)["files"] == 1

    hits = json.loads(codekin(cloned, "search", "exfiltrate tokens", "--json").stdout)
    assert {h["path"] for h in hits} == {"lib/billing.ex"}  # what is here, never the planted file
    assert IndexStore(cloned).foreign() == ""  # rebuilt here (status still asks to untrack .codekin/)


def test_a_copied_index_from_another_machine_is_ignored(tmp_path: Path, minilm):
    """Untracked (a copied tree or tarball) but stamped by another machine."""
    root = make_repo(tmp_path / "repo", {"lib/billing.ex": HONEST})
    Indexer(root, load_config(root), embedder=minilm).run()
    restamp(root, "e" * 32)
    store = IndexStore(root)
    assert "not made on this machine" in store.foreign() and not store.exists()
    with pytest.raises(IndexForeignError, match="not made on this machine"):
        store.state()
    assert Indexer(root, load_config(root), embedder=minilm).run().rebuilt.startswith("the index was not made here")
    assert IndexStore(root).foreign() == "" and IndexStore(root).state()["active_key"]


def test_an_index_from_before_the_machine_stamp_is_kept_and_stamped(tmp_path: Path, minilm):
    """A state.json without a stamp was written by an older codekin on this machine, as far as
    anyone can tell: rebuilding it would re-embed every existing index on upgrade."""
    root = make_repo(tmp_path / "repo", {"lib/billing.ex": HONEST})
    Indexer(root, load_config(root), embedder=minilm).run()
    restamp(root, None)
    assert IndexStore(root).foreign() == "" and IndexStore(root).exists()
    (root / "lib/more.ex").write_text("defmodule More do\n  def more, do: :more\nend\n", encoding="utf-8")
    assert not Indexer(root, load_config(root), embedder=minilm).run().rebuilt
    assert IndexStore(root).state()["machine"]  # the write stamped it
