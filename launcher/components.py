"""The components of the local stack, in start order, built from StackSettings."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

from launcher import secrets
from launcher.kafka import kafka
from launcher.model_info import describe
from launcher.observability import jaeger, prometheus
from launcher.probes import grpc_serving, http_ok, redis_ping
from launcher.process import Component
from launcher.settings import ROOT, StackSettings
from services.common.meshauth import MESH_TOKEN_ENV
from services.common.tokens import seed_tiktoken_cache

SERVICES = ("inference", "router", "cache", "compressor", "summarizer", "orchestrator", "batch", "gateway")
INFRA = ("redis", "weaviate", "kafka", "jaeger", "prometheus", "vllm-small", "vllm-large", "ray-serve", "llmlingua")


def find_weaviate(settings: StackSettings) -> str | None:
    """weaviate-server on PATH, else where `go install` puts it."""
    found = shutil.which(settings.weaviate_binary)
    if found:
        return found
    gopath = Path(os.environ.get("GOPATH", Path.home() / "go"))
    candidate = gopath / "bin" / settings.weaviate_binary
    return str(candidate) if candidate.exists() else None


def redis(s: StackSettings) -> Component:
    data = s.data_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    # The password goes in a config file of ours (0600), not in `--requirepass`: argv is world-readable.
    config = secrets.private_file(secrets.folder(s.data_dir) / "redis.conf", f"requirepass {s.redis_password()}\n")
    return Component(
        "redis",
        f"redis://127.0.0.1:{s.redis_port}",
        [
            "redis-server",
            str(config),
            "--bind",
            "127.0.0.1",
            "--port",
            str(s.redis_port),
            "--dir",
            str(data),
            # API keys and the day's spend live here: an append-only file (fsync each second) keeps them
            # across a restart; RDB snapshots stay off.
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "yes",
        ],
        functools.partial(redis_ping, s.redis_port, s.redis_password()),
    )


def weaviate_locked_down(s: StackSettings) -> dict[str, str]:
    """Weaviate's settings (usecases/config/environment.go in weaviate v1.38) for API-key auth, no anonymous
    access, and every listener on loopback.

    Upstream binds two listeners to ":port" whatever its settings: the gRPC API (GRPC_PORT;
    adapters/handlers/grpc/server.go) and the cluster data API (CLUSTER_DATA_BIND_PORT;
    adapters/handlers/rest/clusterapi/serve.go). scripts/setup.sh builds weaviate-server with
    deploy/weaviate/bind-host.patch, which binds them to GRPC_BIND_ADDR (a variable of the patch's, passed by
    weaviate()) and CLUSTER_BIND_ADDR. Both still want credentials: the gRPC API the API key like REST, the
    cluster data API basic auth. The profiler (6060, also ":port") is switched off, and Prometheus metrics
    (PROMETHEUS_MONITORING_ENABLED) are off by default.
    """
    return {
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
        "AUTHENTICATION_APIKEY_ENABLED": "true",
        "AUTHENTICATION_APIKEY_ALLOWED_KEYS": s.weaviate_api_key(),
        "AUTHENTICATION_APIKEY_USERS": "costmesh",
        "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
        # memberlist gossip, the Raft transport, Raft's RPC server and (patched) the cluster data API
        "CLUSTER_BIND_ADDR": "127.0.0.1",
        "CLUSTER_BASIC_AUTH_USERNAME": "costmesh",
        "CLUSTER_BASIC_AUTH_PASSWORD": secrets.secret(s.data_dir, secrets.WEAVIATE_CLUSTER_PASSWORD),
        "GO_PROFILING_DISABLE": "true",  # the only switch that keeps the debug listener from binding
        "DEFAULT_VECTORIZER_MODULE": "none",  # costmesh sends its own vectors
        "ENABLE_MODULES": "",
        "DISABLE_TELEMETRY": "true",
    }


def weaviate(s: StackSettings) -> Component:
    if s.weaviate_url:
        url = s.weaviate_url.rstrip("/")
        return Component(
            "weaviate",
            url,
            [],
            functools.partial(http_ok, f"{url}/v1/.well-known/ready"),
            kind="external",
            note="WEAVIATE_URL",
        )
    url = f"http://127.0.0.1:{s.weaviate_port}"
    binary = find_weaviate(s)
    probe = functools.partial(http_ok, f"{url}/v1/.well-known/ready")  # open without the API key
    data = s.data_dir / "weaviate"
    data.mkdir(parents=True, exist_ok=True)
    locked = weaviate_locked_down(s)
    if binary is None:
        # Without Go or a binary, weaviate-client's embedded mode fetches and runs the release binary; it
        # hands its environment, these settings included, to the server, and picks the ports itself. That
        # binary is upstream's, unpatched: two of its listeners are on every interface (embedded_weaviate.py).
        return Component(
            "weaviate",
            url,
            [
                str(s.python),
                "-m",
                "launcher.embedded_weaviate",
                str(s.weaviate_port),
                str(s.weaviate_grpc_port),
                str(data),
            ],
            probe,
            env=locked,
            note="embedded (weaviate-client)",
        )
    env = {
        **locked,
        "PERSISTENCE_DATA_PATH": str(data),
        "GRPC_PORT": str(s.weaviate_grpc_port),
        "GRPC_BIND_ADDR": "127.0.0.1",  # read by deploy/weaviate/bind-host.patch only
        "CLUSTER_HOSTNAME": "costmesh",
        "CLUSTER_GOSSIP_BIND_PORT": "7946",
        "CLUSTER_DATA_BIND_PORT": "7947",
        "RAFT_PORT": "8300",
        "RAFT_INTERNAL_RPC_PORT": "8301",
        "RAFT_BOOTSTRAP_EXPECT": "1",
        "LOG_LEVEL": "warning",
    }
    return Component(
        "weaviate",
        url,
        [binary, "--host", "127.0.0.1", "--port", str(s.weaviate_port), "--scheme", "http"],
        probe,
        env=env,
        note=f"local binary {binary}",
    )


def model_dtype(s: StackSettings, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    if s.model_dtype:
        return s.model_dtype
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        flags = set()
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def vllm(s: StackSettings, tier: str) -> Component:
    """A vLLM server for a tier; "students" is the small model again with LoRA on, serving every distilled
    student as an adapter (loaded at run time by the inference service: VLLM_ALLOW_RUNTIME_LORA_UPDATING)."""
    port = {"small": s.small_model_port, "large": s.large_model_port, "students": s.students_model_port}[tier]
    model = s.served_model("small" if tier == "students" else tier)
    url = f"http://127.0.0.1:{port}"
    lora = ["--enable-lora", "--max-lora-rank", "16", "--max-loras", "4"] if tier == "students" else []
    component = Component(
        f"vllm-{tier}",
        f"{url}/v1 ({model})",
        [
            str(s.models_python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(s.models_dir / model),
            "--served-model-name",
            model,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dtype",
            model_dtype(s),
            "--enforce-eager",
            "--enable-prefix-caching",
            "--enable-prompt-tokens-details",  # usage.prompt_tokens_details.cached_tokens, priced as cached input
            "--scheduling-policy",
            "priority",  # real-time requests (priority 0) are scheduled ahead of batch-lane ones
            "--max-model-len",
            "8192",
            *lora,
        ],
        functools.partial(http_ok, f"{url}/health"),
        env={
            # 1 GiB holds ~18k tokens of the 1.5B's float32 KV cache (28 layers x 2 KV heads x 128 x 2 x 4 B
            # = 56 KiB a token): two requests at --max-model-len, enough on one core.
            "VLLM_CPU_KVCACHE_SPACE": str(s.kv_cache_gib),
            "VLLM_CPU_OMP_THREADS_BIND": s.large_model_cpus if tier == "large" else s.small_model_cpus,
            "HF_HUB_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        },
        note=describe(s.models_dir / model),
    )
    if tier == "students":
        component.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    return component


def ray_serve(s: StackSettings) -> Component:
    url = f"http://127.0.0.1:{s.ray_serve_port}"
    return Component(
        "ray-serve",
        f"{url}/v1 ({s.small_model})",
        [
            str(s.models_python),
            str(ROOT / "deploy" / "ray_serve" / "small_model.py"),
            "--model-dir",
            str(s.models_dir / s.small_model),
            "--served-model-name",
            s.small_model,
            "--port",
            str(s.ray_serve_port),
            "--min-replicas",
            str(s.ray_serve_min_replicas),
            "--max-replicas",
            str(s.ray_serve_max_replicas),
        ],
        functools.partial(http_ok, f"{url}/v1/models"),
        env={"HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"},
        cwd=ROOT,
        note=describe(s.models_dir / s.small_model),
    )


def llmlingua(s: StackSettings) -> Component:
    url = f"http://127.0.0.1:{s.lingua_port}"
    return Component(
        "llmlingua",
        f"{url} (LLMLingua-1)",
        [
            str(s.lingua_python),
            str(ROOT / "deploy" / "llmlingua" / "server.py"),
            "--model-dir",
            str(s.models_dir / f"{s.small_model}-lingua"),
            "--port",
            str(s.lingua_port),
            "--threads",
            str(s.lingua_threads),
        ],
        functools.partial(http_ok, f"{url}/health"),
        # llmlingua counts tokens with tiktoken, which must not try to download its BPE files.
        env={"HF_HUB_OFFLINE": "1", "TIKTOKEN_CACHE_DIR": str(seed_tiktoken_cache())},
        cwd=ROOT,
    )


def gateway(s: StackSettings) -> Component:
    """The OpenAI-compatible HTTP front door; SERVING once the orchestrator behind it is."""
    url = f"http://127.0.0.1:{s.gateway_port}"
    env = {
        "COSTMESH_GATEWAY_PORT": str(s.gateway_port),
        "COSTMESH_GATEWAY_METRICS_PORT": str(s.service_metrics_port("gateway")),
        "COSTMESH_GATEWAY_OTLP_ENDPOINT": s.traces_endpoint(),
        "COSTMESH_GATEWAY_ORCHESTRATOR_ADDR": f"127.0.0.1:{s.orchestrator_port}",
        "COSTMESH_GATEWAY_BATCH_ADDR": f"127.0.0.1:{s.batch_port}",
        "COSTMESH_GATEWAY_REDIS_URL": s.redis_url(),
        # No mesh token: the gateway acts only with its callers' keys, so a bug in it cannot claim a tenant.
        MESH_TOKEN_ENV: "",
    }
    return Component(
        "gateway",
        f"{url}/v1",
        [str(s.python), "-m", "services.gateway"],
        functools.partial(http_ok, f"{url}/health"),
        env=env,
        cwd=ROOT,
    )


def service(s: StackSettings, name: str) -> Component:
    if name == "gateway":
        return gateway(s)
    port = getattr(s, f"{name}_port")
    prefix = f"COSTMESH_{name.upper()}_"
    env = {
        MESH_TOKEN_ENV: s.mesh_token(),  # every service both checks it and sends it to the others
        f"{prefix}PORT": str(port),
        f"{prefix}METRICS_PORT": str(s.service_metrics_port(name)),
        f"{prefix}OTLP_ENDPOINT": s.traces_endpoint(),
    }
    if name == "inference" and not s.openai_api_key:
        env[f"{prefix}SMALL_BACKENDS"] = f"vllm={s.model_url('small')},ray-serve=http://127.0.0.1:{s.ray_serve_port}/v1"
        env[f"{prefix}LARGE_BACKENDS"] = f"vllm={s.model_url('large')}"
        env[f"{prefix}SMALL_MODEL"] = s.small_model
        env[f"{prefix}LARGE_MODEL"] = s.large_model
        env[f"{prefix}STUDENT_BACKENDS"] = f"vllm=http://127.0.0.1:{s.students_model_port}/v1"
        env[f"{prefix}STUDENT_MODEL"] = s.small_model
    if name == "inference":
        env[f"{prefix}LIMITS_REDIS_URL"] = s.redis_url()  # one lane quota however many replicas run
        # Embeddings: OpenAI's with OpenAI tiers, else the MiniLM the orchestrator embeds requests with.
        local = f"local={s.models_dir / 'all-minilm-l6-v2'}"
        env[f"{prefix}EMBEDDING_BACKEND"] = "openai=" if s.openai_api_key else local
    if name == "inference" and s.openai_api_key:
        env[f"{prefix}SMALL_BACKENDS"] = "openai="
        env[f"{prefix}LARGE_BACKENDS"] = "openai="
        env[f"{prefix}SMALL_MODEL"] = "gpt-4o-mini"
        env[f"{prefix}LARGE_MODEL"] = "gpt-4o"
    if name == "cache":
        env[f"{prefix}REDIS_URL"] = s.redis_url()
        weaviate_url = s.weaviate_url or f"http://127.0.0.1:{s.weaviate_port}"
        env[f"{prefix}WEAVIATE_URL"] = weaviate_url
        env[f"{prefix}WEAVIATE_GRPC_PORT"] = str(s.weaviate_grpc_port)
        env[f"{prefix}WEAVIATE_API_KEY"] = s.weaviate_api_key()
    if name == "compressor":
        env[f"{prefix}LLMLINGUA_URL"] = f"http://127.0.0.1:{s.lingua_port}"
    if name == "summarizer":
        env[f"{prefix}INFERENCE_ADDR"] = f"127.0.0.1:{s.inference_port}"
        env[f"{prefix}REDIS_URL"] = s.redis_url()
    if name == "orchestrator":
        for other in ("inference", "router", "cache", "compressor", "summarizer"):
            env[f"{prefix}{other.upper()}_ADDR"] = f"127.0.0.1:{getattr(s, f'{other}_port')}"
        env[f"{prefix}KEYS_REDIS_URL"] = s.redis_url()
        env[f"{prefix}TASKS_REDIS_URL"] = s.redis_url()
    if name == "router":
        env[f"{prefix}TASKS_REDIS_URL"] = s.redis_url()
    if name == "batch":
        env[f"{prefix}REDIS_URL"] = s.redis_url()
        env[f"{prefix}KEYS_REDIS_URL"] = s.redis_url()
        env[f"{prefix}ORCHESTRATOR_ADDR"] = f"127.0.0.1:{s.orchestrator_port}"
        env[f"{prefix}QUEUE"] = s.queue
        env[f"{prefix}KAFKA_BOOTSTRAP"] = f"127.0.0.1:{s.kafka_port}"
    address = f"127.0.0.1:{port}"
    return Component(
        name,
        address,
        [str(s.python), "-m", f"services.{name}"],
        functools.partial(grpc_serving, address),
        env=env,
        cwd=ROOT,
    )


def stack(s: StackSettings) -> list[Component]:
    """Every component, in start order (dependencies first)."""
    parts = [redis(s), weaviate(s), *([kafka(s)] if s.queue == "kafka" else [])]
    parts += [*([jaeger(s)] if s.jaeger else []), *([prometheus(s)] if s.prometheus else [])]
    if not s.openai_api_key:
        parts += [vllm(s, "small"), vllm(s, "large"), vllm(s, "students"), ray_serve(s)]
    parts.append(llmlingua(s))  # local even with OpenAI tiers: it only scores tokens
    return parts + [service(s, name) for name in SERVICES]
