"""Worker processes: a run's identities shared among N processes, every cross-identity decision in the parent.

    parent.py   the pool: starts the workers, dispatches identities, serves their hooks, journals their outcomes
    child.py    one worker: the same session and reconcile as an in-process run, hooks asked of the parent
    wire.py     the pipe between them and its messages

See docs/reliability.md, "Worker processes".
"""
