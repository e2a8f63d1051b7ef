"""The git hooks with real git: what each git command records, silence, chaining, restore."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from codekin import githooks
from codekin.cli import main
from codekin.errors import CodekinError, WorkspaceError
from codekin.queue import SPOOL_DIR, ChangeRecord, parse_record
from tests.conftest import git, make_repo

FILES = {"lib/a.ex": "defmodule A do\n  def a, do: 1\nend\n", "lib/b.ex": "defmodule B do\nend\n",
         "src/n.cpp": "int n() { return 1; }\n"}


def records(root: Path) -> list[ChangeRecord]:
    files = sorted((root / ".codekin" / SPOOL_DIR).glob("*.ev"), key=lambda p: p.stat().st_mtime_ns)
    return [parse_record(f.read_bytes()) for f in files]


def take(root: Path) -> list[ChangeRecord]:
    """The records written since the last take (and forget them)."""
    found = records(root)
    for f in (root / ".codekin" / SPOOL_DIR).glob("*.ev"):
        f.unlink()
    return found


def paths_of(found: list[ChangeRecord]) -> set[str]:
    return {p for r in found for p in r.paths}


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text, encoding="utf-8")


def run_git(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          env={**os.environ, **base, **(env or {})}, check=False)


@pytest.fixture
def hooked(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo", FILES)
    githooks.install(root)
    return root


def test_install_writes_four_executable_hooks_and_ignores_state_dir(hooked: Path) -> None:
    report = githooks.status(hooked)
    assert report.healthy and report.state_dir
    assert [h.name for h in report.hooks] == list(githooks.HOOK_NAMES)
    for name in githooks.HOOK_NAMES:
        path = hooked / ".git" / "hooks" / name
        assert os.access(path, os.X_OK)
        assert path.read_bytes() == githooks.hook_script(name)
    assert git(hooked, "check-ignore", ".codekin/") == ".codekin/\n"
    assert git(hooked, "status", "--porcelain") == ""
    again = githooks.install(hooked)  # idempotent: nothing to change
    assert again.actions == []


def test_commit_records_changed_paths_and_head(hooked: Path) -> None:
    write(hooked, "lib/a.ex", "defmodule A do\n  def a, do: 2\nend\n")
    write(hooked, "lib/new.ex", "defmodule New do\nend\n")
    git(hooked, "add", "-A")
    git(hooked, "commit", "-q", "-m", "two")
    (record,) = take(hooked)
    assert record == ChangeRecord("post-commit", git(hooked, "rev-parse", "HEAD").strip(), False,
                                  ("lib/a.ex", "lib/new.ex"))


def test_root_commit_delete_and_rename(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "fresh", {}, commit=False)
    githooks.install(root)
    write(root, "lib/a.ex", "a\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "root")
    assert paths_of(take(root)) == {"lib/a.ex"}
    git(root, "mv", "lib/a.ex", "lib/renamed.ex")
    git(root, "commit", "-q", "-m", "rename")
    assert paths_of(take(root)) == {"lib/a.ex", "lib/renamed.ex"}  # both names: old rows go, new come
    git(root, "rm", "-q", "lib/renamed.ex")
    git(root, "commit", "-q", "-m", "delete")
    assert paths_of(take(root)) == {"lib/renamed.ex"}


def test_amend_records_the_difference_to_the_replaced_commit(hooked: Path) -> None:
    write(hooked, "lib/a.ex", "changed\n")
    git(hooked, "commit", "-q", "-a", "-m", "one")
    take(hooked)
    write(hooked, "src/n.cpp", "int n() { return 2; }\n")
    git(hooked, "commit", "-q", "-a", "--amend", "-m", "one, amended")
    found = take(hooked)
    assert [r.event for r in found] == ["post-commit", "post-rewrite"]
    assert found[1].paths == ("src/n.cpp",)  # amended commit vs the commit it replaced
    assert found[1].head == git(hooked, "rev-parse", "HEAD").strip()


def test_branch_checkout_records_the_diff_between_heads(hooked: Path) -> None:
    git(hooked, "checkout", "-q", "-b", "feature")
    assert take(hooked) == []  # same commit: nothing changed on disk
    write(hooked, "lib/b.ex", "defmodule B do\n  def b, do: :b\nend\n")
    git(hooked, "commit", "-q", "-a", "-m", "b")
    take(hooked)
    git(hooked, "checkout", "-q", "main")
    (record,) = take(hooked)
    assert (record.event, record.paths, record.full_scan) == ("post-checkout", ("lib/b.ex",), False)


def test_file_checkout_asks_for_a_full_scan(hooked: Path) -> None:
    write(hooked, "lib/a.ex", "dirty\n")
    git(hooked, "checkout", "--", "lib/a.ex")
    (record,) = take(hooked)
    assert record.full_scan and record.paths == ()


def branch_with(hooked: Path, branch: str, files: dict[str, str], start: str = "HEAD") -> None:
    """Commit `files` on a new branch from `start`, back on main, the queue emptied."""
    git(hooked, "checkout", "-q", "-b", branch, start)
    for rel, text in files.items():
        write(hooked, rel, text)
    git(hooked, "add", "-A")
    git(hooked, "commit", "-q", "-m", branch)
    git(hooked, "checkout", "-q", "main")
    take(hooked)


def test_merges_and_rebase(hooked: Path) -> None:
    branch_with(hooked, "feature", {"lib/f.ex": "f\n"})
    write(hooked, "src/n.cpp", "int n() { return 3; }\n")
    git(hooked, "commit", "-q", "-a", "-m", "n")
    take(hooked)

    git(hooked, "checkout", "-q", "feature")
    take(hooked)
    git(hooked, "rebase", "-q", "main")
    found = take(hooked)
    assert "post-rewrite" in {r.event for r in found}
    assert paths_of(found) >= {"src/n.cpp"}

    git(hooked, "checkout", "-q", "main")
    take(hooked)
    git(hooked, "merge", "-q", "feature")  # fast-forward
    (record,) = take(hooked)
    assert (record.event, record.paths) == ("post-merge", ("lib/f.ex",))

    branch_with(hooked, "side", {"lib/side.ex": "side\n"}, start="HEAD~1")
    git(hooked, "merge", "-q", "--no-edit", "--no-ff", "side")
    assert paths_of(take(hooked)) == {"lib/side.ex"}

    branch_with(hooked, "squashme", {"lib/sq.ex": "sq\n"}, start="HEAD~1")
    git(hooked, "merge", "-q", "--squash", "squashme")
    assert paths_of(take(hooked)) == {"lib/sq.ex"}


def test_conflicted_merge_is_recorded_by_the_concluding_commit(hooked: Path) -> None:
    branch_with(hooked, "other", {"lib/a.ex": "other\n", "lib/clean.ex": "clean\n"})
    write(hooked, "lib/a.ex", "mine\n")
    git(hooked, "commit", "-q", "-a", "-m", "mine")
    take(hooked)
    assert run_git(hooked, "merge", "other").returncode != 0  # conflict: no hook runs yet
    write(hooked, "lib/a.ex", "resolved\n")
    git(hooked, "commit", "-q", "-a", "--no-edit")
    assert paths_of(take(hooked)) == {"lib/a.ex", "lib/clean.ex"}  # against the first parent


def test_hook_is_silent_without_codekin_on_path(hooked: Path) -> None:
    path = os.pathsep.join(d for d in ("/usr/bin", "/bin") if os.path.isdir(d))
    assert shutil.which("codekin", path=path) is None
    write(hooked, "lib/a.ex", "x\n")
    plain = make_repo(hooked.parent / "plain", FILES)
    write(plain, "lib/a.ex", "x\n")
    hooked_run = run_git(hooked, "commit", "-a", "-m", "x", env={"PATH": path})
    plain_run = run_git(plain, "commit", "-a", "-m", "x", env={"PATH": path})
    assert hooked_run.returncode == 0
    assert hooked_run.stderr == plain_run.stderr == ""
    assert hooked_run.stdout.split("]", 1)[1] == plain_run.stdout.split("]", 1)[1]  # only the sha differs
    assert paths_of(take(hooked)) == {"lib/a.ex"}  # the hook needs no codekin: sh and git only


def test_hook_without_state_dir_does_nothing(hooked: Path) -> None:
    shutil.rmtree(hooked / ".codekin")
    write(hooked, "lib/a.ex", "x\n")
    result = run_git(hooked, "commit", "-a", "-m", "x")
    assert (result.returncode, result.stderr) == (0, "")
    assert not (hooked / ".codekin").exists()
    assert not githooks.status(hooked).healthy


def test_hook_failure_is_one_log_line_and_git_succeeds(hooked: Path) -> None:
    spool = hooked / ".codekin" / SPOOL_DIR
    shutil.rmtree(spool)
    spool.write_text("not a directory")  # the record cannot be written
    write(hooked, "lib/a.ex", "x\n")
    result = run_git(hooked, "commit", "-a", "-m", "x")
    assert (result.returncode, result.stderr) == (0, "")
    log = (hooked / ".codekin" / "logs" / "hooks.log").read_text().splitlines()
    assert len(log) == 1 and "post-commit:" in log[0]
    assert githooks.status(hooked).last_failure == log[0]


def test_existing_hook_is_chained_and_restored_byte_for_byte(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    hooks = root / ".git" / "hooks"
    out = tmp_path / "user-hook.out"
    user_checkout = f'#!/bin/sh\necho "checkout $*" >> {out}\nexit 3\n'.encode()
    user_rewrite = f'#!/bin/sh\necho "rewrite $1" >> {out}\ncat >> {out}\n'.encode()
    (hooks / "post-checkout").write_bytes(user_checkout)
    (hooks / "post-checkout").chmod(0o750)
    (hooks / "post-rewrite").write_bytes(user_rewrite)
    (hooks / "post-rewrite").chmod(0o700)
    (hooks / "post-merge").symlink_to("post-checkout")
    before = {p.name: (os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest(),
                       p.lstat().st_mode) for p in hooks.iterdir() if not p.name.endswith(".sample")}

    without_codekin = run_git(root, "checkout", "-q", "-b", "before").returncode
    assert without_codekin != 0
    out.unlink()

    report = githooks.install(root)
    assert report.healthy
    assert {Path(h.chained).name for h in report.hooks if h.chained} == {
        "post-checkout.codekin-chained", "post-rewrite.codekin-chained", "post-merge.codekin-chained"}

    result = run_git(root, "checkout", "-q", "-b", "x")
    assert result.returncode == without_codekin  # the chained hook's failure still fails checkout
    write(root, "lib/a.ex", "y\n")
    git(root, "commit", "-q", "-a", "-m", "y")
    old = git(root, "rev-parse", "HEAD").strip()
    git(root, "commit", "-q", "--amend", "-m", "y2")
    new = git(root, "rev-parse", "HEAD").strip()
    head0 = git(root, "rev-parse", "HEAD~1").strip()
    assert out.read_text() == f"checkout {head0} {head0} 1\nrewrite amend\n{old} {new}\n"
    assert {r.event for r in take(root)} == {"post-commit", "post-rewrite"}

    githooks.uninstall(root)
    after = {p.name: (os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest(),
                      p.lstat().st_mode) for p in hooks.iterdir() if not p.name.endswith(".sample")}
    assert after == before


def test_uninstall_without_earlier_hooks_leaves_none(hooked: Path) -> None:
    report = githooks.uninstall(hooked)
    assert report.actions == [f"removed {name}" for name in githooks.HOOK_NAMES]
    assert not [p for p in (hooked / ".git" / "hooks").iterdir() if not p.name.endswith(".sample")]
    assert not any(h.installed for h in report.hooks)


def test_core_hooks_path_is_honoured(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    git(root, "config", "core.hooksPath", ".husky/_")  # husky's layout: a relative hooks directory
    husky = root / ".husky" / "_"
    husky.mkdir(parents=True)
    (husky / "post-commit").write_text('#!/bin/sh\necho husky > "$(git rev-parse --show-toplevel)/husky.ran"\n')
    (husky / "post-commit").chmod(0o755)
    report = githooks.install(root)
    assert report.hooks_dir == str(husky) and report.hooks_path_config == ".husky/_"
    assert any("inside the repository" in action for action in report.actions)  # new files in git status
    assert not [p for p in (root / ".git" / "hooks").iterdir() if not p.name.endswith(".sample")]
    write(root, "lib/a.ex", "z\n")
    git(root, "commit", "-q", "-a", "-m", "z")
    assert paths_of(take(root)) == {"lib/a.ex"}
    assert (root / "husky.ran").read_text() == "husky\n"


def test_linked_worktree_and_submodule(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    githooks.install(root)
    git(root, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wt")
    wt = tmp_path / "wt"
    assert githooks.status(wt).hooks_dir == str(root / ".git" / "hooks")  # shared by the worktrees
    assert not githooks.status(wt).state_dir  # .codekin/ is per worktree
    githooks.install(wt)
    assert githooks.status(wt).healthy
    write(wt, "lib/w.ex", "w\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "w")
    assert paths_of(take(wt)) == {"lib/w.ex"} and take(root) == []

    inner = make_repo(tmp_path / "inner", {"x.ex": "x\n"})
    git(root, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "deps_src/inner")
    sub = root / "deps_src" / "inner"
    report = githooks.install(sub)
    assert report.hooks_dir == str(root / ".git" / "modules" / "deps_src" / "inner" / "hooks")
    write(sub, "y.ex", "y\n")
    git(sub, "add", "-A")
    git(sub, "commit", "-q", "-m", "y")
    assert paths_of(take(sub)) == {"y.ex"}


def test_pre_commit_framework_legacy_layout(hooked: Path) -> None:
    """pre-commit installing over our hook keeps it as <name>.legacy and runs it."""
    hooks = hooked / ".git" / "hooks"
    (hooks / "post-checkout").rename(hooks / "post-checkout.legacy")
    (hooks / "post-checkout").write_text('#!/bin/sh\n# File generated by pre-commit\n'
                                         '"$(dirname "$0")/post-checkout.legacy" "$@"\n')
    (hooks / "post-checkout").chmod(0o755)
    state = {h.name: h for h in githooks.status(hooked).hooks}["post-checkout"]
    assert state.installed and state.via == "pre-commit" and state.healthy
    git(hooked, "checkout", "-q", "-b", "b", "HEAD")
    assert take(hooked) == []
    githooks.uninstall(hooked)
    assert not (hooks / "post-checkout.legacy").exists()
    assert "pre-commit" in (hooks / "post-checkout").read_text()


def test_chaining_conflict_and_outside_git(hooked: Path, tmp_path: Path) -> None:
    hooks = hooked / ".git" / "hooks"
    (hooks / "post-merge").unlink()
    (hooks / "post-merge").write_text("#!/bin/sh\n")
    (hooks / "post-merge.codekin-chained").write_text("#!/bin/sh\n")
    with pytest.raises(CodekinError, match="already taken") as exc:
        githooks.install(hooked)
    assert "move" in exc.value.hint
    outside = tmp_path / "not-git"
    outside.mkdir()
    with pytest.raises(WorkspaceError, match="not inside a git repository"):
        githooks.status(outside)


def test_status_reports_problems(hooked: Path) -> None:
    hook = hooked / ".git" / "hooks" / "post-commit"
    hook.chmod(hook.stat().st_mode & ~(stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    (hooked / ".git" / "hooks" / "post-merge").write_bytes(githooks.hook_script("post-merge") + b"# edited\n")
    problems = {h.name: h.problem for h in githooks.status(hooked).hooks if h.problem}
    assert set(problems) == {"post-commit", "post-merge"}
    assert "not executable" in problems["post-commit"] and "another codekin version" in problems["post-merge"]
    githooks.install(hooked)
    assert githooks.status(hooked).healthy


def test_cli_hooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_repo(tmp_path / "repo", FILES)
    assert main(["hooks", "status", str(root)]) == 1
    assert "codekin's hooks are not installed: run `codekin hooks install`" in capsys.readouterr().out
    assert main(["hooks", "install", str(root)]) == 0
    out = capsys.readouterr().out
    assert "installed post-rewrite" in out and "  ok   post-checkout" in out
    assert main(["hooks", "status", str(root), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["healthy"] and payload["pending_records"] == 0
    assert main(["hooks", "uninstall", str(root)]) == 0
    assert "removed post-commit" in capsys.readouterr().out


def test_unlistable_change_becomes_a_full_scan_request(hooked: Path) -> None:
    """Run the installed hook as git would, with input git never sends: nothing is lost."""
    hook = hooked / ".git" / "hooks" / "post-rewrite"
    result = subprocess.run([str(hook), "amend"], input="not-a-commit also-not\n", cwd=hooked,
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (record,) = take(hooked)
    assert (record.event, record.full_scan, record.paths) == ("post-rewrite", True, ())
    (line,) = (hooked / ".codekin" / "logs" / "hooks.log").read_text().splitlines()
    assert "could not list the changed paths" in line
    (hooked / ".git" / "ORIG_HEAD").unlink(missing_ok=True)
    subprocess.run([str(hooked / ".git" / "hooks" / "post-merge"), "0"], cwd=hooked, check=True)
    (record,) = take(hooked)
    assert (record.event, record.full_scan) == ("post-merge", True)  # no ORIG_HEAD: check everything
