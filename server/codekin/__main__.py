"""`python -m codekin`: the `codekin` command."""

import sys

from codekin.cli.main import main

sys.exit(main())
