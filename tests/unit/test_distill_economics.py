"""training/distill/economics.py: the break-even of distilling a task against routing and caching."""

import json
import math
from dataclasses import replace

import pytest

from training.distill.economics import (
    CPU_USD_PER_HOUR,
    DISTILL,
    GPU_SERVER_USD_PER_MONTH,
    STICK,
    STUDENT_SERVER_USD_PER_MONTH,
    Costs,
    gpu_served_reference,
    plan,
    serving_usd_per_month,
    training_usd,
)

# Hand-computed: fixed = 100 + 2 x (30 + 20) = 200 $/month; saving = 0.003 - 0.001 = 0.002 $/call;
# break-even = 200 / 0.002 = 100,000 calls/month.
COSTS = Costs(
    teacher_usd_per_call=0.003,
    student_usd_per_call=0.001,
    labelling_usd=30.0,
    training_usd=20.0,
    serving_usd_per_month=100.0,
    retrains_per_month=2.0,
)


def test_formula_on_hand_computed_numbers() -> None:
    p = plan(COSTS, 150_000)
    assert p.fixed_usd_per_month == pytest.approx(200.0)
    assert p.saving_usd_per_call == pytest.approx(0.002)
    assert p.break_even_calls_per_month == pytest.approx(100_000)
    assert p.net_saving_usd_per_month == pytest.approx(150_000 * 0.002 - 200)  # $100/month
    assert p.payback_months == pytest.approx(50 / 100)  # one labelling + training over the net saving


def test_verdict_on_both_sides_of_break_even() -> None:
    assert plan(COSTS, 99_000).verdict == STICK
    assert plan(COSTS, 99_000).net_saving_usd_per_month < 0
    assert math.isinf(plan(COSTS, 99_000).payback_months)
    assert plan(COSTS, 101_000).verdict == DISTILL
    assert plan(COSTS, 101_000).net_saving_usd_per_month > 0


def test_exactly_at_break_even_distills() -> None:
    # Binary-exact numbers: fixed $100, saving $0.25 a call, break-even 400 calls.
    exact = Costs(0.5, 0.25, labelling_usd=0.0, training_usd=0.0, serving_usd_per_month=100.0)
    assert plan(exact, 400).break_even_calls_per_month == 400
    assert plan(exact, 400).verdict == DISTILL
    assert plan(exact, 399).verdict == STICK


@pytest.mark.parametrize("student", [0.003, 0.004])  # no saving, and a student dearer than its teacher
def test_no_saving_never_distills_and_serialises_infinity_as_null(student: float) -> None:
    p = plan(replace(COSTS, student_usd_per_call=student), 10**12)
    assert p.verdict == STICK
    assert math.isinf(p.break_even_calls_per_month)
    assert math.isinf(p.payback_months)
    out = json.loads(json.dumps(p.as_dict(), allow_nan=False))
    assert out["break_even_calls_per_month"] is None
    assert out["payback_months"] is None
    assert out["verdict"] == "stick to routing and caching"
    assert out["costs"]["student_usd_per_call"] == student


def test_retrains_scale_the_labelling_and_training_part_of_the_fixed_cost() -> None:
    monthly = plan(replace(COSTS, retrains_per_month=1.0), 0)
    quarterly = plan(replace(COSTS, retrains_per_month=0.25), 0)
    never = plan(replace(COSTS, retrains_per_month=0.0), 0)
    assert monthly.fixed_usd_per_month == pytest.approx(100 + 50)
    assert quarterly.fixed_usd_per_month == pytest.approx(100 + 12.5)
    assert never.fixed_usd_per_month == pytest.approx(100)
    assert plan(COSTS, 0).fixed_usd_per_month - monthly.fixed_usd_per_month == pytest.approx(50)


@pytest.mark.parametrize(
    "field", ["teacher_usd_per_call", "student_usd_per_call", "labelling_usd", "training_usd",
              "serving_usd_per_month", "retrains_per_month"],
)  # fmt: skip
def test_negative_costs_are_rejected_with_the_field_name(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a finite number >= 0"):
        replace(COSTS, **{field: -1.0})


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_and_infinite_costs_are_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="labelling_usd"):
        replace(COSTS, labelling_usd=bad)


def test_negative_calls_per_month_is_rejected() -> None:
    with pytest.raises(ValueError, match="calls_per_month must be a finite number >= 0, got -1"):
        plan(COSTS, -1)


def test_price_helpers() -> None:
    assert training_usd(3600) == pytest.approx(CPU_USD_PER_HOUR)
    assert training_usd(1800, usd_per_hour=1.0) == pytest.approx(0.5)
    assert serving_usd_per_month(0.5) == pytest.approx(0.5 * 24 * 30)
    assert STUDENT_SERVER_USD_PER_MONTH < GPU_SERVER_USD_PER_MONTH
    with pytest.raises(ValueError, match="train_s"):
        training_usd(-1)


def test_gpu_served_gpt4o_class_student_breaks_even_near_a_million_calls() -> None:
    # The seed's ballpark, from the stated inputs: gpt-4o at 200 tokens in / 50 out is $0.001 a call,
    # 20,000 of them labelled at batch prices ($10), two CPU hours of training, one L4 all month.
    costs = gpu_served_reference()
    assert costs.teacher_usd_per_call == pytest.approx(0.001)
    assert costs.labelling_usd == pytest.approx(10.0)
    assert costs.serving_usd_per_month == GPU_SERVER_USD_PER_MONTH
    break_even = plan(costs, 0).break_even_calls_per_month
    assert 500_000 <= break_even <= 2_000_000
    assert break_even == pytest.approx(
        (GPU_SERVER_USD_PER_MONTH + 10.0 + 2 * CPU_USD_PER_HOUR) / (0.001 - costs.student_usd_per_call)
    )
    # A CPU-served student needs far less traffic to pay.
    cpu = replace(costs, serving_usd_per_month=STUDENT_SERVER_USD_PER_MONTH)
    assert plan(cpu, 0).break_even_calls_per_month < break_even / 3


def test_lines_name_the_break_even_and_the_verdict() -> None:
    lines = "\n".join(plan(COSTS, 50_000).lines())
    assert "100,000 calls/month" in lines
    assert "-$100.00/month" in lines  # 50,000 x $0.002 - $200
    assert lines.endswith("stick to routing and caching")
    never = "\n".join(plan(replace(COSTS, student_usd_per_call=0.01), 50_000).lines())
    assert "break-even        never" in never
    assert plan(COSTS, 150_000).lines()[-1].endswith("distill")
