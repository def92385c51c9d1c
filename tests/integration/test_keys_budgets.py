"""API keys, budgets and admission against a real Redis (started as `costmesh up` starts it)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import redis.asyncio as redis

from costmesh.v1 import common_pb2, inference_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from launcher.settings import StackSettings
from services.batch.callers import BatchGate
from services.common.apikeys import KeyStore
from services.common.errors import Forbidden, RateLimited, Unauthenticated
from services.common.meshauth import KEY_ID_ENTRY, MESH_TOKEN_KEY, mesh_token
from services.orchestrator.admission import Gatekeeper
from services.orchestrator.quote import PriceBook
from services.orchestrator.spend import SpendLedger
from tests import stack
from tests.service.fakes import DeadBackend, EchoBackend
from tests.service.mesh import start_mesh
from tests.unit.fakes import MemoryExactStore

PRICES = inference_pb2.PricesResponse(
    tiers=[
        inference_pb2.TierPrice(tier=common_pb2.TIER_SMALL, input_per_m=0.15, output_per_m=0.6, batch_discount=0.5),
        inference_pb2.TierPrice(tier=common_pb2.TIER_LARGE, input_per_m=2.5, output_per_m=10.0, batch_discount=0.5),
    ],
    default_max_tokens=256,
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    settings = StackSettings()
    started = stack.start(settings, ["redis"])
    yield settings.redis_url()
    stack.stop(settings, started)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    await c.aclose()


async def fetch_prices() -> inference_pb2.PricesResponse:
    return PRICES


def tenant() -> str:
    return f"t-{secrets.token_hex(4)}"


def ask(
    tier: common_pb2.Tier.ValueType = common_pb2.TIER_UNSPECIFIED, **fields: object
) -> orchestrator_pb2.CompletionRequest:
    return orchestrator_pb2.CompletionRequest(
        messages=[common_pb2.Message(role=common_pb2.ROLE_USER, content="What is the capital of France?")],
        sampling=common_pb2.SamplingParams(max_tokens=32),
        tier=tier,
        **fields,  # type: ignore[arg-type]
    )


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


async def test_keys_are_stored_hashed_and_revocation_is_immediate(client: redis.Redis) -> None:
    store = KeyStore(client)
    key, policy = await store.create(tenant(), rpm=5)
    assert (await store.authenticate(key)).tenant == policy.tenant
    # The key itself is nowhere in Redis: only its SHA-256.
    async for name in client.scan_iter(match="costmesh:apikey*"):
        kind = (await client.type(name)).decode()
        values = await client.hvals(name) if kind == "hash" else []  # type: ignore[misc]
        assert key.encode() not in name and all(key.encode() not in v for v in values)
    assert policy.key_id in {p.key_id for p in await store.list()}
    await store.revoke(policy.key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await store.authenticate(key)
    with pytest.raises(Unauthenticated, match="missing"):
        await store.authenticate("")
    with pytest.raises(Unauthenticated):
        await store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B"))


async def test_twenty_concurrent_requests_never_spend_past_a_budget_that_allows_five(client: redis.Redis) -> None:
    store, ledger = KeyStore(client), SpendLedger(client)
    book = PriceBook(fetch_prices)
    per_request = await book.worst_case_usd(ask(common_pb2.TIER_LARGE))
    _, policy = await store.create(tenant(), budget_usd_per_day=5.5 * per_request)

    async def one() -> bool:
        try:
            hold = await ledger.reserve(policy, per_request)
        except RateLimited:
            return False
        await asyncio.sleep(0.01)  # the model call
        await ledger.settle(hold, per_request * 0.8)  # a real answer costs less than its worst case
        return True

    admitted = await asyncio.gather(*(one() for _ in range(20)))
    spent = await ledger.spent_today(policy.key_id)
    assert sum(admitted) == 5  # 5 x 1.0 reserved fits 5.5; a 6th would not
    assert spent <= policy.budget_usd_per_day + per_request
    assert spent == pytest.approx(5 * 0.8 * per_request)
    await ledger.reserve(policy, per_request)  # settling freed what the answers did not use: 4 + 1 fits
    with pytest.raises(RateLimited, match="over its budget") as refused:
        await ledger.reserve(policy, per_request)
    assert refused.value.retry_after_s > 0


async def test_the_rate_limit_counts_requests_per_minute(client: redis.Redis) -> None:
    store, ledger = KeyStore(client), SpendLedger(client)
    _, policy = await store.create(tenant(), rpm=3)
    now = 1_800_000_000.0
    for _ in range(3):
        await ledger.reserve(policy, 0.0, now)
    with pytest.raises(RateLimited, match="3 requests per minute") as refused:
        await ledger.reserve(policy, 0.0, now + 1)
    assert 0 < refused.value.retry_after_s <= 60
    await ledger.reserve(policy, 0.0, now + 60)  # the next minute


async def test_admission_takes_the_tenant_tiers_and_lane_from_the_key(client: redis.Redis) -> None:
    store = KeyStore(client)
    gate = Gatekeeper(store, SpendLedger(client), PriceBook(fetch_prices))
    small_key, small = await store.create(tenant(), tiers=frozenset({"small"}))
    admitted, _ = await gate.admit(bearer(small_key), ask())
    assert admitted.tenant == small.tenant and admitted.tier == common_pb2.TIER_SMALL  # no route to large
    with pytest.raises(Forbidden, match="large tier"):
        await gate.admit(bearer(small_key), ask(common_pb2.TIER_LARGE))
    with pytest.raises(Forbidden, match="differs from the API key"):
        await gate.admit(bearer(small_key), ask(tenant="someone-else"))
    with pytest.raises(Forbidden, match="batch lane"):
        await gate.admit(bearer(small_key), ask(lane=common_pb2.LANE_BATCH))
    with pytest.raises(Forbidden, match="may not use the batch lane"):
        await BatchGate(store).caller(bearer(small_key), "")  # the batch service's own check
    # A key's request cannot name another key for the batch lane to charge.
    forged = ask()
    forged.metadata[KEY_ID_ENTRY] = "someone-elses-key"
    admitted, _ = await gate.admit(bearer(small_key), forged)
    assert KEY_ID_ENTRY not in admitted.metadata
    with pytest.raises(Unauthenticated):
        await gate.admit([], ask(tenant="x"))


async def test_a_key_wins_over_the_mesh_token_and_the_batch_lane_pays_the_submitting_key(client: redis.Redis) -> None:
    store = KeyStore(client)
    gate = Gatekeeper(store, SpendLedger(client), PriceBook(fetch_prices))
    key, policy = await store.create(tenant(), budget_usd_per_day=1.0, allow_batch=True)
    mesh = [(MESH_TOKEN_KEY, mesh_token())]
    # The gateway forwards its caller's key over a mesh channel: the key decides, not the mesh.
    with pytest.raises(Forbidden, match="differs"):
        await gate.admit(mesh + bearer(key), ask(tenant="other"))
    admitted, hold = await gate.admit(mesh, ask(tenant="anyone"))  # the mesh alone names the tenant
    assert admitted.tenant == "anyone" and hold is None
    item = ask(tenant=policy.tenant, lane=common_pb2.LANE_BATCH)
    item.metadata[KEY_ID_ENTRY] = policy.key_id
    admitted, hold = await gate.admit(mesh, item)
    assert hold is not None and hold.key_id == policy.key_id
    await store.revoke(policy.key_id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await gate.admit(mesh, item)


async def test_a_request_that_never_reached_a_model_costs_its_key_nothing(redis_url: str, client: redis.Redis) -> None:
    """The reservation is released when the only model call was refused, and kept when a call was cut off
    mid-generation (the client hung up or its deadline passed): then what it cost is unknown."""
    mesh = await start_mesh([DeadBackend("small")], [EchoBackend("large", delay_s=2.0)], MemoryExactStore(),
                            keys_redis_url=redis_url)  # fmt: skip
    store, ledger = KeyStore(client), SpendLedger(client)
    try:
        stub = orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))
        key, policy = await store.create(tenant(), budget_usd_per_day=1.0)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Complete(ask(common_pb2.TIER_SMALL), metadata=bearer(key), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await ledger.spent_today(policy.key_id) == 0.0
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await stub.Complete(ask(common_pb2.TIER_LARGE), metadata=bearer(key), timeout=0.5)
        assert cut.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        reserved = await PriceBook(fetch_prices).worst_case_usd(ask(common_pb2.TIER_LARGE))
        await asyncio.sleep(0.2)  # the servicer settles as it unwinds
        assert await ledger.spent_today(policy.key_id) > 0.5 * reserved  # held, at the inference's prices
    finally:
        await mesh.stop()


async def test_embeddings_are_charged_to_the_key_and_refused_past_its_budget(
    redis_url: str, client: redis.Redis
) -> None:
    """Orchestrator.Embed with a key: its tenant, a reservation settled to the real cost, and the budget's
    refusal once the worst case of the next call no longer fits."""
    mesh = await start_mesh([EchoBackend("small")], [EchoBackend("large")], MemoryExactStore(),
                            keys_redis_url=redis_url)  # fmt: skip
    store, ledger = KeyStore(client), SpendLedger(client)
    try:
        stub = orchestrator_pb2_grpc.OrchestratorStub(mesh.channel("orchestrator"))
        key, policy = await store.create(tenant(), budget_usd_per_day=2e-5)  # ~1,000 tokens at $0.02 / 1M
        texts = ["The card arrived but does not work."] * 4
        response = await stub.Embed(orchestrator_pb2.EmbeddingsRequest(input=texts), metadata=bearer(key), timeout=30)
        assert await ledger.spent_today(policy.key_id) == pytest.approx(response.cost.cost_usd)  # settled to actual
        with pytest.raises(grpc.aio.AioRpcError) as other:
            await stub.Embed(
                orchestrator_pb2.EmbeddingsRequest(tenant="other", input=texts), metadata=bearer(key), timeout=30
            )
        assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
        big = ["x " * 4000] * 8  # worst case 8 x 8,002 tokens: over what is left of the budget
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Embed(orchestrator_pb2.EmbeddingsRequest(input=big), metadata=bearer(key), timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await ledger.spent_today(policy.key_id) == pytest.approx(response.cost.cost_usd)  # nothing held
    finally:
        await mesh.stop()
