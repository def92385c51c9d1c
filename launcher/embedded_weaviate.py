"""Runs Weaviate through weaviate-client's embedded mode: the fallback where neither WEAVIATE_URL nor a
local weaviate-server binary exists. Embedded mode downloads the release binary, so it needs internet.

Usage: python -m launcher.embedded_weaviate HTTP_PORT GRPC_PORT DATA_DIR

The server's settings (API-key auth, loopback binds, no profiler: components.weaviate_locked_down) come in
this process's environment, which embedded mode hands on to the server ahead of its own defaults; the API
key is never on a command line.

The release binary embedded mode runs is upstream's, without deploy/weaviate/bind-host.patch: its gRPC API
and its cluster data API listen on every interface (both still want credentials). This is only the fallback
for a machine without Go; scripts/setup.sh builds the patched weaviate-server wherever Go exists.
"""

from __future__ import annotations

import signal
import sys
import threading

from weaviate.embedded import EmbeddedOptions, EmbeddedV4


def main() -> None:
    http_port, grpc_port, data_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    db = EmbeddedV4(
        EmbeddedOptions(
            persistence_data_path=data_dir,
            port=http_port,
            grpc_port=grpc_port,
        )
    )
    db.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    db.stop()


if __name__ == "__main__":
    main()
