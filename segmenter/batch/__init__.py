"""Batch runs: `segmenter run` over directories of recordings, resumable from a manifest.

Layout, the data's way (one line per module):

- discovery.py: walks the inputs (include/exclude, settle time) into `Source`s, each named by
  its path under its input (`rel`, the outputs' name under OUT)
- layout.py: refuses a recording whose outputs would take a name another one needs
- manifest/: OUT/manifest.sqlite, the source of truth: plans the run in SQL (what is done, what
  to do, largest first) and keeps one row per recording (its own Layout in manifest/__init__.py)
- changed.py: a run with other settings than the batch's says which and asks before redoing
- gone.py: recordings whose input is gone, counted apart and pruned when asked
- settings.py: `BatchSettings`, what a run needs; its result-changing part hashes into `config`
- tasks.py: what goes to a worker (`Task`) and comes back (`Done` / `Failed` / `Changed`)
- dispatch.py: chunks of tasks to a loky pool (pool.py sizes it, forkserver.py forks its
  workers) or a Dask cluster; a dead worker's files retried alone
- worker.py: in each worker: the model loaded once, a task segmented (and its clips cut)
- recorder.py: results grouped: each input looked at again, outputs written and synced
  (writers.py), then one manifest commit marks them done
- records.py: a document's figures and a recording's output names (recorder and rebuild)
- summary.py: the lines printed at the end and the exit code
- runner.py: orchestrates: checks, lock, log (logfile.py), plan, dispatch, summary, report
- around it: stopping.py (SIGTERM/SIGINT grace), diskfull.py (a full disk stops the run in one
  line), rebuild.py (--rebuild-manifest from the documents on disk), reasons.py and notes.py
  (the lines a person reads), in_fork_server.py (the fork server's last preload)
"""
