"""`python -m orchestrator.emulator --world world.yaml [--port 0] [--latency-ms 50] ...`"""

from .process import serve

raise SystemExit(serve())
