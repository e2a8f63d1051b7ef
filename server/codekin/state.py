"""The layout of `.codekin/` at the repository root: the one place its paths are spelled.

Every file codekin keeps for a repository lives below STATE_DIR; modules name the entries
here and build paths with `state_path(root, NAME)`.
"""

from __future__ import annotations

from pathlib import Path

STATE_DIR = ".codekin"

CONFIG_FILE = "config.toml"  # the repository's own settings (layered over the user's)
INDEX_STATE = "state.json"  # which vectors table is active, the model, the indexed head
LANCE_DIR = "index.lance"  # the LanceDB tables (chunks, one vectors table per model version)
SUMS_FILE = "index.sums.json"  # size, mtime and sha256 of the LanceDB files, for integrity checks
METRICS_DB = "metrics.db"  # runs, epochs, evaluations and embedding jobs
QUEUE_DB = "queue.db"  # the durable change queue
SPOOL_DIR = "queue.d"  # one record file per git hook event, drained into QUEUE_DB
HOOK_LOG = "logs/hooks.log"  # a failing git hook leaves one line here (hook_scripts/codekin-hook.sh)
JOBS_FILE = "jobs.json"  # the learning loop's last attempt and trained head
MODELS_DIR = "models"  # the model registry: one folder per version, active.json
ADAPTERS_DIR = "adapters"  # inside MODELS_DIR: query-side adapters, one folder each, active.json names the served one
RUNS_DIR = "runs"  # results of training children
TRIPLETS_FILE = "triplets.jsonl"  # `codekin triplets` writes here by default
DASHBOARD_FILE = "dashboard.html"  # `codekin dashboard` writes the report here by default
SERVE_SOCKET = "serve.sock"  # where a running `codekin serve` answers CLI searches (query_socket.py)

INDEX_LOCK = "index.lock"  # one index writer
SYNC_LOCK = "sync.lock"  # one `codekin sync` at a time
QUEUE_LOCK = "queue.lock"  # one reader of SPOOL_DIR at a time
REEMBED_LOCK = "reembed.lock"  # held while `codekin reembed` writes a new vectors table
TRAIN_LOCK = "train.lock"  # one training run per repository, across processes


def state_dir(root: Path | str) -> Path:
    return Path(root) / STATE_DIR


def state_path(root: Path | str, *names: str) -> Path:
    """A path below `.codekin/` of `root`: state_path(root, METRICS_DB)."""
    return Path(root).joinpath(STATE_DIR, *names)


def in_state_dir(rel: str) -> bool:
    """A repository-relative POSIX path that lies in `.codekin/` (or is it)."""
    return rel == STATE_DIR or rel.startswith(f"{STATE_DIR}/")
