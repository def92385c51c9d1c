"""Prices per 1M tokens and the cost of a call, including the baseline it avoided."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.inference.domain import Cost, Usage

PER_TOKEN = 1e-6


@dataclass(frozen=True)
class Price:
    input_per_m: float
    cached_input_per_m: float
    output_per_m: float
    batch_discount: float = 0.5  # Batch APIs charge half


# OpenAI's published list prices (USD per 1M tokens), standard tier.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(input_per_m=2.50, cached_input_per_m=1.25, output_per_m=10.00),
    "gpt-4o-mini": Price(input_per_m=0.15, cached_input_per_m=0.075, output_per_m=0.60),
    # Embeddings: input only.
    "text-embedding-3-small": Price(input_per_m=0.02, cached_input_per_m=0.02, output_per_m=0.0),
    "text-embedding-3-large": Price(input_per_m=0.13, cached_input_per_m=0.13, output_per_m=0.0),
    # Self-hosted tiers: amortised hardware cost, a placeholder each team replaces with its own.
    "self-hosted-small": Price(input_per_m=0.02, cached_input_per_m=0.01, output_per_m=0.08),
    # Distilled students (LoRA on SmolLM2-135M). Assumption, stated because no invoice backs it: one L4 GPU
    # at ~$0.80/h serving a 135M model batched at ~5k tokens/s is ~$0.044 per 1M tokens; input is priced
    # at half that, output at twice. On this repo's 2-core CPU the same model decodes ~8 tokens/s, which is
    # a test rig, not a price. Replace with your own (COSTMESH_INFERENCE_PRICES).
    "self-hosted-student": Price(input_per_m=0.02, cached_input_per_m=0.01, output_per_m=0.08),
}


def price_of(usage: Usage, price: Price, batch: bool = False) -> float:
    uncached = max(0, usage.prompt_tokens - usage.cached_prompt_tokens)
    dollars = PER_TOKEN * (
        uncached * price.input_per_m
        + usage.cached_prompt_tokens * price.cached_input_per_m
        + usage.completion_tokens * price.output_per_m
    )
    return dollars * (price.batch_discount if batch else 1.0)


def cost_of(
    usage: Usage,
    price_model: str,
    baseline_model: str,
    prices: Mapping[str, Price],
    removed_tokens: Mapping[str, int] | None = None,
    batch: bool = False,
) -> Cost:
    """Cost of this call, and of the baseline: the large model, the full prompt, no prefix cache.

    The difference is split by intervention, walking from the baseline to this call: the tokens pruning and
    compression removed (at the baseline's input price), then the cheaper tier ("routing", both priced with
    no prefix cache), then the prefix cache's discount on this tier, then batch pricing for the batch lane.
    The parts add up to baseline - cost.
    """
    removed = {name: n for name, n in (removed_tokens or {}).items() if n > 0}
    price, baseline_price = prices[price_model], prices[baseline_model]
    uncached = Usage(usage.prompt_tokens, usage.completion_tokens)
    baseline_usage = Usage(usage.prompt_tokens + sum(removed.values()), usage.completion_tokens)
    cost = price_of(usage, price, batch)
    by_intervention = {name: PER_TOKEN * n * baseline_price.input_per_m for name, n in removed.items()}
    by_intervention["routing"] = price_of(uncached, baseline_price) - price_of(uncached, price)
    by_intervention["prefix_cache"] = price_of(uncached, price) - price_of(usage, price)
    by_intervention["batch"] = price_of(usage, price) - cost  # the batch lane pays Batch API prices
    return Cost(
        cost_usd=cost,
        baseline_cost_usd=price_of(baseline_usage, baseline_price),
        price_model=price_model,
        by_intervention={name: usd for name, usd in by_intervention.items() if usd},
    )
