"""Training snippets: the index's chunks of the BEAM and C/C++ files the training globs select.

A Snippet is a chunk (same chunker as the index) or a piece cut from one (a doc comment,
a spec, a header declaration, an earlier revision from git history).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from codekin.chunking import Chunk, chunk_text, header_line
from codekin.chunking.chunk import base_symbol, content_hash
from codekin.chunking.languages import language_for
from codekin.chunking.spec import BEAM, CPP, family_languages
from codekin.config import Config
from codekin.index.paths import path_role
from codekin.workspace import UnreadableFile, read_text, scan

FAMILIES = (BEAM, CPP)
# Kinds whose text is shown to the model as is (a query-like text), not as header + code.
TEXT_KINDS = {"doc", "spec", "declaration"}


@dataclass(frozen=True)
class Snippet:
    """A piece of code or text used in training, with where it comes from."""

    path: str
    language: str
    kind: str  # function, module, class, ... as chunked; "doc", "spec", "declaration" when cut out
    symbol: str
    start_line: int
    end_line: int
    text: str
    family: str = BEAM  # "beam" (Elixir/Erlang) or "cpp" (C/C++): which training globs matched
    revision: str = ""  # a git revision for a version from history; "" = the working tree
    context: str = ""  # the chunk's module summary (Chunk.context): part of the header the model sees

    @classmethod
    def from_chunk(cls, chunk: Chunk, family: str) -> Snippet:
        return cls(chunk.path, chunk.language, chunk.kind, chunk.symbol, chunk.start_line,
                   chunk.end_line, chunk.text, family, context=chunk.context)

    @property
    def base_symbol(self) -> str:
        """The symbol without the ` (part i/n)` of an over-long unit split in pieces."""
        return base_symbol(self.symbol)

    @property
    def model_text(self) -> str:
        """What the model sees: header + code like the index (Chunk.embed_text), or plain text."""
        if self.kind in TEXT_KINDS:
            return self.text
        return f"{header_line(self.language, self.kind, self.symbol, self.context)}\n{self.text}"

    @property
    def content_hash(self) -> str:
        """Equals the index's content_hash for an unmodified chunk (lets vectors be reused)."""
        return content_hash(self.model_text)

    @property
    def key(self) -> tuple[str, int, int, str, str]:
        return (self.path, self.start_line, self.end_line, self.kind, self.revision)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Snippet:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


# -- globs ---------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """`**/` = any number of directories (also none), `*` and `?` stay in one directory,
    `{a,b}` = either alternative."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "{" and "}" in pattern[i:]:
            end = pattern.index("}", i)
            out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1:end].split(",")) + ")")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(path: str, patterns: list[str]) -> bool:
    return any(_glob_regex(p).match(path) for p in patterns)


# -- collecting ----------------------------------------------------------------------------
MIN_SNIPPET_CHARS = 30


def useful(chunk: Chunk) -> bool:
    """Chunks worth training on: at least two non-blank lines and some substance."""
    lines = [line for line in chunk.text.split("\n") if line.strip()]
    return len(lines) >= 2 and len(chunk.text.strip()) >= MIN_SNIPPET_CHARS and chunk.kind != "window"


@dataclass
class SourceFiles:
    """The training files of a repository: text and snippets, by family."""

    root: Path
    family: dict[str, str] = field(default_factory=dict)  # path -> beam | cpp
    texts: dict[str, str] = field(default_factory=dict)
    snippets: dict[str, list[Snippet]] = field(default_factory=dict)  # path -> its snippets
    skipped: dict[str, str] = field(default_factory=dict)

    def paths(self, family: str) -> list[str]:
        return sorted(p for p, f in self.family.items() if f == family)

    def count(self, family: str) -> tuple[int, int]:
        """(files, snippets) of a family."""
        paths = self.paths(family)
        return len(paths), sum(len(self.snippets[p]) for p in paths)


BEAM_LANGUAGES = family_languages(BEAM)  # elixir, erlang (chunking/spec.py)
CPP_LANGUAGES = family_languages(CPP)  # c, cpp
SKIPPED_DIRS = frozenset({"priv"})  # a BEAM project's static assets and built artefacts


def auto_family(path: str) -> str | None:
    """The default selection, for any layout: a BEAM or C/C++ file that is the project's own
    code (not tests, examples, deps/, _build/, node_modules/, vendored or generated)."""
    language = language_for(path)
    family = BEAM if language in BEAM_LANGUAGES else CPP if language in CPP_LANGUAGES else None
    if family is None or path_role(path) != "code":
        return None
    if SKIPPED_DIRS & {part.lower() for part in PurePosixPath(path).parts[:-1]}:
        return None
    return family


def family_of(path: str, config: Config) -> str | None:
    """beam | cpp | None: the training globs of a family when configured, else auto_family."""
    training = config.training
    auto = auto_family(path) if not (training.beam_globs and training.cpp_globs) else None
    if glob_match(path, training.beam_globs) if training.beam_globs else auto == BEAM:
        return BEAM
    if glob_match(path, training.cpp_globs) if training.cpp_globs else auto == CPP:
        return CPP
    return None


def describe_selection(files: SourceFiles) -> str:
    """"412 training files: elixir 300, erlang 80, cpp 32" (printed before generating)."""
    counts: dict[str, int] = {}
    for path in files.family:
        language = language_for(path)
        counts[language] = counts.get(language, 0) + 1
    by_language = ", ".join(f"{lang} {n}" for lang, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{len(files.family)} training files" + (f": {by_language}" if by_language else "")


def collect(root: Path, config: Config) -> SourceFiles:
    """Scan the repository like the indexer does and chunk the files the training globs select."""
    found = scan(root, config.index)
    result = SourceFiles(root=root, skipped=dict(found.skipped))
    for source in found.files:
        family = family_of(source.path, config)
        if family is None:
            continue
        try:
            text = read_text(root, source.path)
        except UnreadableFile as exc:
            result.skipped[source.path] = str(exc)
            continue
        result.family[source.path] = family
        result.texts[source.path] = text
        result.snippets[source.path] = [
            Snippet.from_chunk(c, family) for c in chunk_text(source.path, text, config.index) if useful(c)
        ]
    return result
