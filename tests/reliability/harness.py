"""Crash trials shared by tests/reliability and benchmarks/reliability.py.

A trial changes a real git repository, starts the real `codekin` command in a subprocess,
SIGKILLs its process group at a random moment, then restarts the same work in-process
and checks the guarantees:

- index / sync: the chunk rows {(path, start_line, end_line, content_hash)} equal those of
  a fresh full index of the same tree, with no duplicate row, every chunk has a vector in
  the active table, a search answers; after a killed sync, every path the commits changed
  is still queued or already indexed (the queue lost nothing);
- train: the registry's active model loads and its files match the manifest's sha256;
- always: no temporary file or directory is left behind.

The crash trials run on a tiny random-init model (set as the primary model in the user
config under XDG_CONFIG_HOME): the mechanics under test do not depend on the model, and a
subprocess then spends its time in codekin's own writes rather than in loading MiniLM.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_DIR = ".codekin"
TEMP_MARKS = (".tmp", ".tmp-", ".old-", ".del-")
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
Row = tuple[str, int, int, str]
DEFAULT_WINDOWS = {"index": 3.0, "sync": 2.0, "train": 8.0}  # seconds a lock is held, roughly, on 2 busy cores


# -- environment -------------------------------------------------------------------------------
def base_env(xdg: Path) -> dict[str, str]:
    """What every codekin subprocess gets: offline, one thread, its own user config."""
    return {**os.environ, **GIT_IDENTITY, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
            "XDG_CONFIG_HOME": str(xdg)}


def codekin_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "codekin.cli", *args]


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          env={**os.environ, **GIT_IDENTITY}, check=check)


def make_tiny_model(dest: Path) -> Path:
    """The tests' tiny random-init model (tests/tiny_model.py), 128 tokens."""
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(dest, max_tokens=128)


def write_user_config(xdg: Path, model_dir: Path) -> Path:
    """The user's own config (trusted): the tiny model as primary and fallback, torch on CPU."""
    path = xdg / "codekin" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[model]\nprimary = "{model_dir}"\nfallback = "{model_dir}"\ndevice = "cpu"\n'
                    f'backend = "torch"\nmax_tokens = 128\n', encoding="utf-8")
    return path


def tiny_embedder(model_dir: Path):
    from codekin.config import ModelConfig
    from codekin.embedding import load_embedder

    return load_embedder(ModelConfig(primary=str(model_dir), fallback=str(model_dir), device="cpu",
                                     backend="torch", max_tokens=128))


# -- the repository under test -------------------------------------------------------------------
def _elixir(name: str, n: int, salt: int) -> str:
    funcs = "\n\n".join(
        f'  @doc "Step {i} of {name} ({salt})."\n  def step_{i}(state, value) do\n'
        f"    state\n    |> Map.update(:count, {i}, &(&1 + value * {i + salt}))\n"
        f"    |> Map.put(:last, {{:{name.lower()}, {i}}})\n  end" for i in range(n))
    return f"defmodule Kin.{name} do\n  @moduledoc \"{name} worker.\"\n  use GenServer\n\n{funcs}\nend\n"


def _erlang(name: str, n: int, salt: int) -> str:
    funcs = "\n\n".join(f"f{i}(X) ->\n    case X of\n        {i} -> {{ok, {salt}}};\n        _ -> X * {i}\n    end."
                        for i in range(n))
    exports = ", ".join(f"f{i}/1" for i in range(n))
    return f"-module({name}).\n-export([{exports}]).\n\n{funcs}\n"


def _cpp(name: str, n: int, salt: int) -> str:
    funcs = "\n\n".join(f"static int {name}_{i}(int x) {{\n    int y = x * {i + salt};\n    return y + {i};\n}}"
                        for i in range(n))
    return f"#include <erl_nif.h>\n\n{funcs}\n"


