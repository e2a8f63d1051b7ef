"""What a path is for (code, tests, examples, vendored, generated, docs, build) and
which paths are twins (platform or version variants of one file).

Questions are about the code a project ships: tests, fixtures and examples say the same
words (they call the code) and crowd it out, so ranking weighs them down; it never drops
them. The conventions are those of the languages codekin indexes.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

ROLES = ("code", "test", "example", "bench", "vendor", "generated", "docs", "build")

_DIR_ROLES = {
    "test": "test", "tests": "test", "__tests__": "test", "spec": "test", "specs": "test",
    "testing": "test", "testdata": "test", "test_helpers": "test", "fixtures": "test", "fixture": "test",
    "integration_test": "test", "e2e": "test", "mocks": "test",
    "example": "example", "examples": "example", "samples": "example", "sample": "example", "demo": "example",
    "bench": "bench", "benches": "bench", "benchmark": "bench", "benchmarks": "bench",
    "vendor": "vendor", "vendored": "vendor", "third_party": "vendor", "thirdparty": "vendor",
    "third-party": "vendor", "external": "vendor", "deps": "vendor", "node_modules": "vendor",
    "bundled": "vendor", "_build": "generated", "gen": "generated", "generated": "generated",
    "dist": "generated", "doc": "docs", "docs": "docs", "guides": "docs",
}
_FILE_ROLES = [
    (re.compile(r"(^test_.*\.py|_test\.(py|go|exs|cc|cpp|c|rs)|_tests?\.rs|\.(test|spec)\.[jt]sx?|"
                r"_SUITE\.erl|_tests\.erl|Test\.java|_spec\.rb|_unittest\.cc|^conftest\.py)$"), "test"),
    (re.compile(r"(\.pb\.(go|cc|h)|_pb2\.py|\.generated\.\w+|\.min\.js|_gen\.go|\.g\.dart)$"), "generated"),
    (re.compile(r"^(Makefile|CMakeLists\.txt|BUILD(\.bazel)?|meson\.build|rebar\.config|mix\.exs|"
                r"package\.json|Cargo\.toml|go\.mod|setup\.py|pyproject\.toml|.*\.cmake|.*\.mk)$"), "build"),
    (re.compile(r"\.(md|rst|txt|adoc)$"), "docs"),
]
_TEST_WORDS = re.compile(r"\b(tests?|specs?|suites?|fixtures?|testing|mocks?)\b", re.I)


def path_role(path: str) -> str:
    """One of ROLES for a repository-relative POSIX path."""
    parts = PurePosixPath(path).parts
    for name, role in _FILE_ROLES:
        if name.search(parts[-1]):
            return role
    for part in parts[:-1]:
        dir_role = _DIR_ROLES.get(part.lower())
        if dir_role:
            return dir_role
    return "code"


def asks_for_tests(query: str) -> bool:
    """A query that names tests wants them ("test for the retry step")."""
    return bool(_TEST_WORDS.search(query))


# Platform and version tokens: src/win/pipe.c and src/unix/pipe.c are twins, as are v3/ and v4/.
_VARIANT = re.compile(r"^(win|windows|win32|win64|nt|unix|posix|linux|darwin|macos|osx|apple|bsd|freebsd|"
                      r"openbsd|netbsd|sunos|solaris|aix|android|ios|wasm|wasi|x86|x64|arm|arm64|aarch64|"
                      r"v\d+)$", re.I)
_SPLIT = re.compile(r"([_.\-/])")


def twin_key(path: str) -> str:
    """The path with platform and version words replaced: twins share a key."""
    return "".join("*" if _VARIANT.match(piece) else piece for piece in _SPLIT.split(path))


_TEST_SYMBOL = re.compile(r"(^|::|\.)(tests?|Tests?)(::|\.)|(^|::|\.)test_\w+$|^Test[A-Z]\w*$|:\w+_test_?/0$")


def is_test_symbol(symbol: str) -> bool:
    """Tests inside code files: Rust's `mod tests` (`tests::get_accepts_head`), Go's
    `TestRouter`, Python's `test_parse`, EUnit's `mod:parse_v2_test/0` and `mod:parse_test_/0`."""
    return bool(_TEST_SYMBOL.search(symbol))
