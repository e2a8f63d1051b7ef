"""A definition's chunk is named as the language writes it and holds its doc, attributes and
decorators (issue 18: a symbol query finds the chunk that defines the symbol)."""

from __future__ import annotations

from codekin.chunking import chunk_text
from codekin.config import IndexConfig

SMALL = IndexConfig(max_chunk_lines=5)  # classes over 5 lines are split into their members


def spans(path: str, source: str, config: IndexConfig | None = None) -> list[tuple[str, str, int, int]]:
    return [(c.kind, c.symbol, c.start_line, c.end_line) for c in chunk_text(path, source, config)]


RUST = '''//! The crate doc.
use std::fmt;

/// A router.
///
/// Routes requests.
#[derive(Clone, Debug)]
pub struct Router<S> {
    state: S,
}

impl<S> Router<S> {
    /// Makes one.
    pub fn new(state: S) -> Self {
        Self { state }
    }

    pub fn route(self, path: &str) -> Self {
        self
    }
}

impl<S: Clone> tower::Service<Request<B>> for crate::Router<S> {
    fn call(&mut self, req: Request) {}
}

unsafe impl<S> Send for Router<S> {}
unsafe impl<S> Sync for Router<S> {}

macro_rules! route {
    () => {};
}

cfg_rt! {
    /// A handle.
    pub struct JoinHandle {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn routes() {}
}
'''


def test_rust_impls_are_named_after_their_type_and_docs_attributes_belong_to_the_item():
    assert spans("src/lib.rs", RUST, SMALL) == [
        ("class", "Router (part 1/2)", 4, 8),  # `///` doc and `#[derive]` with the struct
        ("class", "Router (part 2/2)", 9, 10),
        ("method", "Router::new", 12, 16),  # `impl<S> Router<S> {` opens its first method
        ("method", "Router::route", 18, 20),
        ("class", "Router (Service)", 23, 25),
        ("block", "lib.rs", 26, 29),  # marker impls: no chunk of their own
        ("macro", "route", 30, 32),
        ("class", "JoinHandle", 35, 36),  # an item inside `cfg_rt! { ... }`
        ("function", "tests::routes", 41, 42),
    ]


GO = '''package chi

// Mux is a router.
type Mux struct {
	handler int
}

type (
	// Middlewares is a stack.
	Middlewares []int
	nodeTyp     uint8
)

// Use appends a middleware.
func (mx *Mux) Use(m int) {
	mx.handler = m
}

func (n *node[T]) find() {}

// NewMux makes a Mux.
func NewMux() *Mux { return &Mux{} }
'''


def test_go_methods_keep_their_receiver_and_types_are_chunks():
    assert spans("mux.go", GO) == [
        ("class", "Mux", 3, 6),
        ("class", "Middlewares", 9, 10),
        ("class", "nodeTyp", 11, 11),
        ("method", "Mux.Use", 14, 17),
        ("method", "node.find", 19, 19),
        ("function", "NewMux", 21, 22),
    ]


EXPRESS = """'use strict'

var res = Object.create(null)
module.exports = res

/**
 * Send a response.
 */

res.send = function send(body) {
  return this
}

exports.normalizeType = function (type) {
  return type
}

Application.prototype.listen = function () {}

const compose = (a, b) => a(b)
"""

KOA = """module.exports = class Application extends Emitter {
  /** Use a middleware. */
  use (fn) {
    return this
  }

  listen (...args) {
    return this.server
  }
}
"""

KOA_REQUEST = """module.exports = {
  /** The header. */
  get header () {
    return this.req.headers
  },

  is (type) { return type }
}
"""


def test_javascript_assigned_functions_and_exported_classes_are_named():
    assert spans("lib/response.js", EXPRESS) == [
        ("block", "response.js", 1, 5),
        ("function", "res.send", 6, 12),  # JSDoc one blank line above still belongs to it
        ("function", "normalizeType", 14, 16),
        ("function", "Application.listen", 18, 18),
        ("function", "compose", 20, 20),
    ]
    assert spans("lib/application.js", KOA, SMALL) == [
        ("class", "Application", 1, 1),
        ("method", "Application.use", 2, 5),
        ("method", "Application.listen", 7, 9),
    ]
    assert spans("lib/request.js", KOA_REQUEST, SMALL) == [
        ("class", "request", 1, 1),  # `module.exports = {...}`: named after the file
        ("method", "request.header", 2, 5),
        ("method", "request.is", 7, 7),
    ]


