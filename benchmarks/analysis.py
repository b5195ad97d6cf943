"""Why a row can miss its target: the cost the store pays beyond its floor, from profiles of this code.

Written by hand from cProfile runs (the run's own profile of each missed row follows the text in the report); the
figures of the run itself are in the table. ``render_doc`` prints the entry of every row that misses.
"""

from __future__ import annotations

WHY: dict[str, str] = {
    "update": (
        "A fixed ~0.6 ms on top of the floor's write + fsync + rename + directory fsync. Measured beside the floor "
        "outside the run (quiet disk): update 1.30 ms, floor 0.71 ms, of which encoding the task and decoding the "
        "copy handed back cost 0.15–0.27 ms, and the rest is system calls: per update strace counts 22 openat, "
        "26 close and 21 newfstatat (the O_NOFOLLOW walk from the home to the task directory, again to "
        "`.atlas-tasks/locks/<ws>`, again after the lock to check the task was not deleted meanwhile; two lock "
        "files, ours and the Go ATLAS's; the head read for the revision check) besides the floor's 2 fsync and 1 "
        "rename. Reading task.json for the revision check also dirties its atime (relatime), ~40 µs more per "
        "fsync. Where an fsync costs several ms (a busy disk) the ratio drops to 1.1–1.5×; where it costs < 1 ms it "
        "is ~2×. Closing it: keep the home, workspace and lock directory descriptors open per store (checked by "
        "inode) instead of walking 12 components per update, open task.json with O_NOATIME, and hand back the "
        "stored task without re-decoding it."
    ),
    "create": (
        "A create makes five things durable where the floor makes two: task.json (file fsync), its new directory "
        "entry (task directory fsync), the reserved id (tasks directory fsync, for the mkdir), and workspace.json "
        "with its directory (the Go ATLAS's task refs, kept in step). With fsync-bound costs that is ~2.5× before "
        "any CPU. The O(tasks) part (every ref decoded into a model and re-encoded) and the deep copy of the task "
        "are gone; on top of the fsyncs comes update's fixed cost (walks, locks, encode, decode: see update). What "
        "would close the rest is making workspace.json refs lazy (resynced by `doctor`, as they already are after "
        "a crash), which the row's definition rules out."
    ),
    "create_big": (
        "As create, plus workspace.json itself grows with the workspace (~130 bytes per task ref: 1.3 MB at 10,000 "
        "tasks), and it is rewritten and fsynced on every create, as the Go ATLAS does. The refs are now edited as "
        "plain JSON (no model per ref), so what remains is parsing, encoding and writing the 1.3 MB document."
    ),
    "get": (
        "The floor parses JSON into dicts; `get` validates a 10 KB task into typed models: ~20 timestamps through "
        "the RFC 3339 parser that keeps Go's nanoseconds and original text (Python), and a wrap validator that "
        "remembers the key spelling (the ~20 status/type fields are now validated in Rust). Decoding alone is "
        "~75 µs on a quiet core, against ~25 µs for json.loads. Meeting 100 µs on a contended 2-core VM needs those "
        "validators in Rust (pydantic's own datetime, which loses the nanoseconds Go writes)."
    ),
    "list": (
        "Reading 10,000 tasks costs 10,000 × get's decode. Pausing the cyclic GC while the list is built (every "
        "collection re-walked all the models built so far) cut it by 3–5×; the rest is the typed validation that "
        "`get` pays (~75 µs per task against ~25 µs for json.loads, see get) plus one full collection when the "
        "collector is switched back on (the caller would pay it at its next allocation anyway). Callers that only "
        "show tasks should use `list_summaries` or `list(limit=)`."
    ),
    "list_summaries": (
        "Served from the summary cache after one pass; each call still `stat`s every task.json (10,000 stats) and "
        "builds 10,000 summaries (two time parses each). On a contended machine the stats alone can take 100+ ms."
    ),
    "list_newest": (
        "The order comes from the cached created_at of each task directory (checked by the directory's inode, "
        "which scandir gives free), and only the newest 20 are read in full. The floor also sorts by id alone; "
        "what remains is decoding the cache file (~1 MB of JSON per 10,000 tasks) when it changed."
    ),
    "append_log": (
        "The floor is open + write + fdatasync + close (~170 µs here, fdatasync of an append is cheap). Ours adds "
        "about fifteen syscalls: the O_NOFOLLOW walk to the task directory and to the lock directory, two flocks "
        "(ours and Go's task.json.lock), a stat of task.json (a log needs a task), fstat + pread of the last byte "
        "(a torn tail left by a crash is cut first). ~150 µs, which a 1.15× target on a 170 µs floor cannot "
        "absorb. Closing it: keep the directory and lock descriptors open per store."
    ),
    "versioned": (
        "A fresh store (a resumed run, a CLI call) does not know the next version: it scans the artifact "
        "directory once (1,000 entries) to find the highest, so a deleted number is never reused below a higher "
        "one. The warm row (one store) shows the steady state is flat. Closing the cold case: a persisted "
        "next-version hint validated by one stat, as the in-process cache already is."
    ),
    "list_artifacts": (
        "The floor is scandir + sort by name; ours walks subdirectories with O_NOFOLLOW opens (nested artifacts), "
        "checks each entry's type, and sorts with a natural key (validation.10 after validation.9), built by a "
        "regex split per name in Python."
    ),
    "one_task_writers": (
        "Eight processes on two cores, with other work on the machine: a writer holding the lock is often not "
        "on a CPU, so the queue waits for the scheduler as much as for fsync. flock wakes every waiter on release "
        "(no FIFO hand-off), so the tail depends on who gets the CPU first."
    ),
    "throughput": (
        "Each update is two fsyncs (file, directory); eight processes share one ext4 journal, whose commits "
        "serialise them. SQLite in WAL mode commits with one fsync of its log per transaction."
    ),
    "cli_cold": (
        "Start-up is dominated by imports (typer, rich, pydantic and the models' schemas); see the import profile. "
        "Closing it: import rich/typer lazily per command and build the pydantic schemas on first use."
    ),
    "dashboard": (
        "The dashboard's index stats every task.json per request and re-reads only changed tasks; the first "
        "request of a fresh app reads all of them."
    ),
}
