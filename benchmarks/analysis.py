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