def initial_files(count: int = 24) -> dict[str, str]:
    files: dict[str, str] = {".gitignore": f"{STATE_DIR}/\n"}
    for i in range(count):
        kind = i % 3
        if kind == 0:
            files[f"lib/kin/worker_{i}.ex"] = _elixir(f"Worker{i}", 4 + i % 5, 0)
        elif kind == 1:
            files[f"src/kin_{i}.erl"] = _erlang(f"kin_{i}", 3 + i % 4, 0)
        else:
            files[f"c_src/nif_{i}.cpp"] = _cpp(f"nif_{i}", 3 + i % 4, 0)
    return files


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def mutate(root: Path, rng: random.Random, salt: int) -> None:
    """Edit, add, delete and rename a few files, then commit (the hooks, if installed, run)."""
    tracked = [p for p in git(root, "ls-files").stdout.split("\n") if p and p.endswith((".ex", ".erl", ".cpp"))]
    for rel in rng.sample(tracked, min(len(tracked), rng.randint(2, 6))):
        path = root / rel
        name = path.stem
        if rel.endswith(".ex"):
            path.write_text(_elixir(name.title().replace("_", ""), rng.randint(2, 8), salt), encoding="utf-8")
        elif rel.endswith(".erl"):
            path.write_text(_erlang(name, rng.randint(2, 6), salt), encoding="utf-8")
        else:
            path.write_text(_cpp(name, rng.randint(2, 6), salt), encoding="utf-8")
    new = root / f"lib/kin/added_{salt}.ex"
    new.parent.mkdir(parents=True, exist_ok=True)
    new.write_text(_elixir(f"Added{salt}", rng.randint(1, 5), salt), encoding="utf-8")
    if len(tracked) > 12 and rng.random() < 0.5:
        git(root, "rm", "-q", "-f", rng.choice(tracked))
    if rng.random() < 0.4:
        source = rng.choice([p for p in tracked if (root / p).exists()])
        git(root, "mv", source, str(Path(source).with_name(f"moved_{salt}{Path(source).suffix}")))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"change {salt}")


# -- what the index holds ----------------------------------------------------------------------
def index_rows(root: Path) -> list[Row]:
    from codekin.index.store import IndexStore

    table = IndexStore(root).load_chunks()
    return sorted(zip(table.column("path").to_pylist(), table.column("start_line").to_pylist(),
                      table.column("end_line").to_pylist(), table.column("content_hash").to_pylist(), strict=True))


def fresh_rows(root: Path, embedder: Any) -> list[Row]:
    """The rows of a fresh full index of `root`'s working tree (indexed in a copy)."""
    from codekin.config import load_config
    from codekin.indexer import Indexer

    with tempfile.TemporaryDirectory(prefix="codekin-fresh-") as tmp:
        copy = Path(tmp) / "copy"
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns(STATE_DIR))
        Indexer(copy, load_config(copy), embedder=embedder).run()
        return index_rows(copy)


def temp_leftovers(root: Path) -> list[str]:
    """Temporary files and directories codekin left under .codekin/ (outside LanceDB's own)."""
    state = root / STATE_DIR
    found = []
    for directory, dirnames, filenames in os.walk(state):
        if directory.endswith(".lance") or ".lance/" in directory:
            continue  # LanceDB's own layout: checked by its size instead
        for name in [*dirnames, *filenames]:
            if name.startswith(TEMP_MARKS[1:]) or name.endswith(TEMP_MARKS[0]) or name.startswith("result-"):
                found.append(str(Path(directory, name).relative_to(root)))
    return sorted(found)


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def check_index(root: Path, embedder: Any, expected: list[Row]) -> list[str]:
    """What is wrong with the index of `root` compared with `expected` rows ([] when nothing)."""
    from codekin.config import load_config
    from codekin.engine import Engine
    from codekin.index.store import IndexStore

    problems = []
    rows = index_rows(root)
    if len(rows) != len(set(rows)):
        problems.append(f"{len(rows) - len(set(rows))} duplicate chunk rows")
    if set(rows) != set(expected):
        missing, extra = set(expected) - set(rows), set(rows) - set(expected)
        problems.append(f"rows differ from a fresh index: {len(missing)} missing (e.g. {sorted(missing)[:1]}), "
                        f"{len(extra)} extra (e.g. {sorted(extra)[:1]})")
    store = IndexStore(root)
    key = store.state()["active_key"]
    unembedded = {r[3] for r in rows} - store.vector_hashes(key)
    if unembedded:
        problems.append(f"{len(unembedded)} chunks without a vector in vectors_{key}")
    files = set(store.file_records())
    expected_paths = {r[0] for r in expected}
    if not expected_paths <= files:
        problems.append(f"files table misses {sorted(expected_paths - files)[:3]}")
    hits = Engine(root, load_config(root), embedder=embedder).search("update the state count", limit=3)
    if not hits:
        problems.append("a search found nothing")
    leftovers = temp_leftovers(root)
    if leftovers:
        problems.append(f"temporary files left: {leftovers[:5]}")
    return problems


