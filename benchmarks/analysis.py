"""Why a row can miss its target: the cost the store pays beyond its floor, from profiles of this code.

Written by hand from cProfile runs (the run's own profile of each missed row follows the text in the report); the
figures of the run itself are in the table. ``render_doc`` prints the entry of every row that misses.
"""

from __future__ import annotations

WHY: dict[str, str] = {
    "update": (
        "A fixed ~0.3 ms of CPU on top of the floor's write + fsync + rename + directory fsync, and CPU is what "
        "this row measures on a fast disk: on tmpfs (no I/O cost) update takes ~330 µs against the floor's ~22 µs. "
        "Of that, encoding the task ~60 µs (pydantic-core's encoder, with Python callbacks for Go's time format and "
        "sorted maps, then the omitempty spec and Go's HTML escapes), decoding the copy handed back ~37 µs (the "
        "Store contract: it shares nothing with the argument, exactly what get() would now return; a deep copy "
        "costs more, 222 µs), the head read for the revision check ~12 µs, and ~45 µs for reaching the directories "
        "and taking the locks (since this session one openat2 per directory path instead of an open and a close per "
        "component, then our lock, a re-check after it that the task was not deleted meanwhile, and the Go ATLAS's "
        "lock); the rest is Python around them. On disk the process's own CPU grows further (~460 µs of user time "
        "per update here: caches go cold while it sleeps in fsync). Where an fsync costs several ms (a busy disk) "
        "the ratio falls to 1.1-1.5×. Closing it needs the encode and the decode-copy in compiled code (a Rust "
        "encoder/decoder for the Go layout), not more trimming of the Python around them."
    ),
    "create": (
        "A create makes three things durable where the floor makes two: task.json (file fsync), its new directory "
        "entry (task directory fsync) and the reserved id (tasks directory fsync, for the mkdir); on top of that "
        "come the locks, the encode and the decode of the copy handed back (~0.3 ms of CPU, as in update). Since "
        'the default task_refs="existing" a create no longer rewrites workspace.json (the Go ATLAS\'s task refs: '
        "two more fsyncs and a parse of the refs), which took the row from 4.2× to ~2.0×. What is left is the third "
        "fsync and the CPU of update (a compiled encode/decode would take the latter)."
    ),
    "create_big": (
        "Measured against create in an empty workspace of the same store, interleaved. A create touches only its "
        "own task directory and the tasks directory (mkdir, tasks-directory fsync): it neither reads nor writes "
        'workspace.json (task_refs="existing"), and the auto id style keeps its finding (no uuid-form id here) '
        "for 60 s instead of reading the 100,000-entry directory on every create (~25 ms). What can still grow is "
        "the filesystem's own cost of a mkdir and a directory fsync in a directory of 100,000 entries (ext4 htree: "
        'logarithmic). With task_refs="all" every create rewrites the 13 MB workspace.json (~0.5 s).'
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
        "Served from the summary cache after one pass; each call still `stat`s every task.json (10,000 stats); "
        "when every stamp holds, the last listing is handed back without building or sorting summaries. On a "
        "contended machine the stats alone can take 100+ ms."
    ),
    "list_newest": (
        "The order comes from the cached created_at of each task directory (checked by the directory's inode, "
        "which scandir gives free), and only the newest 20 are read in full. The floor also sorts by id alone; "
        "what remains is decoding the cache file (~1 MB of JSON per 10,000 tasks) when it changed."
    ),
    "append_log": (
        "The floor is open + write + fdatasync + close. On tmpfs (no I/O) an append_log costs ~100 µs against the "
        "floor's ~5 µs: encoding and checking the JSON line, the names, reaching the task directory and the lock "
        "directory (one openat2 each), our lock and the Go ATLAS's lock (an open and a flock each), the re-check "
        "that the task was not deleted while we waited, a stat of task.json (a log needs a task), fstat + pread of "
        "the last byte (a torn tail left by a crash is cut first). A 1.15× target on a ~140-240 µs floor leaves "
        "20-35 µs for all of it. The lock is not optional: the doctor cuts a torn tail under it, and an unlocked "
        "append racing that cut could be truncated away after it was acknowledged. Closing it would take keeping "
        "the task's log descriptor and locks open per store between appends (re-validated by inode), a change to "
        "the lock protocol that needs its own proof."
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
        "CPU-bound on two cores. Measured per update on this disk: ~460 µs of user time and ~280 µs of system time "
        "(the floor's write + 2 fsyncs + rename alone is ~245 µs of system time), so two cores carry at most ~2,700 "
        "updates/s, whatever the locking; SQLite's put costs less CPU per commit (one WAL append, one fsync, C "
        "code). 2× SqliteSaver would need under ~400 µs of CPU per update in all, i.e. the Python side cut to a "
        "third: the same compiled encode/decode that update needs, plus group commit (one directory fsync for "
        "several processes' renames)."
    ),
    "cli_cold": (
        "The full command's start-up is imports: pydantic and the models' schemas 95-125 ms, typer ~33 ms, rich ~20 "
        "ms, the store ~15 ms, for ~50 ms of work. `list` now has a fast path (atlas_tasks.cli._fast): it answers "
        "from a cache of what the previous full `list` showed of each task, checked against every task.json's stamp "
        "(inode, mtime, ctime, size), loading none of typer, pydantic, rich, the store, re or json (~13 modules "
        "beyond the interpreter's own); the row's in-process work is that same path, so the floor fell with it "
        "(~50 ms to ~3 ms). What remains above `python -c pass` is loading those modules and the process's own "
        "start (the console script, sys.exit); the first `list` after any change (the cache refused) still costs the "
        "full ~280 ms, shown in the row's title. Closing that would need a decoder of task.json that validates as "
        "the pydantic models do, without pydantic (msgspec, or a hand-kept subset)."
    ),
    "dashboard": (
        "Pages are built from list_summaries (one stat per task.json against the summary cache) and read in full "
        "only the page's rows and the running/validating tasks, whose crash flags need the full task. This "
        "10,000-task fixture is 10,000 mid-run tasks without a runner (all crashed runs), so the first request "
        "still reads every one of them once; the warm requests cost the stats plus a few ms."
    ),
    "list_summaries_100k": (
        "Warm, a call is one scandir and one stat of each task.json compared with its cached stamp; when every "
        "stamp holds, the last listing is handed back (no summary is built, nothing is sorted). The stats are "
        "the floor of the row: on this VM a stat costs ~3.4 µs (340 ms for 100,000 when the machine is quiet), "
        "and our loop adds ~1.5-2 µs of Python per task (a dict lookup, the stamp tuple built from the stat and "
        "compared): ~550 ms against the floor's ~360 ms measured side by side; the row also touches five fields "
        "of every summary (30-170 ms of tuples, with the collector running). A fresh process first decodes the "
        "28 MB cache file (~0.55 s with pydantic-core, faster than orjson's 0.8 s here) and builds 100,000 "
        "summaries (two time parses each, ~0.7 s). What would remove the stats: a change feed "
        "(inotify/fanotify on every task directory, with the stat scan kept as the fallback on overflow and on "
        "network filesystems) or batched statx through io_uring; a compact binary cache (msgspec) would cut the "
        "fresh process's decode."
    ),
    "list_newest_100k": (
        "Warm, the order is reused while the tasks directory's stamp (inode, mtime, ctime, size, taken before "
        "the order's scan and trusted once 2 s old) is unchanged: one fstat, then the 20 newest read in full. A "
        "fresh process (the note) still decodes the whole cache file and scans the directory once."
    ),
    "dashboard_100k": (
        "A page is store.list_summaries (exact: one stat per task.json, the stamp checked against the summary "
        "cache) plus a few ms: the counts and the running tasks are derived once per listing, and only the 50 "
        "rows shown and the running/validating tasks are read in full, each once per version. The floor beside "
        "it in the note is the raw scandir + stat of every task.json: on this VM ~3.4 µs per stat, so ~340 ms "
        "for 100,000 when quiet, above the 300 ms target before any work. Meeting it needs a page that does not "
        "look at every task per request: a change feed (inotify on the task directories, falling back to the "
        "stat scan when its queue overflows or on a network filesystem), or counts allowed to be up to one "
        "poll interval old (a background refresh), a semantic change this session did not make. A freshly "
        "started server's first page decodes the cache file (~0.55 s), builds 100,000 summaries (~0.7 s), stats "
        "every task, reads the 1,000 running ones and decodes workspace.json once for the header (the fixture "
        "keeps a ref for every task there, as create does today: 13 MB, ~0.8 s quiet; the refs design of #20 "
        "removes it): 2.9 s measured at a load average of ~3, more when the machine is busier. Warm pages keep "
        "the decoded workspace.json while its stamp holds."
    ),
}
