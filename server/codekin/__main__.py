"""`python -m codekin`: the `codekin` command."""

import sys

from codekin.cli.main import run

sys.exit(run())
