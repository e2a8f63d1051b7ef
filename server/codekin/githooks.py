"""Install, remove and inspect codekin's git hooks.

The hooks (post-commit, post-merge, post-checkout, post-rewrite) go where git itself
looks: `git rev-parse --git-path hooks`, which honours core.hooksPath and gives linked
worktrees and submodules their repository's directory. A hook that is already there is
chained, not replaced: it is renamed to `<name>.codekin-chained` (a rename, so its bytes,
mode and symlink stay exactly as they were), codekin's hook runs it after recording, and
uninstall renames it back. When the pre-commit framework later installs over codekin's
hook it keeps ours as `<name>.legacy` and runs it; that is recognised as installed.
Husky points core.hooksPath at its own directory; the hooks go there and chain husky's.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from codekin import git
from codekin.atomic import write_atomic
from codekin.errors import CodekinError, WorkspaceError
from codekin.state import HOOK_LOG, SPOOL_DIR, STATE_DIR, state_path
from codekin.workspace import exclude_state_dir

HOOK_NAMES = ("post-commit", "post-merge", "post-checkout", "post-rewrite")
CHAINED_SUFFIX = ".codekin-chained"
LEGACY_SUFFIX = ".legacy"  # where the pre-commit framework keeps a hook it installed over
MARKER = b"# codekin-hook "
# Shipped inside the package (hooks/codekin-hook.sh at the top level links here).
TEMPLATE = Path(__file__).resolve().parent / "hook_scripts" / "codekin-hook.sh"


@dataclass
class HookState:
    name: str
    path: str  # where git looks for this hook
    installed: bool  # codekin's hook runs for this event
    chained: str = ""  # the hook that was there before, now run after codekin's
    via: str = ""  # "pre-commit" when the pre-commit framework runs codekin's hook
    problem: str = ""  # what is wrong and how to fix it; empty when healthy

    @property
    def healthy(self) -> bool:
        return self.installed and not self.problem


@dataclass
class HooksReport:
    root: str
    hooks_dir: str
    hooks_path_config: str  # core.hooksPath as configured, "" when unset
    hooks: list[HookState] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # what install/uninstall changed
    state_dir: bool = False  # .codekin/ exists in this worktree (the hooks record nothing without it)
    pending_records: int = 0  # hook records not yet drained by `codekin sync`
    last_failure: str = ""  # the newest line of .codekin/logs/hooks.log

    @property
    def healthy(self) -> bool:
        return self.state_dir and all(h.healthy for h in self.hooks)

    def to_dict(self) -> dict:
        out = asdict(self)
        for hook, state in zip(out["hooks"], self.hooks, strict=True):
            hook["healthy"] = state.healthy
        out["healthy"] = self.healthy
        return out


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        out = git.run(root, *args)
    except OSError as exc:
        raise WorkspaceError(f"cannot run git: {exc.strerror}", "install git and make sure it is on PATH") from exc
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout.decode("utf-8", "surrogateescape"),
                                       out.stderr.decode("utf-8", "replace"))


def hooks_dir(root: Path) -> Path:
    """The directory git runs this repository's hooks from."""
    out = _git(root, "rev-parse", "--git-path", "hooks")
    if out.returncode != 0:
        raise WorkspaceError(f"{root} is not inside a git repository",
                             "run `git init` first, or run codekin inside a git checkout")
    return (root / out.stdout.strip()).resolve()  # a relative core.hooksPath is relative to the root


def hook_script(name: str) -> bytes:
    """codekin's hook for `name`, as installed."""
    try:
        template = TEMPLATE.read_bytes()
    except OSError as exc:
        raise CodekinError(f"codekin's hook script is missing ({TEMPLATE}: {exc.strerror})",
                           "reinstall codekin from its source checkout (pip install -e .)") from exc
    return template.replace(b"@HOOK_NAME@", name.encode())


