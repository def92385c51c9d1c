"""The stack's secrets (launcher/secrets.py) and how the launcher hands them out."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from launcher import components, secrets
from launcher.settings import StackSettings
from services.common.meshauth import MESH_TOKEN_ENV


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_secret_is_generated_once_in_a_private_folder(tmp_path: Path) -> None:
    secrets.ensure_all(tmp_path)
    folder = tmp_path / "secrets"
    assert mode(folder) == 0o700
    values = {name: (folder / name).read_text() for name in secrets.ALL}
    assert all(mode(folder / name) == 0o600 for name in secrets.ALL)
    assert len(set(values.values())) == len(secrets.ALL)  # independent values
    assert all(len(v) >= 40 for v in values.values())  # 32 random bytes, url-safe base64
    secrets.ensure_all(tmp_path)
    assert {name: (folder / name).read_text() for name in secrets.ALL} == values  # kept, not regenerated


def test_concurrent_first_reads_agree_on_one_value(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = set(pool.map(lambda _: secrets.secret(tmp_path, secrets.MESH_TOKEN), range(32)))
    assert len(seen) == 1
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == [secrets.MESH_TOKEN]  # no drafts left


def test_the_launcher_hands_the_secrets_out_off_the_command_line(tmp_path: Path) -> None:
    s = StackSettings(data_dir=tmp_path, run_dir=tmp_path / "run")
    password, token = s.redis_password(), s.mesh_token()
    assert s.redis_url(2) == f"redis://:{password}@127.0.0.1:{s.redis_port}/2"

    redis = components.redis(s)
    assert not any(password in arg for arg in redis.command)  # argv is readable by every local user
    config = Path(redis.command[1])
    assert config.read_text() == f"requirepass {password}\n" and mode(config) == 0o600

    for name in components.SERVICES:
        component = components.service(s, name)
        if name != "gateway":  # the gateway calls the orchestrator with its callers' API keys
            assert component.env[MESH_TOKEN_ENV] == token, name
        assert not any(token in arg or password in arg for arg in component.command)
        for key, value in component.env.items():
            if key.endswith("REDIS_URL"):
                assert value == s.redis_url(), (name, key)
    assert components.service(s, "cache").env["COSTMESH_CACHE_WEAVIATE_API_KEY"] == s.weaviate_api_key()


def test_weaviate_allows_only_its_api_key_and_binds_every_port_to_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = StackSettings(data_dir=tmp_path, weaviate_binary="/bin/true")  # a "binary", so no embedded mode
    env = components.weaviate(s).env
    assert env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false"
    assert env["AUTHENTICATION_APIKEY_ENABLED"] == "true"
    assert env["AUTHENTICATION_APIKEY_ALLOWED_KEYS"] == s.weaviate_api_key()
    assert env["CLUSTER_BIND_ADDR"] == "127.0.0.1"  # gossip, Raft, and (patched) the cluster data API
    assert env["GRPC_BIND_ADDR"] == "127.0.0.1"  # the public gRPC API, read by deploy/weaviate/bind-host.patch
    assert env["GO_PROFILING_DISABLE"] == "true"
    assert env["CLUSTER_BASIC_AUTH_PASSWORD"] == secrets.secret(tmp_path, secrets.WEAVIATE_CLUSTER_PASSWORD)
    monkeypatch.setenv("WEAVIATE_URL", "http://weaviate:8080")
    monkeypatch.setenv("WEAVIATE_API_KEY", "theirs")
    assert StackSettings(data_dir=tmp_path).weaviate_api_key() == "theirs"  # an external Weaviate's own key
