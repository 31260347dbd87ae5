"""Run by test_score_recovery.py in its own process (it needs its own Ray, not the shared session).

A head (no CPUs: it only hosts the driver) and two 2-CPU worker nodes from ray.cluster_utils.Cluster.
When the first unit is committed, one worker node is removed (its raylet, actor and read tasks are
killed with it) while the rest of the job is in flight. Prints one JSON line: summary and event.

usage: python multinode_job.py BUNDLE INPUT OUTPUT
"""

from __future__ import annotations

import json
import sys


def main(bundle: str, inp: str, out: str) -> None:
    from ray.cluster_utils import Cluster

    from cropray.scoring import ScoreConfig, score_archive

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    victim = cluster.add_node(num_cpus=2)
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    event = {"commits_before_removal": 0}

    def on_commit(key, rec):
        if not event.get("removed"):
            event["commits_before_removal"] += 1
            cluster.remove_node(victim)
            event["removed"] = True

    try:
        s = score_archive(ScoreConfig(bundle=bundle, input=inp, output=out, address=cluster.address, actors=(2, 2),
                                      cpus_per_actor=0.5, precision="fp32", batch_size=16,
                                      unit_rows=1), on_commit=on_commit)
    finally:
        cluster.shutdown()
    print(json.dumps({"summary": s.to_dict(), "event": event}, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:4])
