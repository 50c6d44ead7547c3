"""`python -m orchestrator.workers FD`: one worker process of a run (started by workers.parent, never by hand)."""

import sys

from .child import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
