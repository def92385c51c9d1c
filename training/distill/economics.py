"""Break-even of distilling a task (`costmesh distill plan`): fixed monthly costs against the per-call saving.

Distilling pays a fixed cost every month whatever the traffic: the student's server, plus labelling the
training set with the teacher and training the student, once per retrain. It saves, per call, the teacher's
price minus the student's. Below `fixed / saving` calls a month the fixed cost is never earned back, and
routing plus caching (no fixed cost) is the cheaper way to cut the bill.

Pure arithmetic: no I/O. The prices below are documented assumptions, not quotes; pass measured ones.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Final, Literal

from services.inference.domain import Usage
from services.inference.pricing import DEFAULT_PRICES, price_of

HOURS_PER_MONTH: Final = 24 * 30

# Training runs on a 2-vCPU machine. Assumption: AWS c7i.large (2 vCPU, 4 GiB), on-demand us-east-1 list
# price, about $0.089/h (2024). Replace with what your training machine costs.
CPU_USD_PER_HOUR: Final = 0.08925

# The student's vLLM on a small CPU instance, up around the clock. Assumption: AWS c7i.xlarge (4 vCPU,
# 8 GiB: room for a sub-1B model and vLLM's CPU KV cache), on-demand us-east-1, about $0.179/h (2024).
STUDENT_SERVER_USD_PER_HOUR: Final = 0.1785
STUDENT_SERVER_USD_PER_MONTH: Final = STUDENT_SERVER_USD_PER_HOUR * HOURS_PER_MONTH  # ~ $128.5

# For reference, the student on its own GPU. Assumption: one NVIDIA L4, AWS g6.xlarge on-demand us-east-1,
# about $0.80/h (2024; other clouds list an L4 at $0.7-0.8/h).
GPU_SERVER_USD_PER_HOUR: Final = 0.8048
GPU_SERVER_USD_PER_MONTH: Final = GPU_SERVER_USD_PER_HOUR * HOURS_PER_MONTH  # ~ $579.5

# The reference call: a short GPT-4o-class task call (classify or extract), 200 tokens in and 50 out, which
# costs $0.001 at gpt-4o's list prices; 20,000 such calls labelled at Batch API prices; two hours of training.
REFERENCE_USAGE: Final = Usage(prompt_tokens=200, completion_tokens=50)
REFERENCE_LABELLED_EXAMPLES: Final = 20_000
REFERENCE_TRAIN_S: Final = 2 * 3600.0

DISTILL: Final = "distill"
STICK: Final = "stick to routing and caching"
Verdict = Literal["distill", "stick to routing and caching"]


def training_usd(train_s: float, usd_per_hour: float = CPU_USD_PER_HOUR) -> float:
    """What `train_s` seconds of training cost on the training machine."""
    return _non_negative("train_s", train_s) * _non_negative("usd_per_hour", usd_per_hour) / 3600


def serving_usd_per_month(usd_per_hour: float, hours: float = HOURS_PER_MONTH) -> float:
    """The fixed cost of keeping one server up `hours` a month."""
    return _non_negative("usd_per_hour", usd_per_hour) * _non_negative("hours", hours)


@dataclass(frozen=True)
class Costs:
    teacher_usd_per_call: float  # measured: the teacher's mean cost per call on this task
    student_usd_per_call: float  # the student's, at its self-hosted price row
    labelling_usd: float  # labelling the training set with the teacher (batch prices)
    training_usd: float  # train_s x CPU_USD_PER_HOUR (see training_usd())
    serving_usd_per_month: float  # the student's server, up all month (see serving_usd_per_month())
    retrains_per_month: float = 1.0  # how often labelling + training recur (0.25: quarterly)

    def __post_init__(self) -> None:
        for field in fields(self):
            _non_negative(field.name, getattr(self, field.name))


@dataclass(frozen=True)
class Plan:
    costs: Costs
    calls_per_month: float
    fixed_usd_per_month: float  # serving + retrains x (labelling + training)
    saving_usd_per_call: float  # teacher - student; <= 0 means distilling never pays
    break_even_calls_per_month: float  # fixed / saving; inf when saving <= 0
    net_saving_usd_per_month: float  # calls x saving - fixed, at calls_per_month
    payback_months: float  # months of net saving to earn back one labelling + training; inf if never
    verdict: Verdict

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: infinities become null."""
        out: dict[str, object] = {name: _finite_or_none(value) for name, value in asdict(self).items()}
        out["costs"] = {name: _finite_or_none(value) for name, value in asdict(self.costs).items()}
        return out

    def lines(self) -> list[str]:
        c = self.costs
        break_even = self.break_even_calls_per_month
        return [
            f"calls per month   {self.calls_per_month:,.0f}",
            f"fixed cost        {_usd(self.fixed_usd_per_month)}/month = serving {_usd(c.serving_usd_per_month)}"
            f" + {c.retrains_per_month:g} retrain(s) x (labelling {_usd(c.labelling_usd)}"
            f" + training {_usd(c.training_usd)})",
            f"saving per call   ${self.saving_usd_per_call:.6f} = teacher ${c.teacher_usd_per_call:.6f}"
            f" - student ${c.student_usd_per_call:.6f}",
            "break-even        " + (f"{break_even:,.0f} calls/month" if math.isfinite(break_even) else "never"),
            f"net saving        {_usd(self.net_saving_usd_per_month)}/month",
            "payback           " + _months(self.payback_months),
            f"verdict           {self.verdict}",
        ]


