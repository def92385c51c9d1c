"""Few-shot examples picked per question with the real embedding model, alone and through the mesh."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from costmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.embedding import OnnxMiniLM
from services.compressor.nearest import ExampleIndex
from services.compressor.settings import CompressorSettings
from tests.service.fakes import EchoBackend
from tests.service.mesh import Mesh, start_mesh
from tests.unit.fakes import MemoryExactStore

pytestmark = pytest.mark.integration

# Paraphrases of four banking intents: the questions below share almost no words with their intent's inputs.
EXAMPLES = {
    "card_arrival": [
        "When will my new card get here?",
        "I ordered a card two weeks ago and it still has not been delivered.",
        "How long does the postman take to bring the card?",
        "Is there a way to track the card you sent me?",
    ],
    "exchange_rate": [
        "What rate do you use to convert euros into pounds?",
        "How is the currency conversion price decided?",
        "Is the exchange rate you apply the interbank one?",
        "Why did I get fewer dollars than Google says?",
    ],
    "lost_or_stolen_phone": [
        "Somebody took my mobile on the train, what do I do?",
        "I misplaced my smartphone with the app on it.",
        "My handset was stolen, please lock my account.",
        "Can a thief use the app if they have my telephone?",
    ],
    "pin_blocked": [
        "I typed the wrong code three times and now it is locked.",
        "My PIN does not work any more after several tries.",
        "How can I unblock my pin?",
        "The ATM says my PIN is blocked.",
    ],
}
LABELED = [f"Query: {text}\nIntent: {label}" for label, texts in EXAMPLES.items() for text in texts]
QUESTIONS = {
    "card_arrival": "The plastic you mailed still isn't in my letterbox.",
    "lost_or_stolen_phone": "I left my iPhone in a taxi last night.",
}


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLM:
    return OnnxMiniLM(Path(CompressorSettings().embedding_model_dir).expanduser())


@pytest.mark.parametrize("label", sorted(QUESTIONS))
async def test_the_nearest_examples_share_the_questions_intent(embedder: OnnxMiniLM, label: str) -> None:
    index = ExampleIndex(embedder)
    inputs = [text for texts in EXAMPLES.values() for text in texts]
    nearest = await index.nearest(inputs, QUESTIONS[label], 3)
    assert [inputs[i] in EXAMPLES[label] for i in nearest] == [True, True, True]
    assert await index.nearest(inputs, QUESTIONS[label], 3) == nearest  # deterministic


@pytest.fixture
async def mesh() -> AsyncIterator[tuple[Mesh, EchoBackend]]:
    large = EchoBackend("large")
    compressor = CompressorSettings(port=0, method="dedupe", examples="nearest", min_tokens=0)
    m = await start_mesh([EchoBackend("small")], [large], MemoryExactStore(), compressor)
    yield m, large
    await m.stop()


async def test_static_examples_stay_a_shared_prefix_and_the_nearest_follow(mesh: tuple[Mesh, EchoBackend]) -> None:
    m, large = mesh
    stub = orchestrator_pb2_grpc.OrchestratorStub(m.channel("orchestrator"))
    blocks = {}
    for label, question in QUESTIONS.items():
        reply = await stub.Complete(
            orchestrator_pb2.CompletionRequest(
                tenant="nearest",
                messages=[
                    common_pb2.Message(role=common_pb2.ROLE_SYSTEM, content="Classify the customer's query."),
                    common_pb2.Message(role=common_pb2.ROLE_USER, content=question),
                ],
                documents=[
                    common_pb2.Document(id=f"e{i}", text=text, kind=common_pb2.DOCUMENT_KIND_EXAMPLE)
                    for i, text in enumerate(LABELED)
                ],
                tier=common_pb2.TIER_LARGE,
                cache=common_pb2.CacheControl(no_cache=True, no_store=True),
            ),
            timeout=30,
        )
        assert reply.compression.method == "nearest-examples"
        assert reply.compression.tokens_before / reply.compression.tokens_after == pytest.approx(2.0, abs=0.3)
        prompt = large.prompts[-1].messages
        assert prompt[-1].content == question  # never compressed
        blocks[label] = next(msg.content for msg in prompt if "[Example e" in msg.content).split("\n\n")
    card, phone = blocks["card_arrival"], blocks["lost_or_stolen_phone"]
    # 16 examples at ratio 2 keep 8. The static share (0.75 of 8, rounded down per intent) is the first of
    # each intent's examples; the other four are picked for the question, the nearest last.
    assert len(card) == len(phone) == 8
    assert card[:4] == phone[:4]  # byte-identical: the provider's prefix cache serves it to both
    assert [block.rsplit("Intent: ", 1)[1] for block in card[:4]] == list(EXAMPLES)
    assert all(block.endswith("Intent: card_arrival") for block in card[5:])  # the three not in the static part
    assert all(block.endswith("Intent: lost_or_stolen_phone") for block in phone[5:])
