import grpc
import pytest
import redis

from services.cache.settings import CacheSettings
from services.common.errors import BackendUnavailable, InvalidInput, status_for
from services.common.telemetry import tenant_label
from services.common.tokens import count_text, seed_tiktoken_cache
from services.router.settings import RouterSettings


def test_error_table() -> None:
    assert status_for(InvalidInput("bad")) == (grpc.StatusCode.INVALID_ARGUMENT, "bad")
    assert status_for(BackendUnavailable("down"))[0] == grpc.StatusCode.UNAVAILABLE
    code, message = status_for(KeyError("secret detail"))
    assert code == grpc.StatusCode.INTERNAL
    assert "secret" not in message
    # An unreachable store is worth a retry: UNAVAILABLE, without its address in the message.
    for unreachable in (redis.exceptions.ConnectionError("10.0.0.7:6379"), ConnectionRefusedError("10.0.0.7")):
        code, message = status_for(unreachable)
        assert code == grpc.StatusCode.UNAVAILABLE and "10.0.0.7" not in message


def test_settings_reject_unknown_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTMESH_ROUTER_TRESHOLD", "0.3")  # typo
    with pytest.raises(ValueError, match="COSTMESH_ROUTER_TRESHOLD"):
        RouterSettings()


def test_settings_parse_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSTMESH_ROUTER_THRESHOLD", "0.3")
    monkeypatch.setenv("COSTMESH_ROUTER_PORT", "6000")
    s = RouterSettings()
    assert s.threshold == 0.3
    assert s.port == 6000
    monkeypatch.setenv("COSTMESH_ROUTER_THRESHOLD", "2")
    with pytest.raises(ValueError, match="threshold"):
        RouterSettings()


def test_tiktoken_seeded_offline_with_verified_hash(tmp_path: object) -> None:
    seed_tiktoken_cache()
    # o200k_base (gpt-4o) splits this into 7 tokens; cl100k_base would too, but a wrong vocabulary would not.
    assert count_text("The capital of France is Paris.") == 7


def test_tenant_label_is_the_tenant_only_when_allowed() -> None:
    assert tenant_label("acme", {"acme", "globex"}) == "acme"
    assert tenant_label("mallory-0001", {"acme"}) == "other"
    assert tenant_label("acme", ()) == "other"


def test_metrics_tenants_read_as_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert CacheSettings().metrics_tenants == frozenset()
    monkeypatch.setenv("COSTMESH_CACHE_METRICS_TENANTS", "acme, globex,,")
    assert CacheSettings().metrics_tenants == {"acme", "globex"}
