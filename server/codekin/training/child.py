"""The training pipeline in a low-priority child process: `python -m codekin.training.child`
runs `run_pipeline` and writes its PipelineResult (or error) as JSON for the parent, which
`run_in_child` starts, waits for and reads. A full disk comes back as errors.DISK_FULL_EXIT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from codekin.config import load_config
from codekin.errors import DISK_FULL_EXIT, CodekinError, TrainingError, disk_full
from codekin.processes import pid_alive
from codekin.state import RUNS_DIR, state_path
from codekin.training.pipeline import (
    PipelineOptions,
    PipelineResult,
    run_pipeline,
    training_holder,
    training_running_error,
)

DISK_FULL_FREE_BYTES = 1 << 20  # below this, a failed write is taken for a full disk
CHILD_NICE = 10
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports Ctrl-C


def start_training(root: Path, options: PipelineOptions, result_path: Path, human_to_stderr: bool = False,
                   launch: list[str] | None = None, **popen: Any) -> subprocess.Popen:
    """Start the pipeline in a low-priority child; it writes its result (or error) as JSON.

    `launch` replaces `python -m codekin.training.child` (torchrun for `--gpus N`)."""
    command = (launch or [sys.executable, "-m", "codekin.training.child"]) + [str(root), json.dumps(options.to_dict()),
               str(result_path)] + (["--human-to-stderr"] if human_to_stderr else [])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if launch:  # torchrun's own default, set here so that it does not print its banner about it
        env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.Popen(command, env=env, **popen)


def remove_orphan_results(runs: Path) -> list[str]:
    """Delete result files whose `codekin train` was killed before it read them (the pid in
    the name is gone); without this they pile up in .codekin/runs/."""
    removed = []
    for path in runs.glob("result-*.json"):
        pid = path.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def run_in_child(root: Path, options: PipelineOptions, human_to_stderr: bool = False,
                 launch: list[str] | None = None) -> PipelineResult:
    """Run the pipeline in a child process and wait; its errors come back as CodekinErrors."""
    options.validate()
    holder = training_holder(root)
    if holder is not None:
        raise training_running_error(holder)
    runs = state_path(root, RUNS_DIR)
    runs.mkdir(parents=True, exist_ok=True)
    remove_orphan_results(runs)
    result_path = runs / f"result-{os.getpid()}-{time.monotonic_ns()}.json"
    child = start_training(root, options, result_path, human_to_stderr, launch)

    def stop_child(signum: int, frame: object) -> None:  # `kill`: the child would train on, orphaned, for hours
        child.terminate()  # it records the interruption as it does a Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_child)
    try:
        code = child.wait()
    except KeyboardInterrupt:
        child.wait()  # the child got the same Ctrl-C (or our SIGTERM) and records the interruption
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return read_child_result(result_path, code)


def read_child_result(result_path: Path, code: int) -> PipelineResult:
    """The PipelineResult a training child wrote (and remove the file), or its error re-raised."""
    if not result_path.is_file():
        if code == DISK_FULL_EXIT:  # the child could not even write its result
            raise disk_full_error("the training process could not write its result")
        raise TrainingError(f"the training process ended with exit code {code} and no result",
                            "run it again: it resumes from the last good checkpoint")
    payload = json.loads(result_path.read_text(encoding="utf-8"))
    result_path.unlink()
    if "error" in payload:
        error = CodekinError(payload["error"], payload.get("hint", ""))
        error.exit_code = int(payload.get("exit_code", 1))
        raise error
    return PipelineResult(**{k: v for k, v in payload.items() if k != "promoted"})


def _child_main(argv: list[str]) -> int:
    root, options_json, result_path = Path(argv[0]), argv[1], Path(argv[2])
    human_to_stderr = "--human-to-stderr" in argv[3:]
    os.nice(CHILD_NICE)
    import torch

    # Every core: the child runs at nice 10, so a language server beside it still gets the CPU
    # when it answers. Leaving a core idle made a 2-core CPU train 1.5x slower (13.0 s a step, not 8.7).
    torch.set_num_threads(os.cpu_count() or 1)

    def out(line: str) -> None:
        print(line, file=sys.stderr if human_to_stderr else sys.stdout, flush=True)

    signal.signal(signal.SIGTERM, _interrupt)  # a server shutting down: recorded as interrupted
    try:
        options = PipelineOptions.from_dict(json.loads(options_json))
        config = load_config(root, options.config_overrides)
        payload = run_pipeline(root, config, options, out).to_dict()
        code = 0
    except CodekinError as exc:
        payload = {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
        code = exc.exit_code
    except KeyboardInterrupt:
        payload = {"error": "training interrupted; the active model is unchanged",
                   "hint": "run `codekin train` again: it resumes from the last good checkpoint",
                   "exit_code": INTERRUPTED_EXIT}
        code = INTERRUPTED_EXIT
    except Exception as exc:  # only a full disk is answered here; anything else keeps its traceback
        if not _disk_is_full(root, exc):
            raise
        error = disk_full_error(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        payload = {"error": error.message, "hint": error.hint, "exit_code": DISK_FULL_EXIT}
        code = DISK_FULL_EXIT
    try:
        result_path.write_text(json.dumps(payload), encoding="utf-8")
    except OSError:
        if code != DISK_FULL_EXIT:
            raise
        result_path.unlink(missing_ok=True)  # the parent reads the exit code instead
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def disk_full_error(detail: str) -> CodekinError:
    error = CodekinError(f"the disk is full (no space left on device): {detail}",
                         "free some space and run `codekin train` again: it resumes from the last good checkpoint; "
                         "the active model is unchanged")
    error.exit_code = DISK_FULL_EXIT
    return error


def _disk_is_full(root: Path, exc: BaseException) -> bool:
    """ENOSPC (also wrapped by safetensors or SQLite), or any write error while the state
    directory's file system has (almost) no space left (SQLite then says "disk I/O error")."""
    if disk_full(exc) or "database or disk is full" in str(exc):
        return True
    try:
        stat = os.statvfs(state_path(root))
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < DISK_FULL_FREE_BYTES


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
