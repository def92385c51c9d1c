import pytest
from prometheus_client import CollectorRegistry

from services.inference.core import InferenceMetrics
from services.inference.domain import Usage
from services.inference.pricing import DEFAULT_PRICES, cost_of, price_of
from services.inference.server import build_core
from services.inference.settings import InferenceSettings


def test_gpt4o_list_prices() -> None:
    # 1M uncached input + 1M output on gpt-4o: $2.50 + $10.00.
    assert price_of(Usage(1_000_000, 1_000_000, 0), DEFAULT_PRICES["gpt-4o"]) == pytest.approx(12.5)
    assert price_of(Usage(1_000_000, 0, 0), DEFAULT_PRICES["gpt-4o-mini"]) == pytest.approx(0.15)


def test_cached_prompt_tokens_are_cheaper() -> None:
    full = price_of(Usage(1000, 0, 0), DEFAULT_PRICES["gpt-4o"])
    half_cached = price_of(Usage(1000, 0, 500), DEFAULT_PRICES["gpt-4o"])
    assert half_cached == pytest.approx(full * 0.75)


def test_batch_discount() -> None:
    usage = Usage(1000, 100, 0)
    assert price_of(usage, DEFAULT_PRICES["gpt-4o"], batch=True) == pytest.approx(
        price_of(usage, DEFAULT_PRICES["gpt-4o"]) / 2
    )


def test_baseline_is_large_model_on_the_full_prompt_without_prefix_cache() -> None:
    usage = Usage(prompt_tokens=400, completion_tokens=50, cached_prompt_tokens=100)
    cost = cost_of(usage, "gpt-4o-mini", "gpt-4o", DEFAULT_PRICES, {"pruning": 500, "compression": 100})
    assert cost.cost_usd == pytest.approx((300 * 0.15 + 100 * 0.075 + 50 * 0.60) / 1e6)
    assert cost.baseline_cost_usd == pytest.approx((1000 * 2.50 + 50 * 10.0) / 1e6)
    assert cost.savings_usd == pytest.approx(cost.baseline_cost_usd - cost.cost_usd)


def test_savings_split_by_intervention_add_up() -> None:
    usage = Usage(prompt_tokens=400, completion_tokens=50, cached_prompt_tokens=100)
    cost = cost_of(usage, "gpt-4o-mini", "gpt-4o", DEFAULT_PRICES, {"pruning": 500, "compression": 100, "none": 0})
    parts = cost.by_intervention
    assert set(parts) == {"pruning", "compression", "routing", "prefix_cache"}
    assert parts["pruning"] == pytest.approx(500 * 2.50 / 1e6)  # removed tokens at the baseline's input price
    assert parts["compression"] == pytest.approx(100 * 2.50 / 1e6)
    assert parts["routing"] == pytest.approx((400 * (2.50 - 0.15) + 50 * (10.0 - 0.60)) / 1e6)
    assert parts["prefix_cache"] == pytest.approx(100 * (0.15 - 0.075) / 1e6)
    assert sum(parts.values()) == pytest.approx(cost.baseline_cost_usd - cost.cost_usd)
    same_tier = cost_of(Usage(400, 50), "gpt-4o", "gpt-4o", DEFAULT_PRICES)
    assert same_tier.by_intervention == {} and same_tier.savings_usd == 0


def test_price_table_rows_come_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    row = '{"llama-8b": {"input_per_m": 0.05, "cached_input_per_m": 0.01, "output_per_m": 0.2}}'
    monkeypatch.setenv("COSTMESH_INFERENCE_PRICES", row)
    monkeypatch.setenv("COSTMESH_INFERENCE_SMALL_PRICE_MODEL", "llama-8b")
    core = build_core(InferenceSettings(), InferenceMetrics(CollectorRegistry()))
    assert core.price_table["llama-8b"].output_per_m == 0.2
    assert core.price_table["gpt-4o"] == DEFAULT_PRICES["gpt-4o"]  # defaults stay unless overridden
    monkeypatch.setenv("COSTMESH_INFERENCE_SMALL_PRICE_MODEL", "unpriced-model")
    with pytest.raises(Exception, match="no price for 'unpriced-model'"):
        build_core(InferenceSettings(), InferenceMetrics(CollectorRegistry()))


def test_batch_lane_is_priced_at_batch_prices_and_the_saving_is_attributed() -> None:
    usage = Usage(1000, 100, 200)
    realtime = cost_of(usage, "gpt-4o-mini", "gpt-4o", DEFAULT_PRICES)
    batch = cost_of(usage, "gpt-4o-mini", "gpt-4o", DEFAULT_PRICES, batch=True)
    assert batch.cost_usd == pytest.approx(realtime.cost_usd * DEFAULT_PRICES["gpt-4o-mini"].batch_discount)
    assert batch.baseline_cost_usd == pytest.approx(realtime.baseline_cost_usd)
    assert batch.by_intervention["batch"] == pytest.approx(realtime.cost_usd - batch.cost_usd)
    assert "batch" not in realtime.by_intervention
    assert sum(batch.by_intervention.values()) == pytest.approx(batch.baseline_cost_usd - batch.cost_usd)