def queued_paths(root: Path) -> tuple[set[str], bool]:
    """Paths waiting in the queue (database rows and hook records not yet ingested), and
    whether a full scan is queued; read without changing anything."""
    import sqlite3

    from codekin.queue import parse_record

    paths: set[str] = set()
    full = False
    db = root / STATE_DIR / "queue.db"
    if db.is_file():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            paths |= {os.fsdecode(p) for (p,) in conn.execute("SELECT path FROM changes")}
            full = conn.execute("SELECT 1 FROM meta WHERE key = 'scan_seq'").fetchone() is not None
        conn.close()
    for record in (root / STATE_DIR / "queue.d").glob("*.ev"):
        parsed = parse_record(record.read_bytes())
        paths |= set(parsed.paths)
        full = full or parsed.full_scan
    return paths, full


def lost_paths(root: Path, changed: set[str]) -> list[str]:
    """Changed paths that are neither queued nor already indexed as they are now."""
    from codekin.index.store import IndexStore

    queued, full = queued_paths(root)
    if full:
        return []
    records = IndexStore(root).file_records()
    lost = []
    for rel in sorted(changed - queued):
        path = root / rel
        record = records.get(rel)
        if not path.exists():
            if record is not None:
                lost.append(rel)
        elif record is None or (record.size, record.mtime_ns) != (path.stat().st_size, path.stat().st_mtime_ns):
            lost.append(rel)
    return lost


# -- killing -------------------------------------------------------------------------------------
@dataclass
class Kill:
    delay: float  # seconds after the trigger
    killed: bool  # False: the command ended before the kill came
    triggered: bool  # False: the trigger was never seen before the command ended
    seconds: float  # from start to death
    returncode: int | None


def lock_held(path: Path) -> bool:
    """codekin's flock files hold the holder's pid while held (and are emptied on release)."""
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def run_and_kill(command: list[str], env: dict[str, str], trigger: Callable[[], bool], delay: float,
                 log: Path, timeout: float = 300.0) -> Kill:
    """Start `command` in its own process group; `delay` s after `trigger()` first holds,
    SIGKILL the whole group (the CLI and any child it started)."""
    started = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    triggered = False
    try:
        while proc.poll() is None and time.monotonic() - started < timeout:
            if trigger():
                triggered = True
                break
            time.sleep(0.001)
        if triggered and delay > 0:
            end = time.monotonic() + delay
            while proc.poll() is None and time.monotonic() < end:
                time.sleep(min(0.002, max(0.0, end - time.monotonic())))
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        _reap_group(proc.pid)
    return Kill(delay, killed, triggered, time.monotonic() - started, proc.returncode)


