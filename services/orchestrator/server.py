"""Builds the Orchestrator gRPC server."""

from __future__ import annotations

import redis.asyncio as redis

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.apikeys import KeyStore
from services.common.contracts import TIERS_BY_NAME
from services.common.embedding import OnnxMiniLM, load_minilm
from services.common.runtime import Service, new_service
from services.common.tasks import TaskStore, TaskTable
from services.orchestrator.admission import Gatekeeper
from services.orchestrator.clients import GrpcStages
from services.orchestrator.distill import DistillMetrics, TaskRecorder
from services.orchestrator.escalation import EscalationPolicy
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.plan import QualityTarget
from services.orchestrator.prepare import Budgets
from services.orchestrator.quote import PriceBook
from services.orchestrator.redact import load_redactor
from services.orchestrator.servicer import OrchestratorServicer
from services.orchestrator.settings import OrchestratorSettings
from services.orchestrator.spend import SpendLedger
from services.orchestrator.spotcheck import SpotCheckConfig, SpotChecker
from services.orchestrator.warmup import WarmUp

SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["Orchestrator"].full_name


def budgets_from(settings: OrchestratorSettings) -> Budgets:
    return Budgets(
        router_s=settings.router_budget_s,
        cache_lookup_s=settings.cache_lookup_budget_s,
        cache_store_s=settings.cache_store_budget_s,
        compressor_s=settings.compressor_budget_s,
        summarizer_s=settings.summarizer_budget_s,
        assess_s=settings.router_budget_s,
        max_prompt_tokens=settings.max_prompt_tokens,
    )


def stage_budgets(budgets: Budgets) -> dict[str, float]:
    """Stage name (as in costmesh_stage_seconds) -> its budget."""
    return {
        "router": budgets.router_s,
        "cache_exact": budgets.cache_lookup_s,
        "cache_semantic": budgets.cache_lookup_s,
        "cache_store": budgets.cache_store_s,
        "compressor": budgets.compressor_s,
        "summarizer": budgets.summarizer_s,
        "assess": budgets.assess_s,
    }


def load_embedder(settings: OrchestratorSettings) -> OnnxMiniLM | None:
    if not settings.embedding_model_dir:
        return None  # no embeddings, so no semantic cache
    return load_minilm(settings.embedding_model_dir, settings.embedding_threads)


def escalation_policy(settings: OrchestratorSettings) -> EscalationPolicy | None:
    if not settings.escalation:
        return None
    return EscalationPolicy(
        min_mean_token_prob=settings.escalation_min_mean_token_prob,
        min_token_logprob=settings.escalation_min_token_logprob,
    )


def spot_checker(settings: OrchestratorSettings, stages: GrpcStages, metrics: OrchestratorMetrics) -> SpotChecker:
    lane = common_pb2.LANE_BATCH if settings.cache_verify_lane == "batch" else common_pb2.LANE_REALTIME
    config = SpotCheckConfig(settings.cache_verify_sample, settings.cache_verify_timeout_s, lane)
    return SpotChecker(stages, stages, metrics, config)


def gatekeeper(settings: OrchestratorSettings, stages: GrpcStages) -> Gatekeeper:
    if not settings.keys_redis_url:
        return Gatekeeper(None, None, PriceBook(stages.prices))
    client = redis.Redis.from_url(settings.keys_redis_url)
    return Gatekeeper(KeyStore(client), SpendLedger(client), PriceBook(stages.prices))


async def distillation(
    settings: OrchestratorSettings, stages: GrpcStages, service: Service
) -> tuple[TaskTable | None, TaskRecorder | None]:
    """The task registry snapshot (named tasks are checked against it) and the shadow/collection
    recorder; neither without COSTMESH_ORCHESTRATOR_TASKS_REDIS_URL."""
    if not settings.tasks_redis_url:
        return None, None
    client = redis.Redis.from_url(settings.tasks_redis_url)
    store = TaskStore(client)
    table = TaskTable(store)
    await table.refresh_logged()
    service.periodic.append(("task registry", 5.0, table.refresh_logged))
    recorder = TaskRecorder(store, stages, DistillMetrics(service.registry), load_redactor(settings.distill_redact))
    service.closers.append(recorder.close)
    service.closers.append(client.aclose)
    return table, recorder


async def build_server(settings: OrchestratorSettings) -> Service:
    # The orchestrator's own RPCs authenticate API keys (admission.py); the mesh token also admits.
    service = new_service("orchestrator", settings, [SERVICE_NAME], public_prefixes=(f"/{SERVICE_NAME}/",))
    stages = GrpcStages(settings)
    metrics = OrchestratorMetrics(service.registry)
    metrics.escalation_baseline.set(settings.escalation_alert_baseline)
    budgets = budgets_from(settings)
    for stage, seconds in stage_budgets(budgets).items():
        metrics.stage_budget.labels(stage=stage).set(seconds)
    embedder = load_embedder(settings)  # loaded once, at start-up
    checker = spot_checker(settings, stages, metrics)
    tasks, recorder = await distillation(settings, stages, service)
    pipeline = Pipeline(
        stages,
        stages,
        budgets,
        TIERS_BY_NAME[settings.default_tier],
        metrics,
        embedder,
        escalation_policy(settings),
        QualityTarget(settings.max_quality_loss_pts, settings.tenant_max_quality_loss_pts),
        checker,
        recorder,
        tasks,
    )
    gate = gatekeeper(settings, stages)
    orchestrator_pb2_grpc.add_OrchestratorServicer_to_server(
        OrchestratorServicer(pipeline, gate, settings.request_timeout_s, stages), service.server
    )
    service.closers.append(gate.close)
    # Cache, router, summarizer and compressor fail open; without inference no request can be answered.
    service.checks["inference"] = stages.inference_serving
    # Not a dependency (it never reports down): SERVING waits for every stage's first, cold call.
    service.checks["warm_up"] = WarmUp(stages, embedder)
    service.closers.append(checker.close)  # before the channels its checks use close
    service.closers.append(stages.close)
    return service