C = """/* LZ4 - licence */

/*! LZ4_compress_default() :
 *  Compresses srcSize bytes.
 */
int LZ4_compress_default(const char* src, char* dst, int srcSize);
int LZ4_undocumented(void);
#define LZ4_VERSION 10904

/* Worst case. */
#define LZ4_COMPRESSBOUND(isize)  ((unsigned)(isize) + 16)

typedef struct {
    int table[16];
} LZ4_stream_t;

typedef enum { notLimited = 0, limitedOutput = 1 } limitedOutput_directive;

enum { LZ4_MIN = 4 };

static int x = 1;  /* trailing: not the doc of compress */
/* Compress a block. */
static int compress(int x)
{
    return x;
}
"""


def test_c_typedefs_anonymous_types_documented_prototypes_and_macros():
    assert spans("lib/lz4.c", C) == [
        ("declaration", "LZ4_compress_default", 3, 6),
        ("block", "lz4.c", 7, 9),  # a `#define` is code, not a comment
        ("macro", "LZ4_COMPRESSBOUND", 10, 11),
        ("class", "LZ4_stream_t", 13, 15),
        ("class", "limitedOutput_directive", 17, 17),
        ("class", "LZ4_MIN", 19, 19),  # an anonymous enum: its first constant
        ("function", "compress", 22, 26),
    ]


CPP = """namespace re2 {
// A regular expression.
class RE2 {
 public:
  RE2& operator=(const RE2&) { return *this; }
  const std::string& pattern() const { return pattern_; }

  // The error, if any.
  int error_code() const;
 private:
  std::string pattern_;
};
}
"""


def test_cpp_split_class_members_and_the_lines_between_them():
    assert spans("re2/re2.h", CPP, SMALL) == [
        ("class", "re2::RE2", 2, 4),
        ("method", "re2::RE2::operator=", 5, 5),
        ("method", "re2::RE2::pattern", 6, 6),
        ("declaration", "re2::RE2::error_code", 8, 9),
        ("block", "re2::RE2", 10, 12),  # the class's own lines, not the file's
    ]



EXPORTED = """namespace spdlog {
class SPDLOG_API logger {
public:
    void flush() { flush_(); }
};
struct GTEST_API_ TestInfo final : public Base {};
}
"""


def test_a_cpp_export_macro_before_a_class_name_hides_neither_the_class_nor_its_members():
    # The grammar reads `class SPDLOG_API logger {` as a function named `logger`.
    assert spans("spdlog/logger.h", EXPORTED, SMALL) == [
        ("class", "spdlog::logger", 2, 5),
        ("class", "spdlog::TestInfo", 6, 6),
    ]
    assert chunk_text("spdlog/logger.h", EXPORTED)[0].text.startswith("class SPDLOG_API logger {")  # as written

PYTHON = '''import os


# The context.
class Context:
    """Holds state."""

    class Meta:
        pass

    @property
    def name(self):
        return 1


@decorated
@twice
def invoke(ctx):
    """Invoke it."""
    return ctx


if os.name == "nt":
    def _windows():
        pass
'''


def test_python_decorators_comments_and_nested_classes():
    assert spans("click/core.py", PYTHON, SMALL) == [
        ("class", "Context", 4, 7),
        ("class", "Context.Meta", 8, 9),
        ("method", "Context.name", 11, 13),
        ("function", "invoke", 16, 20),
        ("function", "_windows", 24, 25),
    ]


def test_a_comment_belongs_to_the_definition_it_touches():
    rust = "//! The crate doc.\nfn main() {}\n\n// A note on the file.\n\n/// Runs.\n#[inline]\nfn run() {}\n"
    assert spans("src/main.rs", rust) == [("function", "main", 2, 2), ("function", "run", 6, 8)]
    go = "package x\n\nvar n = 1 // trailing\n// Get gets.\nfunc Get() {}\n"
    assert spans("x.go", go)[-1] == ("function", "Get", 4, 5)
