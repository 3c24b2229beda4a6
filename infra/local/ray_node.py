"""Join one more Ray node to a head that listens on 127.0.0.1, on this machine, on loopback.

    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 python infra/local/ray_node.py 127.0.0.1:6380 \
        --num-cpus 1 --temp-dir /tmp/honing-stack/ray

Why not ``ray start --address``: with Ray's loopback switch on
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) its CLI refuses to start a second node, and with the
switch off every node advertises the machine's routable address and listens on all interfaces.
This script starts the node the way ``ray start --address`` does (the same ``Node`` class, left
running when the script exits), with the switch on, so the node's raylet, object store and
workers listen on 127.0.0.1 only. Ray's own multi-node test helper (``ray.cluster_utils``)
builds its one-machine clusters the same way. The cluster's token settings
(``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN_PATH``) come from the environment, as for ``ray start``.

For a cluster of several machines, use ``ray start --address`` (``infra/ray/cluster.yaml``).
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="the head's GCS address, 127.0.0.1:PORT")
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--temp-dir", required=True, help="the head's --temp-dir")
    args = parser.parse_args(argv)
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        print("set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: the node must stay on 127.0.0.1")
        return 2
    if not args.address.startswith("127.0.0.1:"):
        print(f"{args.address}: this script joins a head on 127.0.0.1 only")
        return 2

    from ray._private.node import Node
    from ray._private.parameter import RayParams

    params = RayParams(
        gcs_address=args.address,
        num_cpus=args.num_cpus,
        temp_dir=args.temp_dir,
        include_log_monitor=False,  # one log monitor per machine: the head's
        node_manager_port=0,  # free ports, chosen by the OS
        min_worker_port=0,
        max_worker_port=0,
    )
    params.dashboard_agent_listen_port = None  # not the head's agent port
    node = Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
    print(f"Ray node {node.node_id[:12]} joined {args.address} at {node.node_ip_address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
