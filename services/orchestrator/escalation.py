"""Judging the cheap tier's answer: keep it, or escalate once to the large tier, and say why.

Checks run cheapest and most certain first. The hard rules: an empty answer, one truncated at a limit the
large tier would not share, a refusal, hedging, an answer that breaks the requested JSON schema. Then the
model's own confidence: the router's quality estimator (Assess, called by the pipeline; reason `estimator`)
or, without it, the token logprobs (the geometric-mean token probability, and the least likely token).
Pure functions, no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import jsonschema

_REFUSAL = re.compile(
    r"\b(I('m| am) (sorry|unable|not able)|I can(no|')t (help|answer|assist|provide)|as an AI( language model)?)\b",
    re.I,
)
_HEDGE = re.compile(
    r"\b(I('m| am) not (sure|certain)|I (don't|do not) know|it('s| is) (unclear|hard to say)|not enough information)\b",
    re.I,
)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.I)


@dataclass(frozen=True)
class EscalationPolicy:
    """Thresholds; the cost/quality knobs of the cascade (`costmesh bench router` measures them)."""

    min_mean_token_prob: float = 0.55  # exp(mean logprob) below this: the model was guessing
    min_token_logprob: float = -9.0  # one token this unlikely (p < 1e-4) is usually a derailment
    check_refusals: bool = True
    check_hedging: bool = True


def schema_problem(answer: str, response_format: str) -> str:
    """Why the answer breaks the requested JSON schema, or "" when it fits (or no schema was asked for)."""
    if not response_format:
        return ""
    schema = json.loads(response_format)  # validated when the request came in
    try:
        value = json.loads(_FENCE.sub("", answer.strip()))
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg})"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        return f"breaks the schema: {exc.message}"
    return ""


def confidence(logprobs: Sequence[float]) -> float | None:
    """Geometric-mean token probability of the answer; None without logprobs."""
    return math.exp(sum(logprobs) / len(logprobs)) if logprobs else None


def cut_by_request(finish_reason: str, requested_max_tokens: int, completion_tokens: int) -> bool:
    """The answer stopped at the request's own max_tokens: the large tier would be cut at the same limit,
    so the truncation is no evidence against the cheap tier (and the answer is what a repeat gets)."""
    return finish_reason == "length" and 0 < requested_max_tokens <= completion_tokens


def confidence_problem(logprobs: Sequence[float], policy: EscalationPolicy) -> str:
    mean_prob = confidence(logprobs)
    if mean_prob is not None and mean_prob < policy.min_mean_token_prob:
        return f"mean token probability {mean_prob:.2f} < {policy.min_mean_token_prob:.2f}"
    if logprobs and min(logprobs) < policy.min_token_logprob:
        return f"least likely token logprob {min(logprobs):.1f} < {policy.min_token_logprob:.1f}"
    return ""


def _hard_problems(
    answer: str, finish_reason: str, response_format: str, policy: EscalationPolicy, truncation_ok: bool
) -> Iterator[tuple[str, str]]:
    """(reason, detail) for each failed hard rule, cheapest first; lazy, so the callers stop at the first."""
    if not answer.strip():
        yield "empty", "the answer is empty"
    if finish_reason == "length" and not truncation_ok:
        yield "truncated", "the answer hit the service's or the cheap tier's max_tokens"
    if policy.check_refusals and (refusal := _REFUSAL.search(answer)):
        yield "refusal", f"the answer says {refusal.group(0)!r}"
    if policy.check_hedging and (hedge := _HEDGE.search(answer)):
        yield "hedging", f"the answer says {hedge.group(0)!r}"
    if problem := schema_problem(answer, response_format):
        yield "format", problem


def hard_problem(
    answer: str, finish_reason: str, response_format: str, policy: EscalationPolicy, truncation_ok: bool = False
) -> tuple[str, str]:
    """The first hard rule the answer breaks, or ("", ""). `truncation_ok`: see cut_by_request."""
    return next(_hard_problems(answer, finish_reason, response_format, policy, truncation_ok), ("", ""))


def judge(
    answer: str,
    finish_reason: str,
    logprobs: Sequence[float],
    response_format: str,
    policy: EscalationPolicy,
    truncation_ok: bool = False,
) -> tuple[str, str]:
    """(reason, detail) to escalate for, or ("", "") to keep the cheap answer: the hard rules, then the logprobs.

    Reasons are a closed set (they label a metric): empty, truncated, refusal, hedging, format,
    low_confidence, and estimator (Router.Assess said escalate; decided by the pipeline, which calls it).
    """
    found = hard_problem(answer, finish_reason, response_format, policy, truncation_ok)
    if found[0]:
        return found
    if problem := confidence_problem(logprobs, policy):
        return "low_confidence", problem
    return "", ""
