"""Settings of the local stack that `costmesh up` starts (env prefix COSTMESH_STACK_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from launcher import secrets
from services.common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
KAFKA_VERSION = "4.4.0"  # of org.apache.kafka:kafka_2.13 in deploy/kafka/pom.xml (a unit test checks)
LargeModel = Literal["qwen2.5-coder-1.5b-instruct", "qwen2.5-coder-0.5b-instruct-awq"]


class StackSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COSTMESH_STACK_", extra="forbid")

    data_dir: Path = ROOT / ".data"
    # Converted model folders are kept per machine, outside the checkout, so a fresh clone reuses them.
    models_dir: Path = Path.home() / ".cache" / "costmesh" / "models"
    run_dir: Path = ROOT / ".run"
    python: Path = ROOT / ".venv" / "bin" / "python"
    models_python: Path = ROOT / ".venv-models" / "bin" / "python"
    train_python: Path = ROOT / ".venv-train" / "bin" / "python"  # `costmesh distill train` (torch + peft)

    orchestrator_port: int = 50050
    router_port: int = 50051
    cache_port: int = 50052
    compressor_port: int = 50053
    summarizer_port: int = 50054
    inference_port: int = 50055
    batch_port: int = 50056  # the batch service (costmesh.v1.Batch RPCs and its consumer)
    gateway_port: int = 8080  # the OpenAI-compatible HTTP API (services/gateway)
    metrics_base_port: int = 9460  # each service's /metrics on base + (its gRPC port - 50050)

    redis_port: int = 6390
    # The batch lane's queue: Redis Streams in the stack's Redis, or a Kafka broker (KRaft, one node) that
    # `up` then starts from the jars scripts/setup-kafka.sh installs into kafka_home (launcher/kafka.py).
    queue: Literal["redis", "kafka"] = "redis"
    kafka_port: int = 9094
    kafka_controller_port: int = 9095
    kafka_home: Path = Path.home() / ".cache" / "costmesh" / f"kafka-{KAFKA_VERSION}"
    kafka_heap: str = "384m"  # the broker's -Xmx: one node with three small topics
    weaviate_port: int = 8090
    weaviate_grpc_port: int = 50061  # off the 5005x range the mesh uses
    # A running Weaviate to use instead of starting one (its gRPC port is then weaviate_grpc_port), and its API
    # key (empty: it allows anonymous access). The Weaviate `up` starts uses a key of its own (secrets.py).
    weaviate_url: str = Field(default="", validation_alias=AliasChoices("WEAVIATE_URL", "COSTMESH_STACK_WEAVIATE_URL"))
    external_weaviate_api_key: str = Field(
        default="", validation_alias=AliasChoices("WEAVIATE_API_KEY", "COSTMESH_STACK_EXTERNAL_WEAVIATE_API_KEY")
    )
    weaviate_binary: str = "weaviate-server"  # looked up on PATH, then in $GOPATH/bin

    small_model_port: int = 8101
    large_model_port: int = 8102
    students_model_port: int = 8105  # distilled students: LoRA adapters on the small model (vllm-students)
    # The small model again, as a Ray Serve deployment (deploy/ray_serve): the small tier's second backend.
    ray_serve_port: int = 8103
    ray_serve_min_replicas: int = Field(default=1, ge=1)
    ray_serve_max_replicas: int = Field(default=2, ge=1)
    # LLMLingua-1 prompt compression (deploy/llmlingua), scoring tokens with the small model on CPU.
    lingua_port: int = 8104
    lingua_python: Path = ROOT / ".venv-lingua" / "bin" / "python"
    lingua_threads: int = Field(default=2, ge=1)
    # Model folders under models_dir, each served under its folder's name, named after what its GGUF says.
    small_model: str = "smollm2-135m-instruct"
    # The 1.5B scores 44 % on MMLU where the 0.5B is near chance; `make test` sets the 0.5B, a faster
    # stand-in for tests that need no quality. One large server runs at a time (the 1.5B takes ~8.6 GB).
    large_model: LargeModel = "qwen2.5-coder-1.5b-instruct"
    kv_cache_gib: int = 1  # VLLM_CPU_KVCACHE_SPACE per model server
    # Empty: bfloat16 where the CPU computes it natively (AVX512-BF16 / AMX), else float32, which
    # measured 3x faster prefill than bfloat16 on an AVX2-only CPU (see README, "Model servers").
    model_dtype: str = ""
    # CPU cores each vLLM server's OpenMP threads bind to (vllm-cpu's VLLM_CPU_OMP_THREADS_BIND). One
    # each on a 2-core machine: the 1.5B on both cores would contend with the small tier, which answers
    # most requests (the 1.5B takes ~3 s an MMLU question as it is).
    small_model_cpus: str = "0"
    large_model_cpus: str = "1"
    # With OPENAI_API_KEY set the tiers are OpenAI's models and no vLLM server is started.
    openai_api_key: str = Field(default="", validation_alias=AliasChoices("OPENAI_API_KEY"))
    startup_timeout_s: float = 300.0
    # Jaeger v2 (scripts/setup-jaeger.sh): every service exports its spans to it; the UI and its HTTP API
    # are on jaeger_ui_port. Off (COSTMESH_STACK_JAEGER=false), spans go only to otlp_endpoint, if set.
    jaeger: bool = True
    jaeger_binary: str = "jaeger"  # looked up on PATH, then in $GOPATH/bin
    jaeger_otlp_port: int = 4317
    jaeger_ui_port: int = 16686
    jaeger_query_grpc_port: int = 16685
    jaeger_max_traces: int = Field(default=20_000, ge=1)  # in memory: the oldest go first
    # A team's own OTLP collector(s), comma-separated: spans go there as well as to the stack's Jaeger.
    otlp_endpoint: str = ""
    # Debian's Prometheus, scraping every service and loading deploy/prometheus/rules.yml.
    prometheus: bool = True
    prometheus_binary: str = "prometheus"
    prometheus_port: int = 9090
    prometheus_scrape_interval: str = "5s"  # Prometheus duration; deploy/prometheus/prometheus.yml has 15s
    prometheus_retention: str = "2d"

    def traces_endpoint(self) -> str:
        """Where the services export spans: the stack's Jaeger (when it runs) and otlp_endpoint."""
        jaeger = [f"http://127.0.0.1:{self.jaeger_otlp_port}"] if self.jaeger else []
        return ",".join(jaeger + [e.strip() for e in self.otlp_endpoint.split(",") if e.strip()])

    def service_metrics_port(self, service: str) -> int:
        """Where a service serves /metrics: base + (its gRPC port - the orchestrator's); the gateway, which
        has no gRPC port, after the batch service's."""
        if service == "gateway":
            return self.metrics_base_port + self.batch_port - self.orchestrator_port + 1
        port: int = getattr(self, f"{service}_port")
        return self.metrics_base_port + port - self.orchestrator_port

    def jaeger_trace_url(self, trace_id: str) -> str:
        return f"http://127.0.0.1:{self.jaeger_ui_port}/trace/{trace_id}"

    # The stack's secrets, generated on first use (launcher/secrets.py): every tool reads them from here.
    def mesh_token(self) -> str:
        """What callers of the stage services send (x-costmesh-mesh-token)."""
        return secrets.secret(self.data_dir, secrets.MESH_TOKEN)

    def redis_password(self) -> str:
        return secrets.secret(self.data_dir, secrets.REDIS_PASSWORD)

    def redis_url(self, db: int = 0) -> str:
        """The stack's Redis, password included: the one way anything here connects to it."""
        return f"redis://:{self.redis_password()}@127.0.0.1:{self.redis_port}/{db}"

    def weaviate_api_key(self) -> str:
        return (
            self.external_weaviate_api_key
            if self.weaviate_url
            else secrets.secret(self.data_dir, secrets.WEAVIATE_API_KEY)
        )

    def model_url(self, tier: str) -> str:
        """The OpenAI-compatible base URL of a tier's local vLLM server."""
        port = self.small_model_port if tier == "small" else self.large_model_port
        return f"http://127.0.0.1:{port}/v1"

    def served_model(self, tier: str) -> str:
        return self.small_model if tier == "small" else self.large_model

    def endpoints(self) -> dict[str, tuple[str, str]]:
        """tier -> (base URL, served model) of the local vLLM servers: what offline tools call directly."""
        return {tier: (self.model_url(tier), self.served_model(tier)) for tier in ("small", "large")}
