"""The cascade: the cheap tier answers first, its answer is judged, and the large tier answers once if it fails.

Judging: the hard rules (services/orchestrator/escalation.py) first; then, when the route said
assess_after, Router.Assess on the answer's logprob signals and the tenant's quality target, failing open
to the logprob thresholds when Assess errs or times out.
"""

from __future__ import annotations

import asyncio
import time

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2, router_pb2
from services.common.errors import RateLimited
from services.common.retry import retry_delay
from services.common.signals import answer_signals
from services.orchestrator import ledger
from services.orchestrator.distill import label_problem, student_request
from services.orchestrator.escalation import EscalationPolicy, confidence_problem, cut_by_request, hard_problem
from services.orchestrator.failopen import StageRunner, left
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.plan import Plan, QualityTarget
from services.orchestrator.prepare import Budgets, Prepared
from services.orchestrator.stages import Generator, Stages

# A throttled escalation is tried this many times (waiting out retry-after, with jitter, within the deadline).
ESCALATION_ATTEMPTS = 5
RETRY_BASE_S, RETRY_MAX_S = 0.5, 30.0


def mark_escalated(
    response: orchestrator_pb2.CompletionResponse, metrics: OrchestratorMetrics, reason: str, detail: str
) -> None:
    response.route.tier = common_pb2.TIER_LARGE
    response.route.escalated = True
    response.route.escalation_reason = f"{reason}: {detail}"
    metrics.escalations.labels(reason=reason).inc()


class Cascade:
    def __init__(
        self,
        stages: Stages,
        generator: Generator,
        runner: StageRunner,
        policy: EscalationPolicy,
        budgets: Budgets,
        quality: QualityTarget,
        metrics: OrchestratorMetrics,
    ) -> None:
        self._stages = stages
        self._generator = generator
        self._run = runner
        self._policy = policy
        self._budgets = budgets
        self._quality = quality
        self._metrics = metrics

    async def answer(
        self, request: orchestrator_pb2.CompletionRequest, prepared: Prepared, plan: Plan, deadline: float
    ) -> inference_pb2.GenerateResponse:
        """The cheap answer if it passes, else the large tier's (charged for both calls)."""
        generate, response = prepared.generate, prepared.response
        assert generate is not None  # a cache miss
        task = plan.task
        if task is not None:  # a task's student is the cheap answer
            cheap_request = student_request(generate, request, task.student, task.adapter_path, task.instruction)
        else:
            cheap_request = inference_pb2.GenerateRequest()
            cheap_request.CopyFrom(generate)
        cheap_request.sampling.logprobs = True  # the judgement needs them (with top-5 alternatives)
        cheap = await self._cheap(cheap_request, plan, deadline, response)
        if cheap is None:  # the student could not answer: the large tier does, as for a failed judgement
            generate.tier = common_pb2.TIER_LARGE
            answer = await self._run.required(
                "escalation", lambda t: self._generator.generate(generate, t), deadline, response
            )
            mark_escalated(response, self._metrics, "student_unavailable", f"task {task.name if task else ''}")
            return answer
        reason, detail = await self._verdict(request, prepared, plan, cheap, deadline)
        if not reason:
            return cheap
        generate.tier = common_pb2.TIER_LARGE
        large = await self._escalate(generate, deadline, response)
        if large is None:  # the large tier stayed throttled: the cheap answer, already paid for, is served
            response.route.escalation_reason = f"{reason} (not escalated: the large tier is rate-limited): {detail}"
            return cheap
        mark_escalated(response, self._metrics, reason, detail)
        large.cost.CopyFrom(ledger.escalated(cheap.cost, large.cost))
        return large

    async def _cheap(
        self,
        cheap_request: inference_pb2.GenerateRequest,
        plan: Plan,
        deadline: float,
        response: orchestrator_pb2.CompletionResponse,
    ) -> inference_pb2.GenerateResponse | None:
        """The cheap answer. A student that fails is None (the request goes on to the large tier); the
        small tier failing fails the request, as it always has."""
        if plan.task is None:
            return await self._run.required(
                "inference", lambda t: self._generator.generate(cheap_request, t), deadline, response
            )
        return await self._run.optional(
            "student",
            lambda t: self._generator.generate(cheap_request, t),
            left(deadline) / 2,  # the other half is the large tier's, should the student fail
            deadline,
            response,
        )

    async def _escalate(
        self, generate: inference_pb2.GenerateRequest, deadline: float, response: orchestrator_pb2.CompletionResponse
    ) -> inference_pb2.GenerateResponse | None:
        """The large tier's answer. A throttled escalation is retried, waiting out its retry-after, not the
        whole request: rerunning the request would pay for the cheap call again and drop the first one from
        every account. None when it stays throttled for ESCALATION_ATTEMPTS tries or the deadline."""
        for attempt in range(1, ESCALATION_ATTEMPTS + 1):
            started = time.perf_counter()
            try:
                return await self._run.required(
                    "escalation", lambda t: self._generator.generate(generate, t), deadline, response
                )
            except RateLimited as exc:
                wait = retry_delay(exc.retry_after_s, attempt, RETRY_BASE_S, RETRY_MAX_S)
                if attempt == ESCALATION_ATTEMPTS or wait >= left(deadline):
                    self._run.degraded(response, "escalation", started, "throttled")
                    return None
                await asyncio.sleep(wait)
        return None

    async def _verdict(
        self,
        request: orchestrator_pb2.CompletionRequest,
        prepared: Prepared,
        plan: Plan,
        cheap: inference_pb2.GenerateResponse,
        deadline: float,
    ) -> tuple[str, str]:
        """(reason, detail) to escalate for, or ("", "") to keep the cheap answer."""
        truncation_ok = cut_by_request(cheap.finish_reason, request.sampling.max_tokens, cheap.usage.completion_tokens)
        policy = self._policy
        reason, detail = hard_problem(cheap.text, cheap.finish_reason, request.response_format, policy, truncation_ok)
        if reason:
            return reason, detail
        if plan.task is not None and (problem := label_problem(cheap.text, plan.task.labels)):
            return "not_a_label", problem
        # The estimator was trained on answers with their top-5 alternatives; a backend that returns none
        # (Ray Serve) would look maximally sure to it, so such an answer is judged by the thresholds.
        if plan.assessed and cheap.logprobs and all(t.top for t in cheap.logprobs):
            assess = router_pb2.AssessRequest(
                tenant=request.tenant,
                messages=request.messages,
                embedding=prepared.embedding,
                answer=answer_signals(cheap.logprobs, cheap.text),
                max_quality_loss_pts=self._quality.for_tenant(request.tenant),
            )
            assessed = await self._run.optional(
                "assess", lambda t: self._stages.assess(assess, t), self._budgets.assess_s, deadline, prepared.response
            )
            if assessed is not None:  # else fail open to the logprob thresholds below
                if assessed.keep:
                    return "", ""
                why = assessed.reason or f"P(cheap good) {assessed.p_cheap_good:.2f} < {assessed.threshold:.2f}"
                return "estimator", why
        problem = confidence_problem([lp.logprob for lp in cheap.logprobs], self._policy)
        return ("low_confidence", problem) if problem else ("", "")
