"""Which files are indexed, and how bad files are skipped with reasons."""

from __future__ import annotations

import os

import pytest

from codekin.config import IndexConfig, load_config
from codekin.errors import ConfigError
from codekin.workspace import UnreadableFile, read_text, scan


def test_scan_lists_tracked_and_untracked_but_not_ignored(repo_factory):
    root = repo_factory({"lib/a.ex": "x", ".gitignore": "_build/\nsecret.ex\n", "_build/b.ex": "y"})
    (root / "new.ex").write_text("z")
    (root / "secret.ex").write_text("s")
    paths = [f.path for f in scan(root, IndexConfig()).files]
    assert paths == [".gitignore", "lib/a.ex", "new.ex"]


def test_scan_without_git_walks_the_directory(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.erl").write_text("-module(a).")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.erl").write_text("-module(b).")
    assert [f.path for f in scan(tmp_path, IndexConfig()).files] == ["src/a.erl"]


def test_include_exclude_globs(repo_factory):
    root = repo_factory({"lib/a.ex": "x", "test/a_test.exs": "y", "deps/x/lib/x.ex": "z"})
    found = scan(root, IndexConfig(include=["lib/**", "**/*.exs"]))
    assert [f.path for f in found.files] == ["lib/a.ex", "test/a_test.exs"]


def test_oversize_and_symlinks_are_skipped_with_reasons(repo_factory, tmp_path):
    outside = tmp_path / "outside.ex"
    outside.write_text("secret")
    root = repo_factory({"big.ex": "x" * 2000, "ok.ex": "y"})
    os.symlink(outside, root / "link.ex")
    found = scan(root, IndexConfig(max_file_bytes=1000))
    assert [f.path for f in found.files] == ["ok.ex"]
    assert found.skipped["big.ex"].startswith("too large")
    assert found.skipped["link.ex"] == "symlink (not followed)"


@pytest.mark.parametrize(("content", "reason"), [
    (b"\x00\x01\x02binary", "binary"),
    (b"caf\xe9 au lait", "not UTF-8 (byte 3)"),
    (b"   \n\n", "empty"),
])
def test_unreadable_files_raise_with_reason(tmp_path, content, reason):
    (tmp_path / "f.ex").write_bytes(content)
    with pytest.raises(UnreadableFile, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_text(tmp_path, "f.ex")


def test_bom_and_crlf_are_normalised(tmp_path):
    (tmp_path / "f.ex").write_bytes(b"\xef\xbb\xbfdef a\r\nend\r\n")
    assert read_text(tmp_path, "f.ex") == "def a\nend\n"


def test_repository_config_cannot_choose_the_model(tmp_path):
    (tmp_path / ".codekin").mkdir()
    (tmp_path / ".codekin" / "config.toml").write_text('[model]\ntrust_remote_code = true\n')
    with pytest.raises(ConfigError, match="may only be set in your own config"):
        load_config(tmp_path)


def test_invalid_config_names_the_key(tmp_path):
    (tmp_path / ".codekin").mkdir()
    (tmp_path / ".codekin" / "config.toml").write_text('[index]\nmax_file_bytes = "big"\n')
    with pytest.raises(ConfigError, match="index.max_file_bytes must be int"):
        load_config(tmp_path)
    (tmp_path / ".codekin" / "config.toml").write_text('[index]\nmax_fil_bytes = 3\n')
    with pytest.raises(ConfigError, match="unknown key index.max_fil_bytes"):
        load_config(tmp_path)


def test_layers_user_then_repo_then_overrides(tmp_path, monkeypatch):
    user = tmp_path / "xdg" / "codekin"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('[search]\nlimit = 5\nmode = "dense"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    repo = tmp_path / "repo"
    (repo / ".codekin").mkdir(parents=True)
    (repo / ".codekin" / "config.toml").write_text('[search]\nlimit = 7\n')
    config = load_config(repo, {"search": {"mode": "lexical", "limit": None}})
    assert (config.search.limit, config.search.mode) == (7, "lexical")
