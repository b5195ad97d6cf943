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
    "aio_overhead": (
        "Almost all of it is the thread hop itself, which no thread offload avoids: the row measures, in the same "
        "interleaved rounds, asyncio's own loop.run_in_executor of the same sync update with nothing of ours around "
        "it, and on this machine (a 2-vCPU VM) that floor alone is ~1.14x the sync update; ours is ~1.03x that "
        "floor (the per-task order lock, the shield that lets a started write finish before a cancellation is "
        "raised). The hop costs two wake-ups of an idle vCPU (the pool thread, then the loop through its "
        "self-pipe), ~70-80 µs each here after the ~0.8 ms the loop spent waiting: a bare thread ping-pong measures "
        "40-50 µs, an asyncio run_in_executor of a no-op ~75 µs. On a disk whose fsync takes a few milliseconds the "
        "same hop is under 10%; here an update costs 0.8 ms. Running the call on the loop when it looks idle would "
        "meet the target and break the one promise the async store exists for (the loop never waits for a disk)."
    ),
    "aio_runs": (
        "Each step of these tasks is a few milliseconds of the runner's own work around a `true`: the lease, three "
        "checkpoints, the log lines, the report artifact, the environment's temp files, and a supervisor process to "
        "start and reap. The async side does the same store work in the store's pool (4 threads by default on these 2 "
        "CPUs) and the waiting on the loop; the loop thread then competes for the GIL with those threads, and that is "
        "where both the gap and the loop's lag come from: the ticker's p99 grows with the pool (measured with 64 runs:"
        " 25 ms with max_threads=2, 46 ms with 4, 77 ms with 8) while tasks/s barely moves (13.3, 14.1, 14.6). "
        "Starting the supervisor on the loop (as asyncio.create_subprocess_exec does) was worse: Popen waits for the "
        "exec, 8 ms a start at the median under that GIL, and the p99 was 249 ms; so it starts in the pool. The figure"
        " that matters for an orchestrator is the thread count beside it: the sync runner needs a thread per "
        "concurrent run (8 here, so 8 at once), the async one runs all 64 at once on the store's pool, and asyncio's "
        "own subprocesses would add a waitpid thread per running command on Python 3.11 (52 threads for 48 commands in"
        " tests/aio/test_aio_exec.py). Less Python per checkpoint (the compiled encoder the update row names) is what "
        "would close the gap and the lag together."
    ),
    "aio_throughput": (
        "The loop thread competes for the GIL with the pool threads, which spend most of each update in Python "
        "(encoding and validating the task, ~260 µs of CPU an update). A cProfile of the loop thread over the 3 s run:"
        " ~0.55 s inside the self-pipe's recv (reacquiring the GIL after the wake-up, ~200 µs a time) and most of the "
        "rest in epoll waiting; the loop's own work per update (the order lock, the hand-off, the task step) is what "
        "the eight sync threads do not pay, and each of its wake-ups waits behind the GIL. Handing results back in "
        "batches (one loop wake-up for many finished calls) did not move the ratio. The pool's size does, a little: "
        "re-measured on 2 CPUs, 2 threads 0.75x, 4 threads 0.91-0.98x, 6 threads 0.74x, 8 threads 0.84x (the loop's "
        "lag grows with it too), so the default became 2 threads per CPU (it was 4). Reaching 1x needs less Python per"
        " update in the pool threads (the compiled encoder the update row names), or processes instead of threads. "
        "LangGraph's AsyncSqliteSaver, beside it, is one SQLite connection on one aiosqlite thread (WAL, synchronous "
        "FULL: one append to one file and one fsync per put), where an update here replaces a task file and fsyncs it "
        "and its directory."
    ),
}
