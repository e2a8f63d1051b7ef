"""The first hour of a new user (issue 20): each friction, reproduced with the real `codekin`
command in temporary git repositories. One small repository is indexed once for the module
(a subfolder of an outer git repository, as `codekin index examples` is in a checkout)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from codekin.cli import main
from tests.conftest import git, make_repo
from tests.samples import CART, LEDGER, RETRY

pytestmark = pytest.mark.slow  # the real model: the index of the shared repository, the language servers

LATIN1 = "# caf\xe9 -- r\xe9sum\xe9\ndefmodule Shop.Latin do\n  def name, do: :latin\nend\n".encode("latin-1")


@pytest.fixture(scope="module")
def outer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An outer git repository whose `proj/` folder is indexed as its own root (with the default
    model: a user config left in the environment by another module must not choose it)."""
    root = make_repo(tmp_path_factory.mktemp("first_hour") / "outer", {
        "README.md": "outer\n", "proj/lib/cart.ex": CART, "proj/lib/retry.ex": RETRY,
        "proj/lib/ledger.ex": LEDGER, "proj/logo.png": b"\x89PNG\x00", "proj/lib/latin.ex": LATIN1,
    })
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("first_hour_xdg")))
        assert main(["index", str(root / "proj")]) == 0
    return root


@pytest.fixture
def proj(outer: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The indexed folder, as the current directory (in-process commands resolve from here)."""
    monkeypatch.chdir(outer / "proj")
    return outer / "proj"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# 1. .codekin/ never shows up in `git status`; status/doctor warn when it is tracked ----------------

def test_index_keeps_state_dir_out_of_git(outer):
    assert ".codekin/" in (outer / ".git/info/exclude").read_text().splitlines()
    assert ".codekin" not in git(outer, "status", "--porcelain", "--untracked-files=all")


def test_a_linked_worktree_uses_its_repository_exclude(tmp_path, capsys):
    main_repo = make_repo(tmp_path / "main", {"lib/cart.ex": CART})
    git(main_repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    assert cli(capsys, "hooks", "install", str(tmp_path / "wt"))[0] == 0
    assert ".codekin/" in (main_repo / ".git/info/exclude").read_text().splitlines()
    assert ".codekin" not in git(tmp_path / "wt", "status", "--porcelain", "--untracked-files=all")


def test_a_global_excludes_file_is_respected(tmp_path, capsys):
    root = make_repo(tmp_path / "repo", {"lib/cart.ex": CART})
    ignore = tmp_path / "global-ignore"
    ignore.write_text(".codekin/\n")
    git(root, "config", "core.excludesFile", str(ignore))
    before = (root / ".git/info/exclude").read_text()
    assert cli(capsys, "hooks", "install", str(root))[0] == 0
    assert (root / ".git/info/exclude").read_text() == before


def test_status_and_doctor_warn_when_git_tracks_state_dir(tmp_path, capsys):
    root = make_repo(tmp_path / "repo", {"lib/cart.ex": CART, ".codekin/config.toml": "[search]\nlimit = 5\n"})
    code, out, _ = cli(capsys, "status", str(root))
    assert code == 0 and "git tracks 1 file(s) under .codekin/" in out and "git rm -r --cached .codekin" in out
    code, out, _ = cli(capsys, "doctor", str(root), "--skip-model", "--json")
    check = next(c for c in json.loads(out) if c["name"] == "state dir")
    assert not check["ok"] and check["fix"] == "git rm -r --cached .codekin && git commit"


# 2. one root rule; "not enough" names the folder it scanned ------------------------------------

def test_triplets_use_the_indexed_folder_and_name_it(proj, capsys):
    code, _, err = cli(capsys, "triplets", "generate", "--lexical", "--count", "20")
    assert code == 1
    assert f"Not enough BEAM snippets in {proj}: found 3 files" in err


def test_status_from_a_subfolder_finds_the_index(proj, monkeypatch, capsys):
    monkeypatch.chdir(proj / "lib")
    code, out, _ = cli(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["root"] == str(proj)


# 7. a reader that stops early ends the command quietly ----------------------------------------

def test_closed_pipe_exits_quietly(proj):
    """The reader is gone before codekin writes (`| true`): no traceback, exit 141 like `cat`."""
    shell = f"{sys.executable} -m codekin hooks status | true; echo rc=${{PIPESTATUS[0]}}"  # a light command
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=proj, timeout=120)
    assert (out.stderr, out.stdout) == ("", "rc=141\n")


# 8. arguments are validated; an empty filter is named with what exists --------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--limit", "0"], "--limit must be 1 or more, got 0"),
    (["--limit", "-3"], "--limit must be 1 or more, got -3"),
    (["--min-similarity", "2"], "--min-similarity must be between -1 and 1"),
    (["--lang", "elixirr"], "--lang elixirr matches no indexed file\n  hint: the index holds: elixir"),
    (["--path", "src/**"], "--path 'src/**' matches no indexed file\n  hint: globs are repository-relative, "
                           "e.g. 'lib/**'"),
])
def test_bad_arguments_and_empty_filters(proj, capsys, args, message):
    code, out, err = cli(capsys, "search", "cart", "--mode", "lexical", *args)
    assert code in (2, 3) and out == "" and message in err


# 6. + 12. scores shown are the ranking; paths open from where the user stands ----------------

def test_scores_follow_the_ranking_and_json_keeps_cosine(proj, capsys):
    code, out, _ = cli(capsys, "search", "add an item to the cart total", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) >= 3
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1 <= h["cosine"] <= 1 and h["root"] == str(proj) for h in hits)
    assert hits[0]["path"].startswith("lib/")


def test_human_paths_are_relative_to_the_current_directory(proj, monkeypatch, capsys):
    monkeypatch.chdir(proj / "lib")
    code, out, _ = cli(capsys, "search", "retry with backoff", "--mode", "lexical", "--limit", "1")
    assert code == 0 and out.splitlines()[0].split()[2].startswith("retry.ex:")
    monkeypatch.chdir(proj.parent)
    code, out, _ = cli(capsys, "search", "retry with backoff", "--mode", "lexical", "--limit", "1",
                       "--repo", "proj")
    assert code == 0 and out.splitlines()[0].split()[2].startswith(os.path.join("proj", "lib", "retry.ex:"))


# 9. hooks: "not installed" when they never were, "restored" after uninstall, no FAIL lines ----

def test_hooks_status_and_uninstall_say_what_happened(tmp_path, capsys):
    root = make_repo(tmp_path / "repo", {"lib/cart.ex": CART})
    own = root / ".git/hooks/post-commit"
    own.write_text("#!/bin/sh\necho mine\n")
    own.chmod(0o755)
    code, out, _ = cli(capsys, "hooks", "status", str(root))
    assert code == 1 and "not installed" in out and "FAIL" not in out and "replaced" not in out
    code, out, _ = cli(capsys, "hooks", "status", str(root), "--json")
    problem = next(h["problem"] for h in json.loads(out)["hooks"] if h["name"] == "post-commit")
    assert problem.startswith("not installed (a hook of your own is there")
    assert cli(capsys, "hooks", "install", str(root))[0] == 0
    code, out, _ = cli(capsys, "hooks", "uninstall", str(root))
    assert code == 0 and "FAIL" not in out and "removed post-commit, restored the original" in out
    assert own.read_text() == "#!/bin/sh\necho mine\n"


# 10. an interrupted first index is not "No index": how far it got, and that a rerun resumes ----

def test_status_after_an_interrupted_first_index(proj, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(proj, copy)
    (copy / ".codekin/state.json").unlink()  # a first `codekin index` stopped before its last write
    code, out, _ = cli(capsys, "status", str(copy))
    assert code == 0 and out.startswith(f"Indexing of {copy} was interrupted: 5 files and 5 chunks are kept. "
                                        f"Run `codekin index {copy}` to resume from there.")


# 11. skipped files are named, and index and status count files alike ---------------------------

def test_skipped_files_are_named(proj, capsys):
    code, out, _ = cli(capsys, "index", str(proj), "--json")
    summary = json.loads(out)
    expected = {"lib/latin.ex": "not UTF-8 (byte 5)", "logo.png": "binary"}
    assert code == 0 and summary["skipped_files"] == expected and summary["files"] == 5
    code, out, _ = cli(capsys, "status", "--skipped")
    assert code == 0 and "  files: 5 (3 with chunks), 2 skipped, chunks: 5" in out
    assert "  skipped lib/latin.ex: not UTF-8 (byte 5)\n  skipped logo.png: binary" in out
    code, out, _ = cli(capsys, "status", "--json")
    assert json.loads(out)["skipped_files"] == expected


# 4. which model answers, which is active, and rollbacks that are really promotions -------------

def test_model_state_after_promote_and_rollback(proj, tmp_path, capsys):
    from codekin.index.store import IndexStore
    from codekin.models.registry import ModelRegistry
    from tests.test_registry import add_version

    copy = tmp_path / "copy"
    shutil.copytree(proj, copy)
    registry = ModelRegistry(copy)
    v1, v2 = add_version(registry), add_version(registry, status="rejected")
    code, out, err = cli(capsys, "models", "rollback", v1, "--repo", str(copy))
    assert code == 9 and "not rolling back to v1: v1 is newer than the active base" in err and "--force" in err
    code, out, _ = cli(capsys, "models", "promote", v1, "--repo", str(copy))
    assert code == 0 and "Until then queries use base's vectors, but v1 is the active model: run " \
                          "`codekin reembed`" in out
    code, out, _ = cli(capsys, "status", str(copy))
    assert "  note: queries use base's vectors, but v1 is the active model: run `codekin reembed`" in out
    code, out, _ = cli(capsys, "doctor", str(copy), "--skip-model", "--json")
    index = next(c for c in json.loads(out) if c["name"] == "index")
    assert not index["ok"] and index["fix"] == "codekin reembed"
    code, _, err = cli(capsys, "models", "rollback", v2, "--repo", str(copy))
    assert code == 9 and "not rolling back to v2: v2 was rejected" in err
    assert cli(capsys, "models", "rollback", v2, "--force", "--repo", str(copy))[0] == 0
    assert cli(capsys, "models", "rollback", v1, "--repo", str(copy))[0] == 0
    IndexStore(copy).write_state(model=str(registry.model_path(v1)))  # what `codekin reembed` leaves
    code, out, _ = cli(capsys, "status", str(copy), "--json")
    status = json.loads(out)
    assert (status["answering"], status["active_model"], status["model_note"]) == ("v1", "v1", "")
    assert "  model: v1\n" in cli(capsys, "status", str(copy))[1]


# 5. a small held-out split falls back to BEAM-only (as `train` does) and says so ---------------

def test_triplets_eval_split_falls_back_to_beam_only(tmp_path, capsys):
    from tests.test_triplets import polyglot_files

    root = make_repo(tmp_path / "poly", polyglot_files(beam=6, cpp=3))
    code, out, err = cli(capsys, "triplets", "generate", "--repo", str(root), "--lexical", "--count", "30",
                         "--split", "eval")
    assert code == 0 and "the held-out split cannot meet the language ratios: generating BEAM-only" in err
    assert "  C++ ratio: 0.0%" in out and "Generated 21 triplets" in out
    beam_only = make_repo(tmp_path / "beam", polyglot_files(beam=6, cpp=0))
    code, out, err = cli(capsys, "triplets", "generate", "--repo", str(beam_only), "--lexical", "--count", "20")
    assert code == 0 and "  C++ ratio: 0.0%" in out and "only 1 C/C++ files" in err


# 17. `codekin serve` without an index offers to index; codekin.index; index.auto ----------------

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "codekin", "serve"],
                            server_env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})


@pytest.fixture
def unindexed(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "fresh", {"lib/cart.ex": CART, "lib/retry.ex": RETRY})


@pytest_lsp.fixture(config=SERVER)
async def offered(lsp_client: LanguageClient, unindexed: Path):
    lsp_client.offers = []

    @lsp_client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def show_message_request(params: types.ShowMessageRequestParams) -> types.MessageActionItem:
        lsp_client.offers.append(params)
        return params.actions[0]  # "Index"

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(params: None) -> None:
        """The server asks the editor to re-request lenses once the index exists."""

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=unindexed.as_uri()))
    yield lsp_client
    await lsp_client.shutdown_session()


async def indexed_status(client: LanguageClient) -> dict:
    """`codekin.status` once the server's own indexing has finished (or the last answer, after 150 s)."""
    status: dict = {}
    for _ in range(600):
        status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="codekin.status"))
        if status["indexed"]:
            break
        await asyncio.sleep(0.25)
    return status


