"""The `codekin` command, one module per command group (thin: parse, call a service, print).

main.py builds the parser from the groups and turns errors into exit codes; common.py holds
what the groups share. Nothing outside this package imports it.
"""

from __future__ import annotations

from codekin.cli.main import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
