"""A task's requests on the live path: its student answers (judged), a candidate shadows, pairs are kept."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2, router_pb2
from services.common.errors import BackendUnavailable, InvalidInput
from services.common.tasks import Task, TaskTable
from services.orchestrator.distill import DistillMetrics, TaskRecorder
from services.orchestrator.escalation import EscalationPolicy
from services.orchestrator.metrics import OrchestratorMetrics
from services.orchestrator.pipeline import Pipeline
from services.orchestrator.plan import QualityTarget
from services.orchestrator.prepare import Budgets
from services.orchestrator.redact import mask_pii
from tests.unit.pipeline_fakes import FakeGenerator, FakeStages, priced

SMALL, LARGE = common_pb2.TIER_SMALL, common_pb2.TIER_LARGE
LABELS = ["card_arrival", "lost_or_stolen_card"]
PROMPT = "Classify the message. Answer with one of: " + ", ".join(LABELS) + ". " * 40  # a long app prompt


class StudentGenerator(FakeGenerator):
    """Adapter calls get `student_answer` (or fail with `student_error`); tier calls the per-tier answers."""

    student_answer = "card_arrival"
    student_error: Exception | None = None

    async def generate(
        self, request: inference_pb2.GenerateRequest, timeout_s: float
    ) -> inference_pb2.GenerateResponse:
        if not request.adapter:
            return await super().generate(request, timeout_s)
        sent = inference_pb2.GenerateRequest()
        sent.CopyFrom(request)
        self.calls.append(("student", request.tier, sent))
        if self.student_error is not None:
            raise self.student_error
        answer = priced(self.student_answer, SMALL, prompt_tokens=20)
        answer.model = request.adapter
        return answer


class MemoryStore:
    def __init__(self) -> None:
        self.shadow_calls: list[tuple[str, bool]] = []
        self.pairs: list[tuple[str, dict[str, str]]] = []

    async def record_shadow(self, name: str, agree: bool) -> None:
        self.shadow_calls.append((name, agree))

    async def append_pair(self, name: str, record: dict[str, str], maxlen: int) -> None:
        self.pairs.append((name, dict(record)))


def match(**fields: object) -> router_pb2.TaskMatch:
    base: dict[str, object] = {
        "name": "bank",
        "state": "serving",
        "student": "bank-v1",
        "adapter_path": "/a/bank-v1",
        "instruction": "Classify.",
        "teacher_tier": LARGE,
        "labels": LABELS,
    }
    return router_pb2.TaskMatch(**(base | fields))


def build(
    gen: FakeGenerator,
    task: router_pb2.TaskMatch | None,
    store: MemoryStore | None = None,
    tier: int = SMALL,
    route: router_pb2.RouteResponse | None = None,
    tasks: TaskTable | None = None,
) -> Pipeline:
    """The pipeline with the router answering `route`, by default a route to `tier` matching `task`."""
    route = route or router_pb2.RouteResponse(
        decision=common_pb2.RouteDecision(tier=tier, classifier="rules", reason="routed"), task=task
    )
    stages = FakeStages(route_response=route)
    recorder = TaskRecorder(store, gen, DistillMetrics(CollectorRegistry()), mask_pii) if store else None  # type: ignore[arg-type]
    return Pipeline(
        stages,
        gen,
        Budgets(router_s=1.0, assess_s=1.0),
        LARGE,
        OrchestratorMetrics(CollectorRegistry()),
        None,
        EscalationPolicy(),
        QualityTarget(1.0),
        None,
        recorder,
        tasks,
    )


def ask(text: str = "My card has not arrived yet", **fields: object) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        tenant="acme",
        messages=[
            common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content=PROMPT),
            common_pb2.Message(role=common_pb2.ROLE_USER, content=text),
        ],
        **fields,  # type: ignore[arg-type]
    )


def generator() -> StudentGenerator:
    return StudentGenerator({SMALL: priced("small answer", SMALL), LARGE: priced("lost_or_stolen_card", LARGE)})


async def test_a_serving_student_answers_with_its_own_short_prompt() -> None:
    gen = generator()
    response = await build(gen, match()).complete(ask(), 30)
    assert [(kind, tier) for kind, tier, _ in gen.calls] == [("student", SMALL)]
    sent = gen.calls[0][2]
    assert sent.adapter == "bank-v1" and sent.adapter_path == "/a/bank-v1"
    assert [(m.role, m.content) for m in sent.messages] == [
        (common_pb2.ROLE_SYSTEM, "Classify."),
        (common_pb2.ROLE_USER, "My card has not arrived yet"),
    ]
    assert sent.removed_tokens["distillation"] > 50  # the app's long prompt is not sent, and is credited
    assert response.answer == "card_arrival" and response.model == "bank-v1"
    assert response.route.student and response.route.task == "bank" and not response.route.escalated


async def test_an_answer_outside_the_labels_escalates_to_the_teacher_with_the_full_prompt() -> None:
    gen = generator()
    gen.student_answer = "I think it is about cards"
    response = await build(gen, match()).complete(ask(), 30)
    assert [(kind, tier) for kind, tier, _ in gen.calls] == [("student", SMALL), ("unary", LARGE)]
    large = gen.calls[1][2]
    assert not large.adapter and large.messages[0].content == PROMPT
    assert response.route.escalated and response.route.escalation_reason.startswith("not_a_label")
    assert not response.route.student and response.answer == "lost_or_stolen_card"


async def test_a_student_that_cannot_answer_hands_the_request_to_the_large_tier() -> None:
    gen = generator()
    gen.student_error = BackendUnavailable("students engine down")
    response = await build(gen, match()).complete(ask(), 30)
    assert response.answer == "lost_or_stolen_card" and response.route.escalated
    assert response.route.escalation_reason.startswith("student_unavailable")


@pytest.mark.parametrize(
    "request_",
    [
        ask(tier=LARGE),  # a tier set by the request is never second-guessed
        orchestrator_pb2.CompletionRequest(  # multi-turn: the student learnt one message in, one answer out
            tenant="acme",
            messages=[
                common_pb2.Message(role=common_pb2.ROLE_USER, content="hi"),
                common_pb2.Message(role=common_pb2.ROLE_ASSISTANT, content="hello"),
                common_pb2.Message(role=common_pb2.ROLE_USER, content="my card?"),
            ],
        ),
    ],
)
async def test_no_student_for_requests_outside_its_contract(request_: orchestrator_pb2.CompletionRequest) -> None:
    gen = generator()
    response = await build(gen, match()).complete(request_, 30)
    assert all(kind != "student" for kind, _, _ in gen.calls)
    assert not response.route.student


async def test_in_shadow_the_teacher_is_served_and_the_candidate_compared_in_the_background() -> None:
    gen, store = generator(), MemoryStore()
    gen.student_answer = "Lost_or_stolen_card."  # the same label, written differently
    task = match(state="shadow", student="", adapter_path="", shadow_student="bank-v2", shadow_adapter_path="/a/v2")
    response = await build(gen, task, store).complete(ask(), 30)
    assert response.answer == "lost_or_stolen_card" and response.route.tier == LARGE
    assert not response.route.student and response.route.task == "bank"
    await asyncio.sleep(0.05)  # the comparison runs after the response
    assert store.shadow_calls == [("bank", True)]
    assert gen.calls[-1][0] == "student" and gen.calls[-1][2].adapter == "bank-v2"


async def test_collection_records_the_teachers_answers_redacted() -> None:
    gen, store = generator(), MemoryStore()
    task = match(state="collecting", student="", adapter_path="", collect=True)
    await build(gen, task, store, SMALL).complete(ask("Where is my new card?"), 30)  # the small tier answered
    await build(gen, task, store, LARGE).complete(ask("Card 4111 1111 1111 1111 for jo@example.com never came"), 30)
    await asyncio.sleep(0.05)
    [(name, record)] = store.pairs
    assert name == "bank" and record["teacher"] == "lost_or_stolen_card"
    assert "4111" not in record["text"] and "[CARD]" in record["text"] and "[EMAIL]" in record["text"]


async def test_a_named_task_the_registry_does_not_have_is_the_callers_error() -> None:
    gen = generator()
    table = TaskTable(None)
    table.load([Task(name="bank", instruction="Classify.")])
    pipeline = build(gen, match(), tasks=table)
    with pytest.raises(InvalidInput, match="unknown task 'cards'"):
        await pipeline.complete(ask(task="cards"), 30)
    assert (await pipeline.complete(ask(task="bank"), 30)).route.task == "bank"


async def test_a_router_that_missed_its_budget_does_not_cost_a_task_its_student() -> None:
    gen = generator()
    fell_back = router_pb2.RouteResponse(
        decision=common_pb2.RouteDecision(tier=LARGE, classifier="default", fell_back=True)
    )
    table = TaskTable(None)
    table.load(
        [
            Task(
                name="bank",
                instruction="Classify.",
                labels=tuple(LABELS),
                state="serving",
                student="bank-v1",
                adapter_path="/a/bank-v1",
            )
        ]
    )
    pipeline = build(gen, None, route=fell_back, tasks=table)
    response = await pipeline.complete(ask(task="bank"), 30)
    assert response.route.student and response.model == "bank-v1" and response.route.task == "bank"
