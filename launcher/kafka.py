"""The Kafka broker of the stack (COSTMESH_STACK_QUEUE=kafka): one KRaft node, broker and controller in one
JVM, from the jars scripts/setup-kafka.sh put in kafka_home/libs, with deploy/kafka's config.

The component's command is this module: `python -m launcher.kafka CONFIG LIBS HEAP` formats the storage the
first time (kafka.tools.StorageTool, a fresh cluster id) and then becomes the broker (exec, so the pid the
launcher records is the JVM's and `down` stops it).
"""

from __future__ import annotations

import base64
import functools
import os
import socket
import string
import struct
import subprocess
import sys
import uuid
from pathlib import Path

from launcher.process import Component
from launcher.settings import ROOT, StackSettings

DEPLOY = ROOT / "deploy" / "kafka"
API_VERSIONS = 18  # the Kafka protocol's ApiVersions request key


def java_command(libs: Path, heap: str, main: str, *args: str) -> list[str]:
    return [
        "java",
        "-Xms64m",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",  # one small heap on a 2-core machine: no G1 threads and regions to pay for
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.yaml'}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def render_config(s: StackSettings) -> Path:
    """deploy/kafka/server.properties with this stack's ports and data folder filled in."""
    folder = s.data_dir / "kafka"
    folder.mkdir(parents=True, exist_ok=True)
    template = string.Template((DEPLOY / "server.properties").read_text())
    text = template.substitute(port=s.kafka_port, controller_port=s.kafka_controller_port, log_dir=folder / "log")
    config = folder / "server.properties"
    config.write_text(text)
    return config


def api_versions_ok(port: int, timeout_s: float = 1.0) -> bool:
    """True when a Kafka broker on ``port`` answers an ApiVersions request (v0) without an error; it accepts
    connections only once it has started, after the controller has unfenced it."""
    client = b"costmesh-probe"
    body = struct.pack(">hhih", API_VERSIONS, 0, 1, len(client)) + client
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = b""
            while len(head) < 10:  # size, correlation id, error code
                chunk = sock.recv(10 - len(head))
                if not chunk:
                    return False
                head += chunk
    except OSError:
        return False
    _, correlation, error = struct.unpack(">iih", head)
    return bool(correlation == 1 and error == 0)


def kafka(s: StackSettings) -> Component:
    libs = s.kafka_home / "libs"
    config = render_config(s)
    return Component(
        "kafka",
        f"127.0.0.1:{s.kafka_port}",
        [str(s.python), "-m", "launcher.kafka", str(config), str(libs), s.kafka_heap],
        functools.partial(api_versions_ok, s.kafka_port),
        cwd=ROOT,
        note=f"KRaft, {libs}",
    )


def log_dir_of(config: Path) -> Path:
    for line in config.read_text().splitlines():
        if line.startswith("log.dirs="):
            return Path(line.split("=", 1)[1])
    raise ValueError(f"{config} names no log.dirs")


def main(argv: list[str]) -> None:
    config, libs, heap = Path(argv[0]), Path(argv[1]), argv[2]
    if not any(libs.glob("kafka_2.13-*.jar")):
        sys.exit(f"no Kafka jars in {libs}: run scripts/setup-kafka.sh (or make setup)")
    if not (log_dir_of(config) / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        format_storage = java_command(libs, "256m", "kafka.tools.StorageTool", "format", "-t", cluster_id)
        subprocess.run([*format_storage, "-c", str(config)], check=True)
    broker = java_command(libs, heap, "kafka.Kafka", str(config))
    os.execvp(broker[0], broker)


if __name__ == "__main__":
    main(sys.argv[1:])
