"""The format: pure functions over task documents and log lines, shared by every backend (no I/O here).

* :mod:`atlas_tasks._codec` — byte-exact task.json / workspace.json (the Go ATLAS's encoding, schema gate).
* :mod:`.logs` — one log entry as one JSON line, and the tolerant parser (torn tail, damaged lines).
* :mod:`.summaries` — a task's listing summary straight from its bytes; newest-first and natural order.
* :mod:`.head` — the few fields a revision-checked write compares, read without a full decode.

A backend stores bytes and rows; what those bytes mean is decided here once, so two backends can never disagree.
"""