@pytest.mark.asyncio
async def test_serve_offers_to_index_and_indexes_on_yes(offered, unindexed):
    status = await indexed_status(offered)
    assert [o.actions[0].title for o in offered.offers] == ["Index"]
    assert "has no index yet" in offered.offers[0].message and "index.auto = true" in offered.offers[0].message
    assert status["indexed"] and status["chunks"] > 0
    again = await offered.workspace_execute_command_async(types.ExecuteCommandParams(command="codekin.index"))
    assert again["indexed"] and again["files"] == 2 and again["message"].startswith("indexed 2 files")


def test_index_auto_is_a_user_setting(unindexed, monkeypatch, tmp_path):
    from codekin.config import load_config
    from codekin.errors import ConfigError

    (unindexed / ".codekin").mkdir()
    (unindexed / ".codekin/config.toml").write_text("[index]\nauto = true\n")
    with pytest.raises(ConfigError, match="index.auto may only be set in your own config"):
        load_config(unindexed)
    (unindexed / ".codekin/config.toml").unlink()
    user = tmp_path / "xdg"
    (user / "codekin").mkdir(parents=True)
    (user / "codekin/config.toml").write_text("[index]\nauto = true\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user))
    assert load_config(unindexed).index.auto is True


AUTO_XDG = Path(tempfile.gettempdir()) / f"codekin-first-hour-auto-{os.getpid()}"  # the server's user config
AUTO_SERVER = ClientServerConfig(server_command=SERVER.server_command,
                                 server_env={**(SERVER.server_env or {}), "XDG_CONFIG_HOME": str(AUTO_XDG)})


@pytest.fixture
def auto_user_config():
    (AUTO_XDG / "codekin").mkdir(parents=True, exist_ok=True)
    (AUTO_XDG / "codekin/config.toml").write_text("[index]\nauto = true\n")
    yield
    shutil.rmtree(AUTO_XDG, ignore_errors=True)


@pytest_lsp.fixture(config=AUTO_SERVER)
async def auto_client(lsp_client: LanguageClient, auto_user_config, unindexed: Path):
    lsp_client.offers = []

    @lsp_client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def show_message_request(params: types.ShowMessageRequestParams) -> None:
        lsp_client.offers.append(params)

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(params: None) -> None:
        """Sent once the index exists."""

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=unindexed.as_uri()))
    yield lsp_client
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_index_auto_indexes_on_open_without_asking(auto_client):
    status = await indexed_status(auto_client)
    assert status["indexed"] and status["chunks"] > 0 and auto_client.offers == []
