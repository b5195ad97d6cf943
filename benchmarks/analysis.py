"""Why a row can miss its target: the cost the store pays beyond its floor, from profiles of this code.

Written by hand from cProfile runs (the run's own profile of each missed row follows the text in the report); the
figures of the run itself are in the table. ``render_doc`` prints the entry of every row that misses.
"""

from __future__ import annotations

WHY: dict[str, str] = {
    "update": (
        "What is left is CPU, and CPU is what this row measures on a fast disk: on tmpfs (no I/O cost) an update now "
        "costs ~260 µs of CPU against the floor's ~22 µs (was ~315 µs). Since this session: the Go layout is written "
        "by orjson from pydantic-core's JSON values (byte-identical to pydantic-core's own writer, a hypothesis "
        "property checks it; encode 80 -> 66 µs), the copy update hands back is validated from those very values "
        "instead of parsing the bytes written (encode + copy 120 -> 89 µs), the revision check parses the head with "
        "orjson, and the check that the task survived the wait for the lock is one stat (37 -> 33 system calls). What "
        "remains: pydantic-core's Python callbacks while turning the task into JSON values (Go's time format, sorted "
        "maps) and the omitempty spec built in Python (~45 µs), validating the copy (~25 µs: per-field validators in "
        "Python, the key-style wrap validator), the head parse (~10 µs), reaching the task and lock directories and "
        "taking both locks (~45 µs) and Python between them. Keeping the lock files open between writes (validated by "
        "a stat) cut another ~20 µs and 6 calls, but was dropped: stores outlive their last use (traceback cycles "
        "keep them until the cyclic collector runs), so descriptors piled up past 1,024 in a long test run (select() "
        "failed) and kept filesystems busy at unmount; it needs one process-wide bounded table and an explicit close. "
        "On disk the same CPU costs about twice as much (caches are cold after the sleep in fsync): back-to-back runs "
        "of old and new code on a quiet spell of this shared machine gave 1.57× and 1.56× (new) against 1.66× twice "
        "(old) at a ~0.56 ms floor, and 1.1-1.3× whenever fsync takes several ms. Closing it needs the model <-> Go- "
        "layout conversion without Python callbacks (a compiled schema for the time format and the omitempty rules, "
        "e.g. msgspec Structs mirroring the models), not more trimming of the Python around it."
    ),
    "create": (
        "A create makes five things durable where the floor makes two: task.json (file fsync), its new directory "
        "entry (task directory fsync), the reserved id (tasks directory fsync, for the mkdir), and workspace.json "
        "with its directory (the Go ATLAS's task refs, kept in step). Written out as plain Python with nothing else "
        "(mkdir, two temp files, two renames, five fsyncs), that sequence alone measured 1.52 ms against the "
        "floor's 0.75 ms here: 2.0× before any lock, encode, decode or workspace.json parse, which leaves ~0.4 ms "
        "under a 2.5× target for all of those (update alone spends ~0.3 ms of CPU on them). Issuing the fsyncs "
        "together (both temp files, then both renames, then the directories) saved only 6% of the raw sequence. "
        "What would close it is making workspace.json refs lazy (resynced by `doctor`, as they already are after a "
        "crash), which the row's definition rules out, or the compiled encode/decode of update."
    ),
    "create_big": (
        "As create, plus workspace.json itself grows with the workspace (~130 bytes per task ref: 1.3 MB at 10,000 "
        "tasks), and it is rewritten and fsynced on every create, as the Go ATLAS does. The refs are now edited as "
        "plain JSON (no model per ref), so what remains is parsing, encoding and writing the 1.3 MB document."
    ),
    "get": (
        "The floor parses JSON into dicts; `get` validates a 10 KB task into 13 typed models (~37 µs against ~26 µs "
        "for json.loads; pydantic's model building is ~20 µs of it). task.json is opened with one openat2 that "
        "refuses symlinks on the whole path. On a contended 2-core VM the median can still pass 100 µs."
    ),
    "list": (
        "Reading 10,000 tasks costs 10,000 × get's decode: kept alive (as a listing keeps them) a decode costs ~50 "
        "µs against ~34 µs for json.loads of the same document, while our reading (one openat2 per task.json, one "
        "read) costs less than the floor's open()+read(). The cyclic collector is paused while the list is built "
        "and the result is then moved to the oldest generation (gc.freeze + unfreeze, O(1)) instead of paying a "
        "young collection over every model built (~0.3 s at 10,000 tasks). The floor keeps its documents too, with "
        "the collector paused the same way; the row's ratio swings by ±0.15 between runs on this VM. Callers that "
        "only show tasks should use `list_summaries` or `list(limit=)`."
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
        "The floor is open + write + fdatasync + close (~130-350 µs here). On tmpfs an append costs ~62 µs of CPU "
        "(was ~74; 31 -> 27 system calls) against the floor's ~4 µs. Written out in plain Python with cached "
        "descriptors, the system calls a safe append needs (two flocks, the stat of task.json, fstat + pread of the "
        "last byte for a torn tail) already measure 1.08-1.10× the floor on disk (without the pread 1.01-1.03×, with "
        "the log's descriptor kept open too 1.03×); the rest is Python: the line's JSON (json.dumps, ~9 µs), the "
        "names (checked twice), reaching the task and lock directories (open home + openat2 each), both locks, the "
        "check that the task was not deleted while we waited, and error translation. On disk that CPU roughly doubles "
        "(cold caches after fdatasync): back-to-back runs gave 1.82× and 1.70× (new) against 1.77× and 1.79× (old) at "
        "a ~0.18 ms floor: the ~12 µs of CPU saved do not show through the noise. Closing it would take keeping the "
        "lock files and the log open between appends in one process-wide bounded table with an explicit close (tried "
        "per store this session and dropped: see update), remembering the clean end of our own last append to skip "
        "the pread, and a compiled line encoder; a 1.15× target leaves ~20-50 µs for everything beyond the floor's "
        "four calls."
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
        "Eight processes on two cores, with other work on the machine: a writer holding the lock is often not on a "
        "CPU, so the queue waits for the scheduler as much as for fsync. The task lock hands over in ticket order "
        "(a queue of flocked slot files, since this session): before it, a bare flock woke every waiter on release "
        "and the releasing writer often won again, p99 44-63 ms against a median of 10-17 ms. A tail well beyond 8 "
        "writes' time now means the machine stalled every writer at once."
    ),
    "throughput": (
        "CPU-bound on two cores. Eight processes updating their own tasks share no lock, cache or file of ours (each "
        "task has its own directory and lock files); what they share is the CPU and the journal. Back to back on a "
        "quiet spell (a script with 8 spawned processes, 4 s a side): ours ~1,200-1,600 updates/s at ~0.95-1.2 ms of "
        "CPU per update (the old code ~1,500/s at ~1.1 ms: within the noise), the raw floor (write + fsync + rename + "
        "directory fsync from 8 processes) ~3,600-5,000/s at ~0.22 ms. The row itself gave 0.75× and 0.63× (new) "
        "against 0.63× and 0.71× (old). So the floor alone is about SqliteSaver's rate (one WAL append and one fsync "
        "per put, C code): ≥ 1× needs the update's Python cut to near nothing, or a different protocol (group commit: "
        "one directory fsync for several writers' renames), which would need its own proof. With eight processes on "
        "two cores the Python costs ~4× its single-process tmpfs figure (cache thrash). The two sides run one after "
        "the other, so a disk busy with other work during one side swings the ratio widely (0.3-3.9× seen on this "
        "shared machine: SQLite's writers serialize their fsyncs, ours do not)."
    ),
    "cli_cold": (
        "Start-up is imports: a cold process does the same work as the warm one, so cold minus floor is ~180-190 ms "
        "of imports on a quiet machine, against a budget of ~70 ms for 2×. pydantic and building the models' "
        "schemas take 95-125 ms alone (the file store imports the models: any FileStore use pays it), typer ~33 ms, "
        "rich ~20 ms, filelock ~10 ms. Since this session commands are built on first use (`list` imports and "
        "builds only its own command; ~20 ms less); pydantic's defer_build was measured and dropped (import 25 ms "
        "cheaper, first decode 30 ms dearer). Closing it needs a read path without pydantic (the summary cache "
        "extended with what `list` shows and trusted only after a full decode), and even then typer + rich + the "
        "store come to ~73 ms."
    ),
    "dashboard": (
        "The dashboard's index stats every task.json per request and re-reads only changed tasks; the first "
        "request of a fresh app reads all of them."
    ),
}
