"""Bad config, concurrent training, no network, a full disk and the dashboard's address:
each ends in a clear answer and leaves the index and the models intact."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from codekin.cli import main as cli_main
from codekin.config import load_config
from codekin.indexer import Indexer
from tests.reliability.harness import (
    CrashBench,
    base_env,
    check_index,
    codekin_command,
    index_rows,
    initial_files,
    make_repo,
)

pytestmark = [pytest.mark.reliability]


# -- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("toml", "expected"), [
    ("[index]\nmax_file_byte = 10\n", "unknown key index.max_file_byte"),
    ("[index]\nmax_file_bytes = \"big\"\n", "index.max_file_bytes must be int"),
    ("[search]\nmode = \"fuzzy\"\n", "search.mode must be one of dense, lexical, hybrid"),
    ("[indexing]\nexclude = []\n", "unknown section [indexing]"),
    ("[index\nexclude = []\n", "invalid config file"),
    ("[model]\ntrust_remote_code = true\n", "model.trust_remote_code may only be set in your own config"),
    ("[model]\nprimary = \"/tmp/evil-model\"\n", "model.primary may only be set in your own config"),
    ("[model]\nfallback = \"attacker/model\"\n", "model.fallback may only be set in your own config"),
    # issue 19 item 8: every number has a range, every float is finite, globs and paths stay inside
    ("[model]\nmax_tokens = -1\n", "model.max_tokens must be in [8, 131072], got -1"),
    ("[search]\nlimit = -5\n", "search.limit must be in [1, 10000], got -5"),
    ("[search]\nlimit = 0\n", "search.limit must be in [1, 10000], got 0"),
    ("[search]\ncontext_weight = nan\n", "search.context_weight must be a finite number, got nan"),
    ("[search]\nlexical_weight = 1e308\n", "search.lexical_weight must be in [0.0, 100.0], got 1e+308"),
    ("[search]\nname_weight = -1e308\n", "search.name_weight must be in [0.0, 100.0], got -1e+308"),
    ("[search]\nprior_test = inf\n", "search.prior_test must be a finite number, got inf"),
    ("[index]\nmax_file_bytes = -1\n", "index.max_file_bytes must be in [1, 1099511627776], got -1"),
    ("[index]\ninclude = [\"../other/**\"]\n", "index.include: '../other/**' reaches outside the repository"),
    ("[index]\ninclude = [\"/etc/**\"]\n", "index.include: '/etc/**' reaches outside the repository"),
    ("[model]\nbackend = \"torch\"\n", "model.backend may only be set in your own config"),
    ("[schedule]\ntriplets_file = \"/tmp/t.jsonl\"\n", "schedule.triplets_file: '/tmp/t.jsonl' is outside"),
    ("[schedule]\ntriplets_file = \"../t.jsonl\"\n", "schedule.triplets_file: '../t.jsonl' is outside"),
])
def test_bad_repository_config_is_a_clear_cli_error(repo_factory, capsys, toml: str, expected: str):
    root = repo_factory({"lib/a.ex": "defmodule A do\n  def a, do: 1\nend\n", ".codekin/config.toml": toml})
    assert cli_main(["index", str(root)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert str(root / ".codekin" / "config.toml") in err or "invalid config file" in err  # names the file
    assert not (root / ".codekin" / "state.json").exists()


def test_user_config_may_set_backend_and_paths_outside(repo_factory, tmp_path, monkeypatch):
    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n",
                         ".codekin/config.toml": "[schedule]\ntriplets_file = \"data/t.jsonl\"\n"})
    assert load_config(root).schedule.triplets_file == "data/t.jsonl"  # inside the repository: allowed
    (tmp_path / "xdg" / "codekin").mkdir(parents=True)
    (tmp_path / "xdg" / "codekin" / "config.toml").write_text(
        "[model]\nbackend = \"torch\"\n[schedule]\ntriplets_file = \"/srv/curated.jsonl\"\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = load_config(root.parent)
    assert (config.model.backend, config.schedule.triplets_file) == ("torch", "/srv/curated.jsonl")


def test_user_config_may_opt_in_to_remote_code(repo_factory, tmp_path, monkeypatch):
    root = repo_factory({"lib/a.ex": "defmodule A do\nend\n"})
    (tmp_path / "xdg" / "codekin").mkdir(parents=True)
    (tmp_path / "xdg" / "codekin" / "config.toml").write_text("[model]\ntrust_remote_code = true\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_config(root).model.trust_remote_code is True


# -- concurrency -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.storm  # two real training runs (about 16 s): CI runs it after the README's command
@pytest.mark.timeout(300)
def test_two_trainings_at_once_one_is_refused(crash_bench: CrashBench, tmp_path: Path):
    root = make_repo(tmp_path / "two", {"README.md": "x\n", ".gitignore": ".codekin/\n"})
    _, triplets = crash_bench._train_setup()
    command = crash_bench.train_command(root, triplets)
    procs = [subprocess.Popen(command, env=crash_bench.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=280) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 10], outs
    refused = outs[[p.returncode for p in procs].index(10)][1]
    assert "training already running (pid " in refused and "hint:" in refused, refused


# -- network -----------------------------------------------------------------------------------
def _unshare_works() -> str:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"unshare -n is not permitted here: {probe.stderr.strip()}"


NO_NETWORK_SCRIPT = """
import sys
from codekin.cli import main
root = sys.argv[1]
assert main(["index", root]) == 0
assert main(["search", "retry the worker", "--repo", root, "--limit", "3"]) == 0
open(root + "/lib/kin/late.ex", "w").write("defmodule Late do\\n  def late(x), do: x\\nend\\n")
assert main(["sync", root]) == 0
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_index_search_and_sync_work_without_a_network(tmp_path: Path):
    """The real default model, with HF_HUB_OFFLINE unset: nothing may even try the network."""
    reason = _unshare_works()
    if reason:
        pytest.skip(reason)
    root = make_repo(tmp_path / "offline", initial_files(6))
    env = {k: v for k, v in base_env(tmp_path / "xdg").items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", NO_NETWORK_SCRIPT, str(root)], env=env,
                         capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Indexed 7 files" in out.stdout and "1." in out.stdout and "Synced 1 changed paths" in out.stdout, out.stdout


def test_dashboard_binds_localhost_only(tmp_path: Path):
    if importlib.util.find_spec("codekin.dashboard.server") is None:
        pytest.skip("codekin.dashboard.server does not exist yet")
    from codekin.dashboard.server import DashboardServer

    root = make_repo(tmp_path / "dash", {"README.md": "x\n"})
    dashboard = DashboardServer(root).start()
    try:
        host, port = dashboard._httpd.server_address[:2]
        assert host == "127.0.0.1"
        addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        for address in addresses - {"127.0.0.1"}:
            with socket.socket() as probe, pytest.raises(OSError):
                probe.settimeout(2)
                probe.connect((address, port))
    finally:
        dashboard.stop()


# -- full disk ---------------------------------------------------------------------------------
@pytest.fixture
def tmpfs_factory(tmp_path: Path):
    """mount(size) -> a fresh tmpfs of that size (e.g. "4m"); skips when mounting is not possible."""
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        target = tmp_path / f"tmpfs-{len(mounts)}"
        target.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")
        mounts.append(target)
        return target

    yield mount
    for target in mounts:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def small_tmpfs(tmpfs_factory) -> Path:
    return tmpfs_factory("4m")


def _fill(directory: Path, leave: int = 16 * 1024) -> Path:
    """Take all but `leave` bytes of the file system."""
    filler = directory / "filler.bin"
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_full_disk_during_index_is_a_clear_error_and_keeps_the_index(crash_bench: CrashBench, crash_xdg: Path,
                                                                       small_tmpfs: Path):
    root = make_repo(small_tmpfs / "repo", initial_files(6))
    Indexer(root, load_config(root), embedder=crash_bench.embedder).run()
    before = index_rows(root)
    for i in range(40):
        (root / f"lib/kin/grow_{i}.ex").write_text(
            f"defmodule Grow{i} do\n" + "".join(f"  def f{j}(x), do: x + {i * j}\n" for j in range(60)) + "end\n")
    filler = _fill(small_tmpfs)
    out = subprocess.run(codekin_command("index", str(root)), env=crash_bench.env, capture_output=True, text=True,
                         timeout=280)
    assert out.returncode != 0, out.stdout
    assert "codekin: error: the disk is full" in out.stderr and out.returncode == 28, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    filler.unlink()
    for i in range(40):
        (root / f"lib/kin/grow_{i}.ex").unlink()
    assert check_index(root, crash_bench.embedder, before) == []  # the previous index answers as before


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("free_kb", [16, 3072], ids=["at-start", "at-checkpoint"])
def test_full_disk_during_training_is_a_clear_error_and_keeps_the_model(crash_bench: CrashBench, crash_xdg: Path,
                                                                          tmpfs_factory, free_kb: int):
    """16 KB free: SQLite (metrics.db) fails first; 3 MB: the first checkpoint (4 MB of weights) fails."""
    from codekin.models.registry import ModelRegistry
    from tests.reliability.harness import check_active_model, temp_leftovers
    from tests.reliability.reembed_trials import register_version, tiny_model_for

    disk = tmpfs_factory("24m")
    root = make_repo(disk / "repo", {"README.md": "train here\n", ".gitignore": ".codekin/\n"})
    version = register_version(root, tiny_model_for(crash_bench, 1), promote=True)
    _, triplets = crash_bench._train_setup()  # outside the tmpfs
    filler = _fill(disk, free_kb * 1024)
    out = subprocess.run(crash_bench.train_command(root, triplets), env=crash_bench.env, capture_output=True,
                         text=True, timeout=280)
    assert out.returncode == 28, (out.returncode, out.stderr[-3000:])
    assert "codekin: error: the disk is full" in out.stderr and "hint:" in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert ModelRegistry(root).active_ref() == version
    assert check_active_model(root, "after the full disk") == []
    filler.unlink()
    assert temp_leftovers(root) == []
