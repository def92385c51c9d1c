"""Plain data the inference core works with: no grpc, no SDK types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    SMALL = "small"
    LARGE = "large"
    STUDENT = "student"  # distilled students (LoRA adapters on one engine): a request names its adapter


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False


@dataclass(frozen=True)
class ChatPrompt:
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    # Scheduling hint for servers that queue by priority (vLLM --scheduling-policy priority): lower runs
    # first. The batch lane sends BATCH_PRIORITY so real-time requests go ahead of queued batch work.
    priority: int = 0
    # A distilled student: the LoRA adapter to answer with instead of the backend's model, and where the
    # engine loads it from when it has not yet (a restarted engine forgets runtime-loaded adapters).
    adapter: str = ""
    adapter_path: str = ""


BATCH_PRIORITY = 10
TOP_LOGPROBS = 5  # alternatives per token returned with logprobs


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    finish_reason: str
    usage: Usage
    logprobs: tuple[tuple[str, float], ...] = ()
    # Per generated token, its most likely alternatives (token, logprob), aligned with `logprobs`: the
    # quality estimator's margin and entropy signals come from these.
    top_logprobs: tuple[tuple[tuple[str, float], ...], ...] = ()


@dataclass(frozen=True)
class Cost:
    cost_usd: float
    baseline_cost_usd: float
    price_model: str
    # baseline - cost, split by intervention; see CostReport.savings_by_intervention in common.proto
    by_intervention: Mapping[str, float] = field(default_factory=dict)

    @property
    def savings_usd(self) -> float:
        return max(0.0, self.baseline_cost_usd - self.cost_usd)


@dataclass(frozen=True)
class GenerateResult:
    completion: Completion
    backend: str
    cost: Cost
    fell_back: bool = False
