"""Fault injection for codekin's state and protocol edges (issue 19, items 4-11), used by
`benchmarks/reliability_state.py`. Each trial damages one thing on disk (or on the wire) in
a fresh real git repository, with random detail (where a file is cut, which bytes, which key
and value), runs the real `codekin` command and classifies what happened:

- the expected outcome (a clean error naming the file and its fix, after which the fix works;
  a foreign registry ignored with a warning; a request answered), or
- a failure: a traceback, a silently wrong answer, a command still broken after its fix, a
  deaf server.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.http_raw import get_with_host
from tests.reliability.harness import base_env, codekin_command, git, make_repo

Outcome = tuple[str, list[str]]  # (outcome, problems): problems empty when the trial passed


@dataclass
class StateBench:
    work: Path
    rng: random.Random
    env: dict[str, str] = field(default_factory=dict)
    count: int = 0

    @classmethod
    def create(cls, work: Path, seed: int) -> StateBench:
        work.mkdir(parents=True, exist_ok=True)
        return cls(work, random.Random(seed), base_env(work / "xdg"))

    def run(self, root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(codekin_command(*args), cwd=root, capture_output=True, text=True, timeout=600,
                              env={**self.env, **(env or {})})

    def repo(self, promoted: bool = True) -> Path:
        """A fresh repository; with `promoted`, a registry made on this machine with v1 active."""
        from codekin.models.checkpoints import write_checkpoint
        from codekin.models.registry import BASE, ModelRegistry

        self.count += 1
        root = make_repo(self.work / f"repo-{self.count}", {"lib/a.ex": "defmodule A do\n  def a, do: 1\nend\n"})
        if promoted:
            os.environ["XDG_CONFIG_HOME"] = self.env["XDG_CONFIG_HOME"]  # the same machine id as the CLI's
            registry = ModelRegistry(root)
            version = registry.create("default", BASE, triplets=10)
            weights = self.rng.randbytes(self.rng.randint(2048, 65536))
            write_checkpoint(version.checkpoints_dir / "epoch-1",
                             lambda tmp: (tmp / "model.safetensors").write_bytes(weights), {"epoch": 1})
            registry.seal(version, "epoch-1", status="trained")
            registry.promote(version.id)
        return root

    # -- the damage --------------------------------------------------------------------------------
    def truncated(self, path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[:self.rng.randint(1, max(1, len(data) - 2))])

    def not_utf8(self, path: Path) -> None:
        data = bytearray(path.read_bytes())
        at = self.rng.randint(0, len(data))
        data[at:at] = self.rng.choice([b"\xff", b"\xfe\xff", b"\xc3", b"\x80\x80", b"\xed\xa0\x80"])
        path.write_bytes(bytes(data))

    def wrong_shape(self, path: Path) -> None:
        path.write_text(self.rng.choice(["[]", "3", '"v1"', "null", '{"ref": 3}', '{"history": {}}', "[{}]"]),
                        encoding="utf-8")


def classify(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> list[str]:
    """Problems of a command that should fail cleanly with `code` and name every needle."""
    if "Traceback" in done.stderr:
        return ["traceback: " + done.stderr.strip().splitlines()[-1]]
    problems = [] if done.returncode == code else [f"exit {done.returncode}, not {code}: {done.stderr.strip()[:200]}"]
    return problems + [f"the message lacks {n!r}" for n in needles if n not in done.stderr]


def ok(done: subprocess.CompletedProcess[str], what: str) -> list[str]:
    if "Traceback" in done.stderr:
        return [f"{what}: traceback: " + done.stderr.strip().splitlines()[-1]]
    return [] if done.returncode == 0 else [f"{what} still fails (exit {done.returncode}): {done.stderr[:200]}"]


# -- registry and state files (items 5, 6, 9, 10) ------------------------------------------------------
def active_json(bench: StateBench, damage: str) -> Outcome:
    root = bench.repo()
    getattr(bench, damage)(root / ".codekin/models/active.json")
    problems = classify(bench.run(root, "models", "list"), 9, "active.json is damaged", "codekin models rollback base")
    problems += ok(bench.run(root, "models", "rollback", "base"), "the named fix")
    problems += ok(bench.run(root, "models", "list"), "models list after the fix")
    return ("clean error, fixed by the named command", problems)


def manifest(bench: StateBench, damage: str) -> Outcome:
    root = bench.repo()
    path = root / ".codekin/models/v1" / bench.rng.choice(["manifest.json", "checkpoints/epoch-1/manifest.json"])
    getattr(bench, damage)(path)
    rel = str(path.relative_to(root))
    problems = classify(bench.run(root, "models", "promote", "v1"), 9, rel, "codekin models rollback")
    problems += ok(bench.run(root, "models", "rollback", "base"), "rollback")
    problems += ok(bench.run(root, "models", "prune", "--keep", "0"), "prune")
    problems += ok(bench.run(root, "models", "list"), "models list after the fix")
    return ("clean error, fixed by the named commands", problems)


def weights(bench: StateBench) -> Outcome:
    from codekin.config import ModelConfig
    from codekin.models.serving import serving_model

    root = bench.repo()
    path = root / ".codekin/models/v1/checkpoints/epoch-1/model.safetensors"
    serving_model(root, ModelConfig())  # verified once: the size+mtime record that must not hide damage
    if bench.rng.random() < 0.5:
        bench.truncated(path)
    else:  # the same size, some bytes scribbled, the mtime kept
        stat, data = path.stat(), bytearray(path.read_bytes())
        at = bench.rng.randrange(len(data))
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    problems = []
    if serving_model(root, ModelConfig()).primary != "default":
        problems.append("wrong answer: the damaged weights would be served")
    problems += classify(bench.run(root, "models", "promote", "v1"), 9, "does not match its sha256")
    return ("never served; promote refused naming the file", problems)


def shipped_registry(bench: StateBench, how: str) -> Outcome:
    root = bench.repo()
    env = None
    if how == "tracked":
        git(root, "add", "-f", ".codekin/models")
        git(root, "commit", "-q", "-m", "ship a model")
        needle = "git tracks files under .codekin/models"
    else:  # a copied tree or tarball: another machine's id, or none (an older tool's)
        pointer_path = root / ".codekin/models/active.json"
        pointer = json.loads(pointer_path.read_text(encoding="utf-8"))
        pointer.pop("machine")
        if bench.rng.random() < 0.5:
            pointer["machine"] = bench.rng.randbytes(16).hex()
        pointer_path.write_text(json.dumps(pointer), encoding="utf-8")
        needle = "not written on this machine"
    done = bench.run(root, "models", "list", "--json", env=env)
    problems = ok(done, "models list")
    if not problems and json.loads(done.stdout)["active"] != "base":
        problems.append("wrong answer: the shipped registry chooses the model")
    return ("ignored with a warning", problems + ([] if needle in done.stderr else [f"no warning {needle!r}"]))


def shipped_index(bench: StateBench, how: str, index: Callable[[Path], None]) -> Outcome:
    """An index the repository commits, or one a copied tree brings from another machine: ignored
    with the reason, rebuilt by `codekin index`."""
    root = bench.repo(promoted=False)
    index(root)
    if how == "tracked":
        git(root, "add", "-f", *(f".codekin/{n}" for n in ("state.json", "index.lance", "query.chunks",
                                                            "index.sums.json") if (root / ".codekin" / n).exists()))
        git(root, "commit", "-q", "-m", "ship an index")
        needle = "git tracks .codekin/"
    else:  # another machine's id (an index without one is an older codekin's here, and is kept)
        path = root / ".codekin/state.json"
        state = json.loads(path.read_text(encoding="utf-8"))
        state["machine"] = bench.rng.randbytes(16).hex()
        path.write_text(json.dumps(state), encoding="utf-8")
        needle = "not made on this machine"
    problems = classify(bench.run(root, "search", "module A"), 7, "ignoring the index", needle, "codekin index")
    status = bench.run(root, "status")
    problems += ok(status, "status") + ([] if needle in status.stdout else [f"status does not say {needle!r}"])
    rebuilt = bench.run(root, "index")
    problems += ok(rebuilt, "codekin index (the named fix)")
    problems += [] if "rebuilding it from the source files" in rebuilt.stderr else ["the rebuild is not announced"]
    problems += ok(bench.run(root, "search", "module A"), "search after the rebuild")
    return ("ignored with the reason, rebuilt by codekin index", problems)


def manifest_types(bench: StateBench) -> Outcome:
    """A manifest of the right shape with a field of the wrong type: listed as damaged, with the fix."""
    root = bench.repo()
    path = root / ".codekin/models/v1/manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    key = bench.rng.choice(["metrics", "created_at", "triplets", "parent", "weights", "status"])
    manifest[key] = bench.rng.choice([[], "soon", None, 3.5, {"a": 1}, True])
    if isinstance(manifest[key], type(json.loads(path.read_text(encoding="utf-8"))[key])):
        manifest[key] = [manifest[key]]  # the right type by chance: make it wrong
    path.write_text(json.dumps(manifest), encoding="utf-8")
    problems = ok(listed := bench.run(root, "models", "list"), "models list")
    if f"v1/manifest.json is damaged: its field {key!r}" not in listed.stdout:
        problems.append(f"models list does not name the field {key!r}: {listed.stdout[-300:]}")
    problems += ok(bench.run(root, "dashboard", "--out", str(bench.work / "dashboard.html")), "dashboard")
    return ("listed as damaged, naming the field", problems)


def promote_base(bench: StateBench) -> Outcome:
    root = bench.repo()
    done = bench.run(root, "models", "promote", "base", "--json")
    problems = ok(done, "promote base")
    if not problems and json.loads(done.stdout)["active"] != "base":
        problems.append("base is not active")
    return ("accepted", problems)


def stale_temporary(bench: StateBench) -> Outcome:
    root = bench.repo()
    models = root / ".codekin/models"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    name = bench.rng.choice(["active.json", "verified.json"])
    leftover = models / f".{name}.{child.pid}.tmp"
    leftover.write_bytes(bench.rng.randbytes(bench.rng.randint(0, 300)))
    command = bench.rng.choice([("models", "rollback", "base"), ("models", "prune", "--keep", "1")])
    if name == "verified.json":
        command = ("models", "prune", "--keep", "1")
    problems = ok(bench.run(root, *command), " ".join(command))
    return ("removed by the next " + command[1], problems + (["left behind"] if leftover.exists() else []))


def state_json(bench: StateBench, damage: str, index: Callable[[Path], None]) -> Outcome:
    root = bench.repo(promoted=False)
    index(root)
    getattr(bench, damage)(root / ".codekin/state.json")
    problems = classify(bench.run(root, "status"), 6, "state.json is damaged", "codekin index")
    problems += ok(bench.run(root, "index"), "codekin index (the named fix)")
    problems += ok(bench.run(root, "status"), "status after the fix")
    return ("clean error, repaired by codekin index", problems)


def metrics_db(bench: StateBench) -> Outcome:
    root = bench.repo(promoted=False)
    path = root / ".codekin/metrics.db"
    from codekin.metrics import MetricsStore

    with MetricsStore(root) as store:
        store.start_run(base_version="base")
    store.db.close()
    data = bytearray(path.read_bytes())
    if bench.rng.random() < 0.5:
        path.write_bytes(bytes(data[:bench.rng.randint(1, 100)]) + bench.rng.randbytes(bench.rng.randint(0, 5000)))
    else:
        for _ in range(8):
            at = bench.rng.randrange(len(data))
            data[at:at + 64] = bench.rng.randbytes(64)
        path.write_bytes(bytes(data[:len(path.read_bytes())]))
    out = str(bench.work / "dashboard.html")
    first = bench.run(root, "dashboard", "--out", out)
    problems = ok(first, "dashboard") + ok(bench.run(root, "dashboard", "--out", out), "dashboard again")
    moved = bool(list(path.parent.glob("metrics.db.damaged-*")))
    return ("moved aside, a fresh one started" if moved else "still readable (damage missed the used pages)",
            problems)


# -- configuration (item 8) ------------------------------------------------------------------------
def bad_config(bench: StateBench) -> Outcome:
    rng = bench.rng
    weight = rng.choice(["context_weight", "lexical_weight", "name_weight", "prior_test", "spread"])
    case = rng.choice([
        ("model", "max_tokens", str(rng.randint(-10**6, 7))), ("search", "limit", str(rng.randint(-10**6, 0))),
        ("search", weight, rng.choice(["nan", "inf", "-inf", "1e308", "-1e308", str(-rng.random())])),
        ("index", "max_file_bytes", str(rng.randint(-10**9, 0))),
        ("index", "include", json.dumps([rng.choice(["../x/**", "/etc/**", "lib/../../y"])])),
        ("model", "backend", '"torch"'), ("schedule", "triplets_file", '"/tmp/curated.jsonl"'),
    ])
    root = bench.repo(promoted=False)
    path = root / ".codekin/config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"[{case[0]}]\n{case[1]} = {case[2]}\n", encoding="utf-8")
    problems = classify(bench.run(root, "status"), 2, str(path), f"{case[0]}.{case[1]}")
    return ("exit 2 naming the file and the key", problems)


# -- the dashboard's Host header (item 11) ---------------------------------------------------------------
def dashboard_host(bench: StateBench) -> Outcome:
    from codekin.dashboard.server import DashboardServer

    root = bench.repo(promoted=False)
    server = DashboardServer(root).start()
    port, problems = server.port, []
    try:
        good = bench.rng.choice([f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"])
        bad = bench.rng.choice([f"attacker-{bench.rng.randint(0, 999)}.example:{port}", "127.0.0.1",
                                f"localhost:{port + 1}", f"127.0.0.1.nip.io:{port}", ""])
        for host, wanted in ((good, 200), (bad, 421)):
            status = get_with_host(port, "/data.json", host)[0]
            if status != wanted:
                problems.append(f"Host {host!r}: {status}, not {wanted}")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return ("only loopback names with the port answered", problems)


# -- LSP framing (item 4) ------------------------------------------------------------------------
def lsp_frame(client: object, fault: str, rng: random.Random) -> Outcome:
    """One malformed frame (a request with random unicode text), then a well-framed request: both
    answered. `client` is a RawClient of a running `codekin serve`."""
    from tests.reliability.rawclient import RawClient
    from tests.reliability.test_lsp_framing import _answers, _faulty

    assert isinstance(client, RawClient)
    number, probe = client.new_id(), client.new_id()
    text = "".join(rng.choice("abcé漢字🙂 \\\"\n") for _ in range(rng.randint(0, 60)))
    body = json.dumps({"jsonrpc": "2.0", "id": number, "method": "workspace/executeCommand",
                       "params": {"command": "codekin.status", "arguments": [], "note": text}},
                      ensure_ascii=False).encode()
    probe_body = json.dumps({"jsonrpc": "2.0", "id": probe, "method": "workspace/executeCommand",
                             "params": {"command": "codekin.status", "arguments": []}}).encode()
    client.write(_faulty(fault, body) + b"Content-Length: %d\r\n\r\n" % len(probe_body) + probe_body)
    try:
        answers = _answers(client, {number, probe})
    except AssertionError as exc:
        return ("deaf", [str(exc)])
    missing = [n for n in (number, probe) if "result" not in answers[n]]
    return ("the frame and the next request answered", [f"request {n} got an error" for n in missing])
