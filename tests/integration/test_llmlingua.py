"""The compressor with LLMLingua-1 against its real server (deploy/llmlingua), alone and through the mesh."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.settings import StackSettings
from services.compressor.backends.llmlingua import LLMLinguaCompressor
from services.compressor.settings import CompressorSettings
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

PASSAGES = [
    "Refunds for card payments are processed once the merchant confirms the return. After the merchant's "
    "confirmation it usually takes five business days for the money to appear in your account, although "
    "some banks and card networks may take up to ten business days during holiday periods. You can follow "
    "the status of every refund in the app, under the transaction it belongs to, where we also show the "
    "date on which the merchant sent the confirmation to us.",
    "Top-ups made with Apple Pay or Google Pay are instant and free of charge in most countries. Top-ups by "
    "bank transfer are free as well, but they can take up to one business day to arrive, depending on the "
    "bank that sends the transfer and the time of day at which it was made. If a top-up has not arrived "
    "after two business days, please contact support with a copy of the bank statement showing the transfer.",
    "Cards are delivered by standard post within seven business days in the United Kingdom and within "
    "fourteen business days in the rest of Europe. Express delivery is available for a fee in selected "
    "countries and usually takes two business days. If your card has not arrived after the expected time, "
    "you can order a replacement in the app, and the first card will be cancelled automatically.",
]
QUESTION = "How many business days does a refund take after the merchant confirms it?"


def lingua_url(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.lingua_port}"


async def test_server_is_deterministic_and_keeps_one_output_per_text(infra: StackSettings) -> None:
    backend = LLMLinguaCompressor(lingua_url(infra), 300)
    try:
        first = await backend.compress(PASSAGES, 2.0, QUESTION)
        second = await backend.compress(PASSAGES, 2.0, QUESTION)
    finally:
        await backend.close()
    assert first == second  # byte-identical: a compressed static block keeps the prompt prefix cacheable
    assert len(first) == len(PASSAGES)
    assert sum(map(len, first)) < 0.8 * sum(map(len, PASSAGES))
    assert "five business" in first[0]  # question-aware: the fact the passage is retrieved for stays


NUMBERED = [
    "The 25 de Abril bridge opened in 1966 and crosses the Tagus between Lisbon and Almada. The toll for a car "
    "is 2.15 euros and is paid only when entering Lisbon, heading north, between 06:00 and 22:30 on weekdays.",
    "A single metro ride costs 1.85 euros on a card that itself costs 0.50 euros; 24-hour passes cost 7.00 "
    "euros, and fares rose by 3% on 1/1/2025 for journeys where the distance is < 12 km.",
]


async def test_no_number_is_lost_or_changed_and_a_text_with_angle_brackets_survives(infra: StackSettings) -> None:
    # LLMLingua drops the digits a small model finds predictable ("1966" became "16", "2.15" "215"): a text
    # whose compression lost a number goes on whole; one without numbers is still compressed.
    texts = [*NUMBERED, PASSAGES[0], "Compare a < b and keep the order."]
    backend = LLMLinguaCompressor(lingua_url(infra), 300)
    try:
        out = await backend.compress(texts, 3.0, "How much is the toll for a car?")
    finally:
        await backend.close()
    number = r"\d+(?:[.,:/-]\d+)*%?"
    for before, after in zip(texts, out, strict=True):
        assert re.findall(number, after) == re.findall(number, before), after
    assert len(out[2]) < 0.8 * len(texts[2])  # no numbers: compressed as before
    assert out[3] == texts[3]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"texts": "not a list", "rate": 0.5}, "texts must be a list of strings"),
        ({"texts": ["a"], "rate": 0}, "rate"),
        ({"texts": ["a\n§\nb"], "rate": 0.5}, "separator"),
    ],
)
def test_server_rejects_bad_requests_with_a_reason(infra: StackSettings, body: dict[str, object], message: str) -> None:
    reply = httpx.post(f"{lingua_url(infra)}/compress", json=body, timeout=30)
    assert reply.status_code == 400
    assert message in reply.json()["error"]


@pytest.fixture
async def mesh(infra: StackSettings) -> AsyncIterator[tuple[Mesh, EchoBackend]]:
    large = EchoBackend("large")
    compressor = CompressorSettings(port=0, method="llmlingua", llmlingua_url=lingua_url(infra), min_tokens=50)
    # A short compressor budget, as in production: the first request cannot wait for a cold compression.
    m = await start_mesh([EchoBackend("small")], [large], MemoryExactStore(), compressor, compressor_budget_s=0.5)
    yield m, large
    await m.stop()


async def test_rag_prompt_comes_out_shorter_with_the_question_intact(mesh: tuple[Mesh, EchoBackend]) -> None:
    m, large = mesh
    fixed = "Policy: answer only from the passages below."
    request = orchestrator_pb2.CompletionRequest(
        tenant="lingua",
        messages=[
            common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content="You are a bank's support assistant."),
            common_pb2.Message(role=common_pb2.ROLE_USER, content=QUESTION),
        ],
        documents=[common_pb2.Document(id="policy", text=fixed, kind=common_pb2.DOCUMENT_KIND_FIXED)]
        + [
            common_pb2.Document(id=f"p{i}", text=text, kind=common_pb2.DOCUMENT_KIND_CONTEXT)
            for i, text in enumerate(PASSAGES)
        ],
        tier=common_pb2.TIER_LARGE,
        cache=common_pb2.CacheControl(no_cache=True, no_store=True),
    )
    stub = orchestrator_pb2_grpc.OrchestratorStub(m.channel("orchestrator"))
    first = await stub.Complete(request, timeout=120)
    # Cold: the request goes on uncompressed (fail open); the compression finishes in the background.
    assert first.compression.degraded
    for _ in range(240):
        await asyncio.sleep(0.5)
        reply = await stub.Complete(request, timeout=120)
        if reply.compression.applied:
            break
    else:
        pytest.fail("the background compression never reached the cache")
    assert reply.compression.method == "llmlingua"
    assert reply.compression.tokens_before / reply.compression.tokens_after >= 1.4
    prompt = large.prompts[-1].messages
    assert prompt[-1].role == "user" and prompt[-1].content == QUESTION  # never compressed
    context = next(msg.content for msg in prompt if "[Context p0]" in msg.content)
    assert fixed in context  # fixed documents are kept verbatim
    assert len(context) < sum(map(len, PASSAGES))
    assert reply.cost.savings_by_intervention["compression"] > 0
