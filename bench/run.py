"""`costmesh bench NAME [ARGS]`: benchmarks print JSON lines, the last one a summary."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    batch_queue,
    cache,
    capacity,
    cascade,
    compress,
    distill,
    lanes,
    load,
    mesh,
    overhead,
    prefix,
    prune,
    rag_compress,
    router,
)

BENCHES: dict[str, Callable[[list[str]], int]] = {
    "mesh": mesh.main,
    "batch-queue": batch_queue.main,
    "overhead": overhead.main,
    "cache": cache.main,
    "capacity": capacity.main,
    "compress": compress.main,
    "lanes": lanes.main,
    "load": load.main,
    "prefix": prefix.main,
    "prune": prune.main,
    "rag-compress": rag_compress.main,
    "router": router.main,
    "cascade": cascade.main,
    "distill": distill.main,
}


def main(name: str, args: list[str]) -> int:
    try:
        bench = BENCHES[name]
    except KeyError:
        print(f"unknown bench {name!r}; known: {', '.join(sorted(BENCHES))}", file=sys.stderr)
        return 2
    return bench(args)
