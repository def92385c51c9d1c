"""Enum translations for the shared protos, so each servicer does not keep its own copy."""

from __future__ import annotations

from collections.abc import Iterable

from costmesh.v1 import common_pb2
from services.common.errors import InvalidInput

ROLE_NAMES = {
    common_pb2.ROLE_SYSTEM: "system",
    common_pb2.ROLE_USER: "user",
    common_pb2.ROLE_ASSISTANT: "assistant",
    common_pb2.ROLE_TOOL: "tool",
}
ROLES_BY_NAME = {v: k for k, v in ROLE_NAMES.items()}
TIER_NAMES = {common_pb2.TIER_SMALL: "small", common_pb2.TIER_LARGE: "large"}
TIERS_BY_NAME = {v: k for k, v in TIER_NAMES.items()}
# What a caller may ask for by name: a tier, or "auto" to let the router decide (`costmesh ask --tier`).
TIER_CHOICES = {"auto": common_pb2.TIER_UNSPECIFIED, **TIERS_BY_NAME}


def role_pairs(messages: Iterable[common_pb2.Message]) -> list[tuple[str, str]]:
    """(role, content) pairs; a message without a role is invalid input."""
    pairs = []
    for i, m in enumerate(messages):
        if m.role not in ROLE_NAMES:
            raise InvalidInput(f"messages[{i}].role must be set (ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT, ROLE_TOOL)")
        pairs.append((ROLE_NAMES[m.role], m.content))
    return pairs


def to_messages(pairs: Iterable[tuple[str, str]]) -> list[common_pb2.Message]:
    return [common_pb2.Message(role=ROLES_BY_NAME[role], content=content) for role, content in pairs]