def plan(costs: Costs, calls_per_month: float) -> Plan:
    calls_per_month = _non_negative("calls_per_month", calls_per_month)
    one_run = costs.labelling_usd + costs.training_usd
    fixed = costs.serving_usd_per_month + costs.retrains_per_month * one_run
    saving = costs.teacher_usd_per_call - costs.student_usd_per_call
    break_even = fixed / saving if saving > 0 else math.inf
    net = calls_per_month * saving - fixed
    # Conservative: the first labelling + training is also counted in the month's recurring fixed cost.
    payback = one_run / net if net > 0 else math.inf
    return Plan(
        costs=costs,
        calls_per_month=calls_per_month,
        fixed_usd_per_month=fixed,
        saving_usd_per_call=saving,
        break_even_calls_per_month=break_even,
        net_saving_usd_per_month=net,
        payback_months=payback,
        verdict=DISTILL if saving > 0 and calls_per_month >= break_even else STICK,
    )


def gpu_served_reference(
    labelled_examples: int = REFERENCE_LABELLED_EXAMPLES, train_s: float = REFERENCE_TRAIN_S
) -> Costs:
    """The seed's case: a GPT-4o-class teacher (REFERENCE_USAGE at gpt-4o list prices, ~$0.001 a call)
    replaced by a student on its own L4. The fixed cost is then ~$590/month (the GPU is most of it), so the
    break-even is ~0.6M calls/month: the order of the ~1M the seed quotes. On STUDENT_SERVER_USD_PER_MONTH's
    CPU box instead it is ~0.14M.
    """
    teacher = DEFAULT_PRICES["gpt-4o"]
    return Costs(
        teacher_usd_per_call=price_of(REFERENCE_USAGE, teacher),
        student_usd_per_call=price_of(REFERENCE_USAGE, DEFAULT_PRICES["self-hosted-small"]),
        labelling_usd=labelled_examples * price_of(REFERENCE_USAGE, teacher, batch=True),
        training_usd=training_usd(train_s),
        serving_usd_per_month=GPU_SERVER_USD_PER_MONTH,
    )


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or value < 0 or value == math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _finite_or_none(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _months(value: float) -> str:
    return f"{value:.2f} months (~{value * 30:.0f} days)" if math.isfinite(value) else "never"


def _usd(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"
