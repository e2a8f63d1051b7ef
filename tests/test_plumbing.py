"""The plumbing homes: git.py against a real repository, atomic.py, the language specs, the
search modes and the request fields both servers check."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from codekin import git as gitcmd
from codekin.atomic import write_atomic, write_json_atomic
from codekin.chunking.languages import language_for
from codekin.chunking.spec import BEAM, CPP, family_languages, spec_for
from codekin.errors import ArgumentError
from codekin.lsp.requests import parse_search
from codekin.mcp.arguments import InvalidArguments, parse
from codekin.modes import SEARCH_MODES, mode_of
from codekin.state import METRICS_DB, STATE_DIR, in_state_dir, state_path
from tests.conftest import git, make_repo


def test_git_helpers_read_a_real_repository(tmp_path: Path):
    root = make_repo(tmp_path / "repo", {"lib/a.ex": "defmodule A do\nend\n", ".gitignore": "build/\n"})
    assert gitcmd.head(root) == git(root, "rev-parse", "HEAD").strip()
    assert gitcmd.commit_time(root) is not None
    assert gitcmd.toplevel(root / "lib") == root.resolve()
    assert gitcmd.ls_files(root) == [".gitignore", "lib/a.ex"]
    assert gitcmd.tracks(root, "lib") and not gitcmd.tracks(root, STATE_DIR)
    assert gitcmd.ignored(root, ["build/x.o", "lib/a.ex"]) == {"build/x.o"}
    outside = tmp_path / "plain"
    outside.mkdir()
    assert (gitcmd.head(outside), gitcmd.toplevel(outside), gitcmd.ls_files(outside)) == ("", None, None)
    assert gitcmd.ignored(outside, ["x"]) == set()


def test_atomic_writes_leave_the_file_whole_and_no_temporary(tmp_path: Path):
    target = tmp_path / "hook"
    write_atomic(target, b"#!/bin/sh\n", mode=0o755)
    assert target.read_bytes() == b"#!/bin/sh\n" and os.access(target, os.X_OK)
    state = tmp_path / "state.json"
    write_json_atomic(state, {"b": 1, "a": 2}, sort_keys=False, durable=False)
    assert state.read_text(encoding="utf-8") == '{\n  "b": 1,\n  "a": 2\n}'
    with pytest.raises(TypeError):
        write_json_atomic(state, {"a": object()})
    assert state.read_text(encoding="utf-8").startswith('{\n  "b"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hook", "state.json"]


def test_the_state_layout_names_each_path_once(tmp_path: Path):
    assert state_path(tmp_path, METRICS_DB) == tmp_path / ".codekin" / "metrics.db"
    assert in_state_dir(".codekin") and in_state_dir(".codekin/queue.d/1.ev") and not in_state_dir(".codekinx")


def test_a_language_is_one_spec():
    assert family_languages(BEAM) == {"elixir", "erlang"} and family_languages(CPP) == {"c", "cpp"}
    assert (language_for("lib/a.exs"), language_for("src/x.hh"), language_for("notes.md")) == \
        ("elixir", "cpp", "markdown")
    elixir, markdown = spec_for("elixir"), spec_for("markdown")
    assert elixir.units is not None and elixir.delegation is not None and elixir.doc_cut == "elixir"
    assert (markdown.units, markdown.delegation, markdown.family, markdown.doc_cut) == (None, None, None, "")


def test_a_search_mode_knows_what_it_needs():
    assert SEARCH_MODES == ("dense", "lexical", "hybrid")
    assert [(mode_of(m).needs_vector, mode_of(m).uses_words) for m in SEARCH_MODES] == \
        [(True, False), (False, True), (True, True)]


@pytest.mark.parametrize(("field", "value", "phrase"), [
    ("limit", 0, "limit must be an integer between 1 and "),
    ("mode", "fuzzy", "mode must be one of dense, lexical, hybrid"),
])
def test_both_servers_say_the_same_about_a_common_field(field, value, phrase):
    with pytest.raises(ArgumentError) as lsp:
        parse_search(({"query": "x", field: value},))
    with pytest.raises(InvalidArguments) as mcp:
        parse("search", {"query": "x", field: value})
    assert phrase in str(lsp.value) and phrase in str(mcp.value)


def test_stemming_from_many_threads_gives_the_stems_of_one():
    """The language server stems on its query lanes and sync threads at once; the snowball
    stemmer keeps its word in itself, so unguarded it mixed words up (IndexError, wrong stems)."""
    import snowballstemmer

    from codekin.index.lexical import _stem, stem

    words = [f"{a}{b}ing" for a in "bcdfghklmnprstvw" for b in ("andl", "ompress", "etri", "ort", "eneral")]
    words += [f"{w}s" for w in words] + [f"{w}ness" for w in words] + [f"re{w}ly" for w in words]
    alone = snowballstemmer.stemmer("english")
    expected = [alone.stemWord(w) for w in words]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):  # a race: give it several chances
            _stem.cache_clear()
            assert list(pool.map(stem, words, chunksize=16)) == expected
