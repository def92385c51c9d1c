"""Test fixtures' access to the real local stack, started through the same launcher as `costmesh up`."""

from __future__ import annotations

from launcher import stack
from launcher.settings import StackSettings

INFRA = [
    "redis",
    "weaviate",
    "jaeger",
    "prometheus",
    "vllm-small",
    "vllm-large",
    "vllm-students",
    "ray-serve",
    "llmlingua",
]


def start(settings: StackSettings, names: list[str]) -> list[str]:
    """Starts what is not already serving; returns what this call started (to stop it afterwards)."""
    return stack.up(settings, only=names, say=lambda line: print(line, flush=True))


def stop(settings: StackSettings, names: list[str]) -> None:
    if names:
        stack.down(settings, only=names, say=lambda line: None)
