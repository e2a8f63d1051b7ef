"""What a thin function hands its work to: a short excerpt of that code, for its context.

A client function such as `def spend(key, cost), do: GenServer.call(__MODULE__, {:spend, key,
cost})` holds no meaning of its own: what it does lives in the `handle_call({:spend, ...}, ...)`
clause further down the file. A 40-line window often holds both; a syntax chunk does not. So a
thin function (a few code lines) gets, in its embedded header and lexical terms (never in the
text shown to the user), the words of the first lines of what it delegates to in the same file:

- `GenServer.call/cast(server, {:tag, ...})`, `gen_server:call(?MODULE, {tag, ...})`,
  `gen_statem:call/cast` ...: the callback clauses whose head matches the tag
  (`handle_call({:tag, ...}`, `handle_event({call, From}, {tag, ...}, ...)`);
- `GenServer.start_link(__MODULE__, ...)`, `gen_server:start_link(..., ?MODULE, ...)`,
  `Supervisor.start_link` ...: the module's `init` clause;
- a call of a function defined in the same file (`recent(N) -> recent(all, N)`, a `defp`
  helper): that function's first clause.

The excerpt keeps only the names and words of that code, each once, in order (`handle_call check
key cost from state tokens Map get buckets capacity`), at most EXCERPT_WORDS: punctuation costs
model tokens and says nothing to a prose query. Over the 150k-line benchmark corpus it adds
about 1 % to the tokens embedded (benchmarks/bench_context_tokens.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BODY_LINES = 6  # code lines (no docs, specs, comments, `end`) for a function to count as thin
EXCERPT_LINES = 5  # lines of each callee clause read, from its head
MAX_CLAUSES = 2  # callee clauses excerpted at most
EXCERPT_WORDS = 40  # distinct words kept from them (about 50 MiniLM tokens)

_ELIXIR_HEAD = re.compile(r"^\s*(?:def|defp|defmacro|defmacrop|defn|defnp)\s+([a-z_][A-Za-z0-9_]*[?!]?)")
_ERLANG_HEAD = re.compile(r"^([a-z][A-Za-z0-9_@]*|'(?:[^'\\\n]|\\.)+')\s*\(")
_HEADS = {"elixir": _ELIXIR_HEAD, "erlang": _ERLANG_HEAD}

# Messages to a process: (a call whose argument `index` is the message) ( dest, MESSAGE, ...)
_ELIXIR_SENDS = (
    (re.compile(r"(?<![\w.])(?:GenServer|GenStateMachine|:gen_server|:gen_statem|:gen_event)\."
                r"(?:call|cast|multi_call|abcast|send_request)\("), 1),
    (re.compile(r"(?<![\w.:])(?:Process\.)?send\("), 1),
    (re.compile(r"(?<![\w.])(?:Process|:erlang)\.send_after\("), 1),
)
_ERLANG_SENDS = (
    (re.compile(r"(?<![\w:])(?:gen_server|gen_statem|gen_fsm|gen_event)\s*:\s*(?:call|cast|multi_call|abcast|"
                r"send_request|sync_send_event|send_event|sync_send_all_state_event|send_all_state_event)\s*\("), 1),
    (re.compile(r"(?<![\w:])erlang\s*:\s*send\s*\("), 1),
    (re.compile(r"(?<![\w:])erlang\s*:\s*(?:send_after|start_timer)\s*\("), 2),
    (re.compile(r"(?<![=!/])!(?!=)"), -1),  # Pid ! Message: the message follows
)
_SENDS = {"elixir": _ELIXIR_SENDS, "erlang": _ERLANG_SENDS}
_ELIXIR_START = re.compile(
    r"(?<![\w.])(?:GenServer|GenStateMachine|Supervisor|DynamicSupervisor|:gen_server|:gen_statem|"
    r":supervisor)\.start(?:_link|_monitor)?\(")
_ERLANG_START = re.compile(
    r"(?<![\w:])(?:gen_server|gen_statem|gen_fsm|gen_event|supervisor|supervisor_bridge)\s*:\s*"
    r"start(?:_link|_monitor)?\s*\(")
_STARTS = {"elixir": _ELIXIR_START, "erlang": _ERLANG_START}
_ELIXIR_TAG = re.compile(r"^\{?\s*:([A-Za-z_][A-Za-z0-9_]*[?!]?)")
_ERLANG_TAG = re.compile(r"^\{?\s*([a-z][A-Za-z0-9_@]*|'(?:[^'\\\n]|\\.)+')")
_TAGS = {"elixir": _ELIXIR_TAG, "erlang": _ERLANG_TAG}
# A local call: a name and `(`, not a remote `Mod.f(`/`mod:f(`; or a local capture `&f/1`, `fun f/1`.
_LOCAL_CALL = re.compile(r"(?<![\w.:&@?$'])([a-z_][A-Za-z0-9_]*[?!]?)\s*\(|(?:&|\bfun\s+)([a-z_][A-Za-z0-9_]*[?!]?)/\d")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*[A-Za-z0-9]")  # names whole: `take_newest`, `Map`
_SYNTAX_WORDS = frozenset("def defp defmacro defmacrop do end fn when case of receive after begin if cond".split())
_NOT_CODE = re.compile(r"^\s*(?:$|@|%|#|-spec\b|-doc\b|end\b\s*$|\"\"\"\s*$)")


@dataclass(frozen=True)
class Clause:
    """One clause of a function: its name and the 0-based row of its head."""

    name: str
    row: int


def clause_heads(language: str, lines: list[str]) -> list[Clause]:
    """Every function clause head of a file (Elixir `def`/`defp` lines, Erlang `name(` at column 0)."""
    head = _HEADS.get(language)
    if head is None:
        return []
    out = []
    for row, line in enumerate(lines):
        match = head.match(line)
        if match:
            out.append(Clause(match.group(1), row))
    return out


def delegation(language: str, lines: list[str], clauses: list[Clause], start: int, end: int) -> str:
    """The excerpt of what the function on rows start..end (0-based, inclusive) delegates to,
    or "" when it is not thin or delegates to nothing in this file."""
    own = [c for c in clauses if start <= c.row <= end]
    if not own or language not in _HEADS:
        return ""
    body = lines[own[0].row:end + 1]
    if sum(1 for line in body if not _NOT_CODE.match(line)) > MAX_BODY_LINES:
        return ""
    code = "\n".join(line for line in body if not _NOT_CODE.match(line))
    others = [c for c in clauses if not start <= c.row <= end]
    targets = (_handlers(language, code, lines, others) or _inits(language, code, others)
               or _callees(code, others))
    return _excerpt(lines, clauses, targets[:MAX_CLAUSES])


def _handlers(language: str, code: str, lines: list[str], others: list[Clause]) -> list[Clause]:
    """Callback clauses whose head matches the message the code sends to its process."""
    found: list[Clause] = []
    for send, index in _SENDS[language]:
        for match in send.finditer(code):
            message = code[match.end():] if index < 0 else _argument(code, match.end(), index)
            tag = _TAGS[language].match(message.lstrip())
            if tag is not None:
                found += _matching(language, tag.group(1), lines, others, found)
    return found


def _matching(language: str, tag: str, lines: list[str], others: list[Clause], found: list[Clause]) -> list[Clause]:
    """The clauses (not yet found) whose head pattern-matches a message tagged `tag`."""
    name = re.escape(tag)
    pattern = (re.compile(rf":{name}(?![\w?!])") if language == "elixir"
               else re.compile(rf"[({{,]\s*{name}\s*[,}})]"))
    return [c for c in others if c not in found and pattern.search(_head_arguments(lines, c))]


def _head_arguments(lines: list[str], clause: Clause) -> str:
    """The text of a clause head after its name (two lines when the head wraps)."""
    line = lines[clause.row]
    head = line[line.find("("):] if "(" in line else ""
    if "->" not in line and " do" not in line and clause.row + 1 < len(lines):
        head += " " + lines[clause.row + 1]
    return head


def _inits(language: str, code: str, others: list[Clause]) -> list[Clause]:
    if not _STARTS[language].search(code):
        return []
    return [c for c in others if c.name == "init"][:1]


def _callees(code: str, others: list[Clause]) -> list[Clause]:
    """The first clause of each local function the code calls, in the order of the calls."""
    first: dict[str, Clause] = {}
    for clause in others:
        first.setdefault(clause.name, clause)
    out: list[Clause] = []
    for match in _LOCAL_CALL.finditer(code):
        clause = first.get(match.group(1) or match.group(2))
        if clause is not None and clause not in out:
            out.append(clause)
    return out


def _argument(code: str, offset: int, index: int) -> str:
    """Argument `index` of the call whose `(` ends just before `offset` ("" when it has fewer)."""
    args = _arguments(code, offset)
    return args[index] if index < len(args) else ""


def _arguments(code: str, offset: int) -> list[str]:
    """The top-level arguments of the call whose `(` ends just before `offset`."""
    args: list[str] = []
    depth, start = 0, offset
    for i in range(offset, len(code)):
        char = code[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                args.append(code[start:i].strip())
                return args
            depth -= 1
        elif char == "," and depth == 0:
            args.append(code[start:i].strip())
            start = i + 1
    return args


def _excerpt(lines: list[str], clauses: list[Clause], targets: list[Clause]) -> str:
    """The distinct words of the first EXCERPT_LINES code lines of each target clause (its head
    and the start of its body, up to the next line indented no deeper than the head)."""
    rows = sorted(c.row for c in clauses)
    seen: set[str] = set()
    words: list[str] = []
    for target in targets:
        following = [r for r in rows if r > target.row]
        stop = following[0] if following else len(lines)
        indent = _indent(lines[target.row])
        text = [lines[target.row]]
        for line in lines[target.row + 1:stop]:
            if len(text) == EXCERPT_LINES or (line.strip() and _indent(line) <= indent):
                break
            if line.strip():
                text.append(line)
        for word in _WORD.findall(" ".join(text)):
            if word not in _SYNTAX_WORDS and word.lower() not in seen:
                seen.add(word.lower())
                words.append(word)
    return " ".join(words[:EXCERPT_WORDS])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
