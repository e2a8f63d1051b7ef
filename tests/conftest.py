"""Shared fixtures: real git repositories in tmp dirs, the real MiniLM model (session-wide)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's ~/.config/codekin."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env=env, check=True)
    return out.stdout


def make_repo(root: Path, files: dict[str, str | bytes], commit: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if commit and files:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
    return root


def index_words_only(root: Path):
    """Phase 1 only: `root` indexed and searchable by its words, no vectors yet; the run's result."""
    from codekin.config import load_config
    from codekin.indexer import Indexer

    indexer = Indexer(root, load_config(root))
    indexer.lexical_only = True
    return indexer.run()


@pytest.fixture
def repo_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def factory(files: dict[str, str | bytes], commit: bool = True) -> Path:
        return make_repo(tmp_path / f"repo{next(counter)}", files, commit)

    return factory


def copy_examples(dest: Path) -> Path:
    shutil.copytree(EXAMPLES, dest, ignore=shutil.ignore_patterns(".codekin"))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "examples")
    return dest


@pytest.fixture
def examples_repo(tmp_path: Path) -> Path:
    """A private git copy of examples/ (tests never write into the source tree)."""
    return copy_examples(tmp_path / "examples")


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (tiny models: OpenMP spinning on two shared cores
    makes them many times slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def minilm():
    """The real default model, loaded once for the session."""
    from codekin.config import ModelConfig
    from codekin.embedding import load_embedder

    return load_embedder(ModelConfig(device="cpu"))


@pytest.fixture(scope="session")
def indexed_examples(tmp_path_factory: pytest.TempPathFactory, minilm) -> Path:
    """examples/ indexed once with the real model; tests must treat it as read-only."""
    from codekin.config import load_config
    from codekin.indexer import Indexer

    root = copy_examples(tmp_path_factory.mktemp("indexed") / "examples")
    Indexer(root, load_config(root), embedder=minilm).run()
    return root
