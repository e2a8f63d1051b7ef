"""Whose index is this: index content (LanceDB tables, `state.json`, `query.chunks`, the
checksums) counts only when this machine wrote it.

A repository can commit `.codekin/`, and a copied tree carries it along; such an index was
built from other files by another codekin, perhaps on purpose to mislead. It is ignored (as
if there were none, with a warning that names why) and `codekin index` rebuilds it here:

- `state.json` carries the id of the machine that wrote it (`machine_id`, as the model
  registry's `active.json` does); another id is foreign. A state without one was written by a
  codekin from before the stamp: it is taken as this machine's (it cannot be told apart, and
  re-embedding every existing index on upgrade would cost its users an hour each) and is
  stamped by the next write;
- a file of the index that git tracks and that is still as git checked it out came with the
  repository, whatever it says (after a rebuild here, git sees those files changed or gone;
  LanceDB's version hints, a number each, may come out the same and are not counted).
"""

from __future__ import annotations

from pathlib import Path

from codekin import git
from codekin.index.integrity import REWRITTEN
from codekin.index.query_file import NAME as QUERY_FILE
from codekin.models.checkpoints import read_json_object
from codekin.models.registry import machine_id
from codekin.state import INDEX_STATE, LANCE_DIR, STATE_DIR, SUMS_FILE

INDEX_CONTENT = (INDEX_STATE, LANCE_DIR, QUERY_FILE, SUMS_FILE)  # under .codekin/
FIX = "run `codekin index`: it rebuilds the index from the source files on this machine"


def stamp() -> dict[str, str]:
    """What every writer of `state.json` adds to it."""
    return {"machine": machine_id()}


def foreign_reason(root: Path) -> str:
    """Why the index content under `root/.codekin` is not this machine's own, else "" (also when
    there is none, or its state file is damaged: that is reported as damage)."""
    tracked = _tracked_as_checked_out(root)
    if tracked:
        return (f"git tracks {tracked[0]}" + (f" and {len(tracked) - 1} more of its files" if len(tracked) > 1 else "")
                + " as the repository committed them (a repository cannot bring its own index)")
    state_path = root / STATE_DIR / INDEX_STATE
    if not state_path.is_file():
        return ""
    try:
        state = read_json_object(state_path)
    except (OSError, ValueError):
        return ""
    if not isinstance(state.get("active_key"), str):
        return ""  # not a state at all: damage, which IndexStore.state reports
    if "machine" in state and state["machine"] != machine_id():
        return "it was not made on this machine (it came with the repository or a copy of it)"
    return ""


def _tracked_as_checked_out(root: Path) -> list[str]:
    """Index files git tracks that are present and unchanged since git wrote them."""
    paths = [f"{STATE_DIR}/{name}" for name in INDEX_CONTENT]
    out = git.output(root, "ls-files", "-z", "-c", "-m", "-t", "--", *paths)
    if out is None:
        return []  # not a git repository: only the machine stamp speaks
    cached: list[str] = []
    changed: set[str] = set()
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        tag, _, path = entry.partition(" ")
        if tag == "H":
            cached.append(path)
        elif tag == "C":
            changed.add(path)
    # LanceDB's version hints hold only a number: a rebuild here may write the same bytes
    return [p for p in cached if p not in changed and p.rsplit("/", 1)[-1] not in REWRITTEN]


def remove_foreign(root: Path) -> None:
    """Remove a foreign index's state, query file and checksums (the caller discards its
    LanceDB tables and holds the index lock), so nothing of it is read or merged again."""
    for name in (INDEX_STATE, QUERY_FILE, SUMS_FILE):
        (root / STATE_DIR / name).unlink(missing_ok=True)
