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
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

MAX_BODY_LINES = 6  # code lines (no docs, specs, comments, `end`) for a function to count as thin
MAX_BODY_CHARS = 800  # ... and characters of them (a minified or generated line is not thin)
EXCERPT_LINES = 5  # lines of each callee clause read, from its head
MAX_CLAUSES = 2  # callee clauses excerpted at most
EXCERPT_WORDS = 40  # distinct words kept from them (about 50 MiniLM tokens)

_ELIXIR_HEAD = re.compile(r"^\s*(?:def|defp|defmacro|defmacrop|defn|defnp)\s+([a-z_][A-Za-z0-9_]*[?!]?)")
_ERLANG_HEAD = re.compile(r"^([a-z][A-Za-z0-9_@]*|'(?:[^'\\\n]|\\.)+')\s*\(")

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
_ELIXIR_START = re.compile(
    r"(?<![\w.])(?:GenServer|GenStateMachine|Supervisor|DynamicSupervisor|:gen_server|:gen_statem|"
    r":supervisor)\.start(?:_link|_monitor)?\(")
_ERLANG_START = re.compile(
    r"(?<![\w:])(?:gen_server|gen_statem|gen_fsm|gen_event|supervisor|supervisor_bridge)\s*:\s*"
    r"start(?:_link|_monitor)?\s*\(")
_ELIXIR_TAG = re.compile(r"^\{?\s*:([A-Za-z_][A-Za-z0-9_]*[?!]?)")
_ERLANG_TAG = re.compile(r"^\{?\s*([a-z][A-Za-z0-9_@]*|'(?:[^'\\\n]|\\.)+')")
# Tags a clause head matches: any atom in an Elixir head; an Erlang atom that is a whole
# argument or tuple element (`handle_call(stats, ...`, `{recent, N}`).
_ELIXIR_HEAD_TAG = re.compile(r":([A-Za-z_][A-Za-z0-9_]*[?!]?)(?![\w?!])")
_ERLANG_HEAD_TAG = re.compile(r"[({,]\s*([a-z][A-Za-z0-9_@]*|'(?:[^'\\\n]|\\.)+')\s*(?=[,})])")


@dataclass(frozen=True)
class DelegationRules:
    """One language's patterns (its LanguageSpec holds them): clause heads, message sends with
    the argument that is the message, process starts, a message's tag, the tags of a head."""

    head: re.Pattern[str]
    sends: tuple[tuple[re.Pattern[str], int], ...]
    start: re.Pattern[str]
    tag: re.Pattern[str]
    head_tag: re.Pattern[str]


ELIXIR_RULES = DelegationRules(_ELIXIR_HEAD, _ELIXIR_SENDS, _ELIXIR_START, _ELIXIR_TAG, _ELIXIR_HEAD_TAG)
ERLANG_RULES = DelegationRules(_ERLANG_HEAD, _ERLANG_SENDS, _ERLANG_START, _ERLANG_TAG, _ERLANG_HEAD_TAG)
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


def clause_heads(rules: DelegationRules, lines: list[str]) -> list[Clause]:
    """Every function clause head of a file (Elixir `def`/`defp` lines, Erlang `name(` at column 0)."""
    out = []
    for row, line in enumerate(lines):
        match = rules.head.match(line)
        if match:
            out.append(Clause(match.group(1), row))
    return out


class Delegations:
    """The function clauses of one file, indexed once, and the excerpt each thin function gets."""

    def __init__(self, rules: DelegationRules, lines: list[str]) -> None:
        self.rules = rules
        self.lines = lines
        self.clauses = clause_heads(rules, lines)
        self.rows = [c.row for c in self.clauses]
        self.by_name: dict[str, list[int]] = {}  # name -> positions in self.clauses
        for i, clause in enumerate(self.clauses):
            self.by_name.setdefault(clause.name, []).append(i)
        self._by_tag: dict[str, list[int]] | None = None  # built on the first message send

    def excerpt(self, start: int, end: int) -> str:
        """The excerpt of what the function on rows start..end (0-based, inclusive) delegates
        to, or "" when it is not thin or delegates to nothing in this file."""
        first, last = bisect_left(self.rows, start), bisect_right(self.rows, end)
        if first == last:
            return ""
        body = [line for line in self.lines[self.rows[first]:end + 1] if not _NOT_CODE.match(line)]
        code = "\n".join(body)
        if len(body) > MAX_BODY_LINES or len(code) > MAX_BODY_CHARS:
            return ""
        own = range(first, last)
        targets = self._handlers(code, own) or self._inits(code, own) or self._callees(code, own)
        return self._words(targets[:MAX_CLAUSES])

    def _handlers(self, code: str, own: range) -> list[int]:
        """Callback clauses whose head matches a message the code sends to its process."""
        tags: list[str] = []
        for send, index in self.rules.sends:
            for match in send.finditer(code):
                message = code[match.end():] if index < 0 else _argument(code, match.end(), index)
                tag = self.rules.tag.match(message.lstrip())
                if tag is not None and tag.group(1) not in tags:
                    tags.append(tag.group(1))
        if not tags:
            return []
        by_tag = self._tag_index()
        found: list[int] = []
        for name in tags:
            found += [i for i in by_tag.get(name, []) if i not in own and i not in found]
        return found

    def _tag_index(self) -> dict[str, list[int]]:
        """Message tag -> the clauses whose head matches it (`handle_call({:tag, ...}`, `(tag, ...`)."""
        if self._by_tag is None:
            self._by_tag = {}
            pattern = self.rules.head_tag
            for i, clause in enumerate(self.clauses):
                for tag in dict.fromkeys(pattern.findall(_head_arguments(self.lines, clause))):
                    self._by_tag.setdefault(tag, []).append(i)
        return self._by_tag

    def _inits(self, code: str, own: range) -> list[int]:
        if not self.rules.start.search(code):
            return []
        return [i for i in self.by_name.get("init", []) if i not in own][:1]

    def _callees(self, code: str, own: range) -> list[int]:
        """The first clause of each local function the code calls, in the order of the calls."""
        out: list[int] = []
        for match in _LOCAL_CALL.finditer(code):
            callee = next((i for i in self.by_name.get(match.group(1) or match.group(2), []) if i not in own), None)
            if callee is not None and callee not in out:
                out.append(callee)
                if len(out) == MAX_CLAUSES:
                    break
        return out

    def _words(self, targets: list[int]) -> str:
        """The distinct words of the first EXCERPT_LINES code lines of each target clause (its
        head and the start of its body, up to the next line indented no deeper than the head)."""
        seen: set[str] = set()
        words: list[str] = []
        for i in targets:
            row = self.rows[i]
            stop = self.rows[i + 1] if i + 1 < len(self.rows) else len(self.lines)
            indent = _indent(self.lines[row])
            text = [self.lines[row]]
            for line in self.lines[row + 1:stop]:
                if len(text) == EXCERPT_LINES or (line.strip() and _indent(line) <= indent):
                    break
                if line.strip():
                    text.append(line)
            for word in _WORD.findall(" ".join(text)):
                if word not in _SYNTAX_WORDS and word.lower() not in seen:
                    seen.add(word.lower())
                    words.append(word)
        return " ".join(words[:EXCERPT_WORDS])


def _head_arguments(lines: list[str], clause: Clause) -> str:
    """The text of a clause head from its `(` (two lines when the head wraps)."""
    line = lines[clause.row]
    head = line[line.find("("):] if "(" in line else ""
    if "->" not in line and " do" not in line and clause.row + 1 < len(lines):
        head += " " + lines[clause.row + 1]
    return head


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


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
