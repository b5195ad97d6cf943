"""Why a row can miss its target: the cost the store pays beyond its floor, from profiles of this code.

Written by hand from cProfile runs (the run's own profile of each missed row follows the text in the report); the
figures of the run itself are in the table. ``render_doc`` prints the entry of every row that misses.
"""

from __future__ import annotations

WHY: dict[str, str] = {
    "update": (
        "A fixed ~0.3 ms of CPU and system calls on top of the floor's write + fsync + rename + directory fsync. "
        "Measured on tmpfs (no I/O cost) beside the floor: update 299 µs against the floor's 22 µs, of which "
        "encoding the task ~57 µs, decoding the copy handed back ~38 µs (the Store contract: it shares nothing "
        "with the argument; a deep copy costs more, 222 µs), the head read for the revision check ~12 µs, and per "
        "update 18 openat, 18 close and 5 newfstatat (the O_NOFOLLOW walk from the home to the task directory, "
        "again to `.atlas-tasks/locks/<ws>`, again after the lock to check the task was not deleted meanwhile; "
        "two lock files, ours and the Go ATLAS's) besides the floor's 2 fsync and 1 rename; the rest is Python "
        "around them. Where an fsync costs several ms (a busy disk) the ratio drops to 1.1–1.5×; where it costs "
        "< 1 ms it is ~1.6–2×. Closing it: keep the home, workspace and lock directory descriptors open per "
        "store, each re-validated by inode, instead of walking 13 components per update (the walks are what "
        "keeps a planted symlink from redirecting a lock or a write, so this needs its own proof), and an "
        "encoder without the Python omitempty pass."
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
        "The floor parses JSON into dicts; `get` validates a 10 KB task into typed models. Parsed times are "
        "cached by their text (the RFC 3339 parser that keeps Go's nanoseconds and original text runs once per "
        "distinct time), so decoding is ~38 µs on a quiet core against ~13 µs for pydantic-core's parser alone; "
        "the rest is the wrap validator that remembers the key spelling and the O_NOFOLLOW walk to the task. On "
        "a contended 2-core VM the median can still pass 100 µs."
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
        "The floor is open + write + fdatasync + close (~170–190 µs here, fdatasync of an append is cheap). Ours "
        "adds, per append (strace): 16 more openat and close (the O_NOFOLLOW walk to the task directory, to the "
        "lock directory, and again after the lock to check the task was not deleted meanwhile), two flocks (ours "
        "and Go's task.json.lock), a stat of task.json (a log needs a task), fstat + pread of the last byte (a "
        "torn tail left by a crash is cut first), and the JSON line itself. Timed per call on disk: ~35 µs before "
        "the first open (encoding the line, names, the home), ~20 µs per walk, fdatasync ~160 µs as the floor's: "
        "~130 µs in all, which a 1.15× target on a 170 µs floor cannot absorb. Closing it: keep the directory "
        "and lock descriptors open per store (re-validated by inode)."
    ),
    "versioned": (
        "A fresh store (a resumed run, a CLI call) reads the version hint (an extended attribute of the versions' "
        "directory, set after every save) and checks with one stat that the version it names exists, as the "
        "in-process cache does. Without a hint (a filesystem without user xattrs, versions written by Go or "
        "imported) it scans the artifact directory once (1,000 entries) to find the highest, so a deleted number "
        "is never reused below a higher one; a miss here means the hint was not used."
    ),
    "list_artifacts": (
        "The floor is scandir + sort by name; ours walks subdirectories with O_NOFOLLOW opens (nested artifacts), "
        "checks each entry's type, and sorts with a natural key (validation.10 after validation.9). Keys are "
        "cached per name for the process, so a repeated listing pays a dict lookup per name; the first listing "
        "of 1,000 names never seen pays ~1.4 ms of regex splits in Python."
    ),
    "one_task_writers": (
        "Eight processes on two cores, with other work on the machine: a writer holding the lock is often not "
        "on a CPU, so the queue waits for the scheduler as much as for fsync. The store's own task lock hands "
        "over in ticket order (a queue of flocked slot files), so a tail beyond ~8 writes' time is the machine "
        "stalling every writer at once (the slowest updates then share one moment), not a waiter losing race "
        "after race as with a bare flock, which wakes every waiter on release."
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