def _is_codekin_hook(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with path.open("rb") as handle:
        return MARKER in handle.read(200)


def _codekin_hook_at(directory: Path, name: str) -> tuple[Path | None, str]:
    """Where codekin's hook for `name` is, and through which tool it runs."""
    if _is_codekin_hook(directory / name):
        return directory / name, ""
    if _is_codekin_hook(directory / (name + LEGACY_SUFFIX)):
        return directory / (name + LEGACY_SUFFIX), "pre-commit"
    return None, ""


def _write_executable(path: Path, data: bytes) -> None:
    write_atomic(path, data, mode=0o755)


def _ensure_state_dir(root: Path, actions: list[str]) -> None:
    spool = state_path(root, SPOOL_DIR)
    if not spool.is_dir():
        spool.mkdir(parents=True, exist_ok=True)
        actions.append(f"created {spool.relative_to(root)}/")
    exclude = exclude_state_dir(root)
    if exclude:
        actions.append(f"git-ignored {STATE_DIR}/ in {exclude}")


def install(root: Path) -> HooksReport:
    """Install (or update) the four hooks, chaining whatever hooks are there."""
    directory = hooks_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    actions: list[str] = []
    for name in HOOK_NAMES:
        script = hook_script(name)
        ours, via = _codekin_hook_at(directory, name)
        if ours is not None:
            if ours.read_bytes() != script or not os.access(ours, os.X_OK):
                _write_executable(ours, script)
                actions.append(f"updated {name}" + (f" (run by {via})" if via else ""))
            continue
        target = directory / name
        chained = directory / (name + CHAINED_SUFFIX)
        if os.path.lexists(target):
            if os.path.lexists(chained):
                raise CodekinError(
                    f"cannot chain the existing {name} hook: {chained} is already taken",
                    f"move {chained} away (it holds a hook from an earlier install), then run this again",
                )
            os.rename(target, chained)
            actions.append(f"kept the existing {name} hook as {chained.name}; it runs after codekin's")
        _write_executable(target, script)
        actions.append(f"installed {name}")
    _ensure_state_dir(root, actions)
    if directory.is_relative_to(root) and ".git" not in directory.relative_to(root).parts:  # e.g. husky's
        untracked = [n for n in HOOK_NAMES if _git(root, "check-ignore", "-q", str(directory / n)).returncode == 1
                     and _git(root, "ls-files", "--error-unmatch", str(directory / n)).returncode != 0]
        if untracked:
            actions.append(f"note: {directory.relative_to(root)}/ is inside the repository, so git status shows "
                           f"{', '.join(untracked)} as new files: commit them to share the hooks, or list them "
                           "in .git/info/exclude")
    report = status(root)
    report.actions = actions
    return report


def uninstall(root: Path) -> HooksReport:
    """Remove codekin's hooks and put back the hooks they chained, byte for byte."""
    directory = hooks_dir(root)
    actions: list[str] = []
    for name in HOOK_NAMES:
        ours, via = _codekin_hook_at(directory, name)
        chained = directory / (name + CHAINED_SUFFIX)
        if ours is None:
            if os.path.lexists(chained) and not os.path.lexists(directory / name):
                os.rename(chained, directory / name)
                actions.append(f"restored {name}")
            elif os.path.lexists(chained):
                actions.append(f"left {chained.name} alone: {name} was replaced by another tool since install")
            continue
        os.unlink(ours)
        if os.path.lexists(chained):
            os.rename(chained, ours)  # back where git (or pre-commit) runs it
            actions.append(f"removed {name}, restored the original" + (f" as {ours.name}" if via else ""))
        else:
            actions.append(f"removed {name}")
    report = status(root)
    report.actions = actions
    return report


def status(root: Path) -> HooksReport:
    """What is installed where, and whether it works."""
    directory = hooks_dir(root)
    configured = _git(root, "config", "--get", "core.hooksPath").stdout.strip()
    report = HooksReport(root=str(root), hooks_dir=str(directory), hooks_path_config=configured)
    for name in HOOK_NAMES:
        ours, via = _codekin_hook_at(directory, name)
        chained = directory / (name + CHAINED_SUFFIX)
        state = HookState(name=name, path=str(directory / name), installed=ours is not None, via=via,
                          chained=str(chained) if os.path.lexists(chained) else "")
        if ours is None:
            state.problem = "not installed: run `codekin hooks install`"
            if os.path.lexists(directory / name) and state.chained:  # ours chained it once, then went
                state.problem = "replaced by another hook since install: run `codekin hooks install` to chain it"
            elif os.path.lexists(directory / name):
                state.problem = "not installed (a hook of your own is there: `codekin hooks install` chains it)"
        elif not os.access(ours, os.X_OK):
            state.problem = f"{ours} is not executable, so git skips it: run `codekin hooks install`"
        elif ours.read_bytes() != hook_script(name):
            state.problem = "written by another codekin version: run `codekin hooks install` to update it"
        elif state.chained and not os.access(chained, os.X_OK):
            state.problem = f"the chained hook {chained} is not executable, so it does not run (git skipped it too)"
        report.hooks.append(state)
    state_dir = state_path(root)
    report.state_dir = state_dir.is_dir()
    spool = state_dir / SPOOL_DIR
    report.pending_records = sum(1 for p in spool.glob("*.ev")) if spool.is_dir() else 0
    log = state_dir / HOOK_LOG
    if log.is_file():
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        report.last_failure = lines[-1] if lines else ""
    return report
