"""`codekin mcp`: the Model Context Protocol face for coding agents, over stdio.

A thin face beside the language server, over the same services: the Engine answers
search, similar, definition and status; the learning loop (codekin.jobs) retrains.
- tools.py: the tools as agents see them (names, descriptions, JSON schemas), no SDK;
- arguments.py: a tool call's arguments checked against them, as typed values;
- results.py: hits as results (path, lines, symbol, score, a capped snippet);
- service.py: the tools as plain methods over one repository (no SDK);
- progress.py: codekin's progress reports as MCP progress notifications;
- server.py: the official SDK's low-level server over stdio, errors as MCP errors.

Read-only unless the user's own config sets `[mcp] allow_retrain = true`; reads nothing
outside the repository (the user's config and model caches aside); opens no network port.
"""
