"""Hostile files: the index completes, skips what it must with the right reason, and never
reads a file outside the repository (symlinks are never followed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codekin.config import load_config
from codekin.errors import WorkspaceError
from codekin.index.store import IndexStore
from codekin.indexer import Indexer
from tests.conftest import git, make_repo

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SECRET = "OUTSIDE_SECRET_7f3a"  # appears only in files outside the repository
GOOD = 'defmodule Kin.Good do\n  @doc "Adds one."\n  def inc(x), do: x + 1\nend\n'
ODD_NAMES = ["lib/with space.ex", "lib/new\nline.ex", "lib/ünïcødé_模块.ex", "lib/it's \"quoted\" \\ name.ex"]


def _elixir(name: str, factor: int = 2) -> str:
    return f'defmodule Kin.{name} do\n  @doc "Multiplies."\n  def times(x) do\n    x * {factor}\n  end\nend\n'


@pytest.fixture
def hostile_repo(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ex").write_text(f"defmodule Secret do\n  def key, do: \"{SECRET}\"\nend\n", encoding="utf-8")
    os.mkfifo(outside / "pipe.ex")  # opening it would block: reading it hangs the test
    files: dict[str, str | bytes] = {
        ".gitignore": ".codekin/\n",
        "lib/good.ex": GOOD,
        "lib/binary.ex": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8,
        "lib/nul_late.ex": _elixir("NulLate") + "# " + "x" * 9000 + "\0\n",  # NUL past the binary sniff
        "lib/bad_utf8.ex": b"defmodule Bad do\n  def s, do: \"\xff\xfe\xc3\x28\"\nend\n",
        "lib/crlf_bom.ex": "\ufeff" + _elixir("CrlfBom").replace("\n", "\r\n"),
        "lib/lf_twin.ex": _elixir("CrlfBom"),
        "lib/empty.ex": "",
        "lib/blank.ex": "  \n\t\n",
        "lib/deep.ex": "defmodule Deep do\n  def d, do: " + "[" * 10_000 + "]" * 10_000 + "\nend\n",
        "src/deep.erl": "-module(deep).\nd() -> " + "{" * 10_000 + "}" * 10_000 + ".\n",
        "c_src/deep.c": "int d(void) {\n  return " + "(" * 10_000 + "1" + ")" * 10_000 + ";\n}\n"
                         + "void b(void) " + "{" * 10_000 + "}" * 10_000 + "\n",
        "deep.json": "[" * 10_000 + "]" * 10_000 + "\n",
        **{name: _elixir(f"Odd{i}") for i, name in enumerate(ODD_NAMES)},
    }
    root = make_repo(tmp_path / "repo", files, commit=False)
    (root / "lib/loop_a.ex").symlink_to("loop_b.ex")
    (root / "lib/loop_b.ex").symlink_to("loop_a.ex")
    (root / "lib/self_dir").symlink_to(".")
    (root / "lib/secret_link.ex").symlink_to(outside / "secret.ex")
    (root / "lib/pipe_link.ex").symlink_to(outside / "pipe.ex")
    (root / "lib/outside_dir").symlink_to(outside)
    (root / "lib/absolute_etc").symlink_to("/etc/passwd")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "hostile")
    big = root / "lib/huge.ex"  # 100 MB, sparse: created at once, left untracked
    with big.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)
    os.mkfifo(root / "lib/fifo.ex")  # untracked named pipe inside the repository
    return root


def _reasons(root: Path) -> dict[str, str]:
    return {path: rec.skip_reason for path, rec in IndexStore(root).file_records().items()}


@pytest.mark.timeout(240)
def test_hostile_files_index_with_the_right_skip_reasons(hostile_repo: Path, minilm):
    root = hostile_repo
    summary = Indexer(root, load_config(root), embedder=minilm).run()
    reasons = _reasons(root)
    assert reasons["lib/binary.ex"] == "binary"
    assert reasons["lib/bad_utf8.ex"].startswith("not UTF-8 (byte ")
    assert reasons["lib/empty.ex"] == "empty" and reasons["lib/blank.ex"] == "empty"
    for name in ("lib/good.ex", "lib/crlf_bom.ex", "lib/nul_late.ex", "lib/deep.ex", "src/deep.erl",
                 "c_src/deep.c", "deep.json", *ODD_NAMES):
        assert reasons.get(name) == "", (name, reasons.get(name))
    assert summary.skipped == {"binary": 1, "not UTF-8": 1, "empty": 2, "symlink": 7, "too large": 1}, summary.skipped
    chunks = IndexStore(root).load_chunks().to_pylist()
    paths = {c["path"] for c in chunks}
    assert set(ODD_NAMES) <= paths
    assert not any("symlink" in p or "link" in p.rsplit("/", 1)[-1] for p in paths)
    assert not any(SECRET in c["text"] for c in chunks), "a file outside the repository was read"
    assert not any(p.startswith(("lib/outside_dir/", "lib/self_dir/")) or p == "lib/fifo.ex" for p in paths)
    bom = sorted((c["start_line"], c["end_line"], c["text"]) for c in chunks if c["path"] == "lib/crlf_bom.ex")
    twin = sorted((c["start_line"], c["end_line"], c["text"]) for c in chunks if c["path"] == "lib/lf_twin.ex")
    assert bom and bom == twin  # same lines and text as the LF file without a BOM


@pytest.mark.timeout(240)
def test_odd_names_survive_incremental_updates(hostile_repo: Path, minilm):
    """Paths with quotes, backslashes and newlines go through LanceDB delete filters."""
    root = hostile_repo
    config = load_config(root)
    Indexer(root, config, embedder=minilm).run()
    for i, name in enumerate(ODD_NAMES):
        (root / name).write_text(_elixir(f"Changed{i}", factor=3), encoding="utf-8")
    (root / ODD_NAMES[0]).unlink()
    Indexer(root, config, embedder=minilm).run()
    rows = [(c["path"], c["start_line"]) for c in IndexStore(root).load_chunks().to_pylist()]
    assert len(rows) == len(set(rows)), "stale rows of an odd name were not deleted"
    paths = {p for p, _ in rows}
    assert ODD_NAMES[0] not in paths and set(ODD_NAMES[1:]) <= paths
    texts: dict[str, str] = {}
    for chunk in IndexStore(root).load_chunks().to_pylist():
        texts[chunk["path"]] = texts.get(chunk["path"], "") + chunk["text"]
    assert all("x * 3" in texts[name] and "x * 2" not in texts[name] for name in ODD_NAMES[1:])


def test_unreadable_file_is_skipped_with_its_reason(repo_factory, minilm):
    root = repo_factory({"lib/good.ex": GOOD, "lib/locked.ex": _elixir("Locked")})
    locked = root / "lib/locked.ex"
    locked.chmod(0)
    try:
        with locked.open("rb"):
            pytest.skip("running as root: a mode-000 file is still readable, so it cannot be made unreadable")
    except PermissionError:
        pass
    try:
        summary = Indexer(root, load_config(root), embedder=minilm).run()
    finally:
        locked.chmod(0o644)
    assert _reasons(root)["lib/locked.ex"].startswith("unreadable (")
    assert summary.skipped.get("unreadable") == 1


def test_repository_of_only_vendored_code_says_so(repo_factory):
    root = repo_factory({"deps/jason/lib/jason.ex": GOOD, "node_modules/x/index.min.js": "a()\n",
                         "_build/dev/lib/app.ex": GOOD, "assets/app.min.js": "b()\n"})
    with pytest.raises(WorkspaceError) as caught:
        Indexer(root, load_config(root)).run()
    message = str(caught.value)
    assert "4 files" in message and "exclude" in message, message
