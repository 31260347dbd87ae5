"""`BlockSink`: what the driver does with each scored block, from Ray Data actors or the local runner.

The caller's hook, the commit, the per-worker stats, the manifest, the timing: the same for both runners."""

from __future__ import annotations

import time

from cropray.scoring.trace import mark


class BlockSink:
    """Called with each result block (ScoreBatch's output table). After the run: `actors` (worker ->
    rows, path, peak RSS) and `timing` ("first_block": time.time() of the first block; "rows_after_first")."""

    def __init__(self, committer, manifest, plan, on_block=None):
        self.committer, self.manifest, self.plan, self.on_block = committer, manifest, plan, on_block
        self.actors: dict[str, dict] = {}
        self.timing: dict = {}

    def __call__(self, block) -> None:
        if "first_block" not in self.timing:  # worker start-up (imports, bundle, path build) + one batch
            self.timing["first_block"] = time.time()
            mark("first_block", rows=block.num_rows)
        else:
            self.timing["rows_after_first"] = self.timing.get("rows_after_first", 0) + block.num_rows
        if self.on_block is not None:  # e.g. cropray suggest's candidate pools (reads the extra columns)
            self.on_block(block, self.plan)
        self.committer.accept(block)
        self._note_workers(block)
        self.manifest.save(plan=self.plan)

    def _note_workers(self, block) -> None:
        """Peak RSS and execution path per worker process, from ScoreBatch's `_worker`/`_maxrss_kb`/`_path`."""
        g = block.group_by(["_worker", "_path"]).aggregate([("_maxrss_kb", "max"), ("_row", "count")])
        cols = ("_worker", "_path", "_maxrss_kb_max", "_row_count")
        for w, path, kb, n in zip(*(g.column(c).to_pylist() for c in cols)):
            a = self.actors.setdefault(w, {"worker": w, "path": path, "rows": 0, "peak_rss_mb": 0.0})
            a["rows"] += n
            a["peak_rss_mb"] = max(a["peak_rss_mb"], round(kb / 1024, 1))
