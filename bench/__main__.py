"""`python -m bench`: the benchmark's command line (see `bench.cli`)."""

import contextlib
import sys

from .cli import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
