"""`python -m orchestrator` is the same as the `pal-orchestrator` command."""

from .cli import main

main()