def _reap_group(pgid: int, timeout: float = 60.0) -> None:
    """Return once every process of the killed group is gone: a child blocked in fsync dies
    only when the call returns, and until then it still holds its locks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise RuntimeError(f"process group {pgid} survived SIGKILL for {timeout} s")


# -- trials ------------------------------------------------------------------------------------
@dataclass
class Trial:
    operation: str
    number: int
    kill: Kill | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "number": self.number, "ok": self.ok, "problems": self.problems,
                "kill": self.kill.__dict__ if self.kill else None}


@dataclass
class CrashBench:
    """One workspace (repository + user config + tiny model) for a series of crash trials."""

    work: Path
    model_dir: Path
    embedder: Any
    rng: random.Random
    trials: list[Trial] = field(default_factory=list)
    calibration: dict[str, float] = field(default_factory=dict)  # operation -> seconds the lock was held
    calibrate: bool = True  # False: kill within DEFAULT_WINDOWS instead of timing one clean run first
    index_growth: dict[str, list[int]] = field(default_factory=dict)  # operation -> index.lance bytes per trial

    @classmethod
    def create(cls, work: Path, seed: int = 7) -> CrashBench:
        work.mkdir(parents=True, exist_ok=True)
        model_dir = make_tiny_model(work / "tiny")
        write_user_config(work / "xdg", model_dir)  # in-process runs must read it too (XDG_CONFIG_HOME)
        return cls(work, model_dir, tiny_embedder(model_dir), random.Random(seed))

    @property
    def env(self) -> dict[str, str]:
        return base_env(self.work / "xdg")

    def log(self, name: str) -> Path:
        return self.work / f"{name}.log"

    def _repo(self, name: str, hooks: bool = False) -> Path:
        from codekin.config import load_config
        from codekin.indexer import Indexer

        root = self.work / name
        if not root.is_dir():
            make_repo(root, initial_files())
            Indexer(root, load_config(root), embedder=self.embedder).run()
            if hooks:
                from codekin import githooks

                githooks.install(root)
        return root

    def _delay(self, operation: str) -> float:
        return self.rng.uniform(0.0, 1.1 * self.calibration.get(operation, 2.0))

    def _calibrate(self, operation: str, command: list[str], lock: Path, prepare: Callable[[], None]) -> None:
        """Time one uninterrupted run from taking the lock to the end: the window kills aim at."""
        if operation in self.calibration:
            return
        if not self.calibrate:
            self.calibration[operation] = DEFAULT_WINDOWS[operation]
            return
        prepare()
        self.calibration[operation] = self.time_with_lock(operation, command, lock)

    def time_with_lock(self, operation: str, command: list[str], lock: Path) -> float:
        """Run `command` to its end; seconds from its taking `lock` to its exit (1.0 if never seen)."""
        with self.log(operation).open("ab") as out:
            proc = subprocess.Popen(command, env=self.env, stdout=out, stderr=out)
        taken = None
        while proc.poll() is None:
            if taken is None and lock_held(lock):
                taken = time.monotonic()
            time.sleep(0.001)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed (exit {proc.returncode}): see {self.log(operation)}")
        return time.monotonic() - taken if taken else 1.0

    # -- index ---------------------------------------------------------------------------
    def index_trial(self) -> Trial:
        from codekin.config import load_config
        from codekin.indexer import Indexer

        root = self._repo("index-repo")
        number = sum(t.operation == "index" for t in self.trials) + 1
        command = codekin_command("index", str(root))
        lock = root / STATE_DIR / "index.lock"
        self._calibrate("index", command, lock, lambda: mutate(root, self.rng, 10_000))
        mutate(root, self.rng, number)
        trial = Trial("index", number)
        trial.kill = run_and_kill(command, self.env, lambda: lock_held(lock), self._delay("index"),
                                  self.log("index"))
        try:
            Indexer(root, load_config(root), embedder=self.embedder).run()  # the restart
            trial.problems = check_index(root, self.embedder, fresh_rows(root, self.embedder))
        except Exception as exc:  # a failed restart is the failure this trial looks for
            trial.problems.append(f"restart failed: {exc.__class__.__name__}: {exc}")
        self.index_growth.setdefault("index", []).append(tree_bytes(root / STATE_DIR / "index.lance"))
        self.trials.append(trial)
        return trial

    # -- sync ----------------------------------------------------------------------------
    def sync_trial(self) -> Trial:
        from codekin.config import load_config
        from codekin.sync import drain

        root = self._repo("sync-repo", hooks=True)
        number = sum(t.operation == "sync" for t in self.trials) + 1
        command = codekin_command("sync", str(root), "--queue-only")
        lock = root / STATE_DIR / "sync.lock"
        self._calibrate("sync", command, lock, lambda: mutate(root, self.rng, 20_000))
        before = git(root, "rev-parse", "HEAD").stdout.strip()
        for step in range(self.rng.randint(1, 3)):
            mutate(root, self.rng, 100 * number + step)
        changed = set(git(root, "diff", "--name-only", "-z", "--no-renames", before, "HEAD").stdout.split("\0")) - {""}
        trial = Trial("sync", number)
        trial.kill = run_and_kill(command, self.env, lambda: lock_held(lock), self._delay("sync"), self.log("sync"))
        try:
            lost = lost_paths(root, changed)
            if lost:
                trial.problems.append(f"the queue lost {len(lost)} changed paths: {lost[:3]}")
            summary = drain(root, load_config(root), self.embedder, full_check=False)  # the restart, queue only
            if summary.remaining:
                trial.problems.append(f"{summary.remaining} paths still queued after the restart")
            trial.problems += check_index(root, self.embedder, fresh_rows(root, self.embedder))
        except Exception as exc:
            trial.problems.append(f"restart failed: {exc.__class__.__name__}: {exc}")
        self.index_growth.setdefault("sync", []).append(tree_bytes(root / STATE_DIR / "index.lance"))
        self.trials.append(trial)
        return trial

    # -- train ---------------------------------------------------------------------------
    def _train_setup(self) -> tuple[Path, Path]:
        root = self.work / "train-repo"
        triplets = self.work / "triplets.jsonl"
        if not root.is_dir():
            make_repo(root, {"README.md": "train here\n", ".gitignore": f"{STATE_DIR}/\n"})
            triplets.write_text("".join(json.dumps(t) + "\n" for t in training_triplets(160, 20, seed=5)),
                                encoding="utf-8")
        return root, triplets

    def train_command(self, root: Path, triplets: Path) -> list[str]:
        return codekin_command("train", "--repo", str(root), "--triplets", str(triplets), "--epochs", "3",
                               "--batch-size", "16", "--lr", "2e-3", "--device", "cpu", "--min-improvement", "0",
                               "--json")

    def train_trial(self, phase: str) -> Trial:
        """phase: "epoch" (a random moment of the run) or "checkpoint" (while a checkpoint is written)."""
        root, triplets = self._train_setup()
        operation = f"train-{phase}"
        number = sum(t.operation == operation for t in self.trials) + 1
        command = self.train_command(root, triplets)
        lock = root / STATE_DIR / "train.lock"
        self._calibrate("train", command, lock, lambda: None)
        models = root / STATE_DIR / "models"
        trial = Trial(operation, number)
        if phase == "checkpoint":
            before = _checkpoint_temporaries(models)
            trigger = lambda: bool(_checkpoint_temporaries(models) - before)  # noqa: E731
            delay = self.rng.uniform(0.0, 0.02)
        else:
            trigger, delay = (lambda: lock_held(lock)), self._delay("train")
        trial.kill = run_and_kill(command, self.env, trigger, delay, self.log(operation))
        trial.problems += check_active_model(root, "after the kill")
        try:
            run_train_in_process(root, triplets)  # the restart
            trial.problems += check_active_model(root, "after the restart")
        except Exception as exc:
            trial.problems.append(f"restart failed: {exc.__class__.__name__}: {exc}")
        leftovers = temp_leftovers(root)
        if leftovers:
            trial.problems.append(f"temporary files left: {leftovers[:5]}")
        self.trials.append(trial)
        return trial


def _checkpoint_temporaries(models: Path) -> set[str]:
    """The checkpoint directories being written now (write_checkpoint's `.tmp-*`)."""
    found: set[str] = set()
    try:
        for version in os.scandir(models):
            checkpoints = Path(version.path) / "checkpoints"
            if version.is_dir() and checkpoints.is_dir():
                found |= {e.path for e in os.scandir(checkpoints) if e.name.startswith(".tmp-")}
    except FileNotFoundError:
        pass
    return found


def training_triplets(train: int, held_out: int, seed: int) -> list[dict[str, str]]:
    """Separable pattern families (as in tests/test_trainer.py): a tiny model learns them."""
    families = {
        "genserver": ["use GenServer", "def handle_call(request, from, state)", "{:reply, reply, state}",
                      "GenServer.start_link(__MODULE__, opts)", "def handle_cast(msg, state)"],
        "supervisor": ["use Supervisor", "Supervisor.init(children, strategy: :one_for_one)", "max_restarts: 3",
                       "def child_spec(opts)", "restart: :transient"],
        "nif": ["static ERL_NIF_TERM", "enif_make_tuple2(env, atom_ok, result)", "ErlNifFunc nif_funcs[]",
                "enif_get_int(env, argv[0], &value)", "ERL_NIF_INIT(Elixir.Native, nif_funcs"],
    }
    rng = random.Random(seed)

    def snippet(family: str) -> str:
        name = "".join(rng.choice("abcdefghijklmnop") for _ in range(6))
        return f"defmodule Kin.{name.title()} do\n  " + "\n  ".join(rng.sample(families[family], 3)) + "\nend"

    out = []
    for i in range(train + held_out):
        family = rng.choice(list(families))
        other = rng.choice([f for f in families if f != family])
        out.append({"anchor": snippet(family), "positive": snippet(family), "negative": snippet(other),
                    "split": "train" if i < train else "eval"})
    return out


def run_train_in_process(root: Path, triplets: Path) -> Any:
    """What `codekin train` with train_command's flags runs (the restart): the same code path,
    run_in_child, which starts the pipeline in a child process."""
    from codekin.config import load_config
    from codekin.training.child import run_in_child
    from codekin.training.pipeline import PipelineOptions
    from codekin.training.trainer.args import TrainingArguments

    args = TrainingArguments().replace(epochs=3, batch_size=16, learning_rate=2e-3, margin=None, loss=None,
                                       device="cpu", seed=None)
    options = PipelineOptions(args=args, triplets_file=str(triplets), min_improvement=0.0,
                              config_overrides={"model": {"device": "cpu"}})
    load_config(root, options.config_overrides)  # a bad config fails here, as in the CLI
    return run_in_child(root, options, human_to_stderr=True)


def check_active_model(root: Path, when: str) -> list[str]:
    """The active model loads, and its files match both its checkpoint manifest and the
    version manifest's sha256 (the base model is always loadable: it is not ours to check)."""
    from codekin.models.checkpoints import sha256_file
    from codekin.models.registry import BASE, ModelRegistry

    registry = ModelRegistry(root)
    try:
        ref = registry.active_ref()
        if ref == BASE:
            return []
        path = registry.model_path(ref, verify=True)
        version, checkpoint = registry.resolve(ref)
        if checkpoint == version.final_checkpoint:
            for rel, digest in version.manifest.get("weights", {}).items():
                if sha256_file(version.path / rel) != digest:
                    return [f"{when}: {ref}: {rel} does not match the version manifest"]
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
        if model.encode(["def f(x), do: x"]).shape[0] != 1:
            return [f"{when}: {ref} does not encode"]
    except Exception as exc:
        return [f"{when}: the active model does not load: {exc.__class__.__name__}: {exc}"]
    return []


def summarize(trials: list[Trial]) -> list[dict[str, Any]]:
    """One row per operation: trials, failures, kills that landed, kills after the trigger."""
    rows = []
    for operation in dict.fromkeys(t.operation for t in trials):
        mine = [t for t in trials if t.operation == operation]
        rows.append({"scenario": operation, "trials": len(mine), "failures": sum(not t.ok for t in mine),
                     "killed_mid_run": sum(bool(t.kill and t.kill.killed) for t in mine)})
    return rows
