"""The Helm chart (deploy/helm/costmesh) and the compose file (deploy/compose/compose.yaml), checked offline.

`helm lint` and `helm template` with each values set, then tools/manifestcheck decodes every rendered
document strictly into the Kubernetes and KubeRay types: a misspelt field fails. On top, the wiring: every
service of launcher/components.py has a Deployment, an HPA and a Service; every COSTMESH_* variable a pod
gets is a setting its service knows (the services' settings classes parse the rendered env); addresses
point at Services of the release; credentials come from the Secret. helm and manifestcheck come from
scripts/setup-helm.sh: without them these tests fail, they never skip. YAML is read through
`manifestcheck -json` (strict: a duplicate key fails), so the tests need no YAML library of their own.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic_settings import BaseSettings

from launcher.components import SERVICES

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "costmesh"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
RELEASE = "prod"
NAMESPACE = "costmesh"
FULLNAME = f"{RELEASE}-costmesh"
# The values sets rendered: the defaults, and each file under the chart's ci/ folder.
VALUE_SETS = ("default", "external", "in-cluster", "openai")
SECRET_HINTS = ("TOKEN", "PASSWORD", "API_KEY", "REDIS_URL", "ALLOWED_KEYS", "REDISCLI_AUTH")

Doc = dict[str, Any]


def tool(name: str) -> str:
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    found = shutil.which(name) or next(
        (str(p) for p in [Path(gopath) / "bin" / name] if p.exists()),
        None,
    )
    if found is None:
        pytest.fail(f"{name} not found on PATH or in $GOPATH/bin: run scripts/setup-helm.sh", pytrace=False)
    return found


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def values_args(value_set: str) -> list[str]:
    return [] if value_set == "default" else ["-f", str(CHART / "ci" / f"{value_set}-values.yaml")]


def template(*extra: str, chart: Path = CHART) -> subprocess.CompletedProcess[str]:
    return run(tool("helm"), "template", RELEASE, str(chart), "--namespace", NAMESPACE, *extra)


@functools.cache
def rendered(value_set: str) -> str:
    result = template(*values_args(value_set))
    assert result.returncode == 0, f"helm template ({value_set}) failed:\n{result.stderr}"
    return result.stdout


def documents(text: str) -> list[Doc]:
    """The YAML documents of `text` (empty ones dropped), as manifestcheck reads them."""
    result = run(tool("manifestcheck"), "-json", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    docs: list[Doc] = json.loads(result.stdout)
    return docs


def manifestcheck(text: str) -> subprocess.CompletedProcess[str]:
    return run(tool("manifestcheck"), "-", stdin=text)


def by_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def settings_class(service: str) -> type[BaseSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    cls: type[BaseSettings] = getattr(module, f"{service.capitalize()}Settings")
    return cls


def containers(doc: Doc) -> list[Doc]:
    spec = doc["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def secret_data(docs: list[Doc]) -> dict[str, str]:
    secret = by_kind(docs, "Secret")[f"{FULLNAME}-secrets"]
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No COSTMESH_* variable of this process reaches a settings class built from rendered env."""
    for key in list(os.environ):
        if key.startswith("COSTMESH_") or key == "OPENAI_API_KEY":
            monkeypatch.delenv(key)
    yield monkeypatch


# --- helm lint, template and the schema check of every document ---


def test_helm_is_v4() -> None:
    result = run(tool("helm"), "version", "--short")
    assert result.returncode == 0 and result.stdout.startswith("v4."), result.stdout + result.stderr


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_helm_lint(value_set: str) -> None:
    result = run(tool("helm"), "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values_args(value_set))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_document_passes_the_schema_check(value_set: str) -> None:
    text = rendered(value_set)
    count = len(documents(text))
    result = manifestcheck(text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} document(s) valid" in result.stdout


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_service_has_a_deployment_an_hpa_and_a_service(value_set: str) -> None:
    docs = documents(rendered(value_set))
    deployments, hpas, services = (by_kind(docs, kind) for kind in ("Deployment", "HorizontalPodAutoscaler", "Service"))
    for name in SERVICES:
        object_name = f"{FULLNAME}-{name}"
        assert object_name in deployments, f"no Deployment for {name}"
        assert object_name in services, f"no Service for {name}"
        hpa = hpas.get(object_name)
        assert hpa is not None, f"no HPA for {name}"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": object_name}
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert deployments[object_name]["spec"]["template"]["spec"]["containers"][0]["command"] == [
            "python",
            "-m",
            f"services.{name}",
        ]
    assert set(deployments) == {f"{FULLNAME}-{name}" for name in SERVICES}  # nothing else runs as a Deployment
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert {f"{FULLNAME}-{name}" for name in SERVICES} <= set(pdbs)  # two replicas at least by default


def test_gateway_and_orchestrator_are_exposed_the_rest_stay_inside() -> None:
    services = by_kind(documents(rendered("default")), "Service")
    types = {name: services[f"{FULLNAME}-{name}"]["spec"].get("type", "ClusterIP") for name in SERVICES}
    assert types.pop("gateway") == "LoadBalancer"
    assert types.pop("orchestrator") == "LoadBalancer"
    assert set(types.values()) == {"ClusterIP"}


# --- the settings each pod gets ---


def pod_env(container: Doc, secrets: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet would set it, Secret values from `secrets`."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = str(var.get("value", ""))
        elif "secretKeyRef" in source:
            env[var["name"]] = secrets[source["secretKeyRef"]["key"]]
        else:
            assert source == {"fieldRef": {"fieldPath": "metadata.name"}}, var
            env[var["name"]] = "pod-0"
    return env


EXTERNAL_SECRETS = {
    "mesh-token": "t",
    "redis-url": "rediss://:pw@redis.data.svc.cluster.local:6380/0",
    "weaviate-api-key": "k",
    "openai-api-key": "sk-test",
}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_each_service_parses_the_env_it_is_given(value_set: str, clean_env: pytest.MonkeyPatch) -> None:
    """The service's own settings class reads the rendered env: an unknown COSTMESH_<SERVICE>_ name (its
    unknown-key check) or a bad value fails here as it would at the pod's start."""
    docs = documents(rendered(value_set))
    secrets = secret_data(docs) if value_set in ("default", "in-cluster") else EXTERNAL_SECRETS
    deployments = by_kind(docs, "Deployment")
    for name in SERVICES:
        (container,) = containers(deployments[f"{FULLNAME}-{name}"])
        env = pod_env(container, secrets)
        for key in [k for k in os.environ if k.startswith("COSTMESH_")]:
            clean_env.delenv(key)
        for key, value in env.items():
            clean_env.setenv(key, value)
        settings = settings_class(name)()
        assert getattr(settings, "host") == "0.0.0.0"  # noqa: B009 - every settings class has it
        assert getattr(settings, "port") == container["ports"][0]["containerPort"]  # noqa: B009


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_credentials_come_from_the_secret(value_set: str) -> None:
    docs = documents(rendered(value_set))
    for kind in ("Deployment", "StatefulSet"):
        for doc in by_kind(docs, kind).values():
            for container in containers(doc):
                for var in container.get("env", []):
                    if not any(hint in var["name"] for hint in SECRET_HINTS):
                        continue
                    if var["name"] == "COSTMESH_MESH_TOKEN" and doc["metadata"]["name"].endswith("-gateway"):
                        assert var == {"name": "COSTMESH_MESH_TOKEN", "value": ""}  # acts with callers' keys
                        continue
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{doc['metadata']['name']}: {var}"
    if value_set in ("external", "openai"):
        assert "Secret" not in {doc["kind"] for doc in docs}  # the user's Secret, named in values


def service_ports(docs: list[Doc]) -> dict[str, set[int]]:
    return {name: {p["port"] for p in doc["spec"]["ports"]} for name, doc in by_kind(docs, "Service").items()}


@pytest.mark.parametrize("value_set", ["default", "in-cluster"])
def test_addresses_point_at_services_of_the_release(value_set: str) -> None:
    docs = documents(rendered(value_set))
    ports = service_ports(docs)
    secrets = secret_data(docs)
    redis = urlsplit(secrets["redis-url"])
    assert redis.hostname == f"{FULLNAME}-redis" and redis.port in ports[f"{FULLNAME}-redis"]
    assert redis.password == secrets["redis-password"]
    seen = set()
    for doc in by_kind(docs, "Deployment").values():
        for var in containers(doc)[0].get("env", []):
            value = str(var.get("value", ""))
            if var["name"].endswith("_ADDR"):
                host, _, port = value.partition(":")
                assert int(port) in ports.get(host, set()), f"{var['name']}={value}: no such Service port"
                seen.add(var["name"])
            elif var["name"] == "COSTMESH_CACHE_WEAVIATE_URL":
                url = urlsplit(value)
                assert url.hostname in ports and url.port in ports[url.hostname], value
            elif var["name"] == "COSTMESH_BATCH_KAFKA_BOOTSTRAP":
                host, _, port = value.partition(":")
                assert int(port) in ports[host], value
            elif var["name"] in ("COSTMESH_INFERENCE_SMALL_BACKENDS", "COSTMESH_INFERENCE_LARGE_BACKENDS"):
                (ray_service,) = by_kind(docs, "RayService")  # KubeRay names the Serve Service <name>-serve-svc
                tier = "small" if "SMALL" in var["name"] else "large"
                assert value == f"ray-serve=http://{ray_service}-serve-svc:8000/{tier}/v1"
    assert {"COSTMESH_GATEWAY_ORCHESTRATOR_ADDR", "COSTMESH_BATCH_ORCHESTRATOR_ADDR"} <= seen
    assert {f"COSTMESH_ORCHESTRATOR_{other.upper()}_ADDR" for other in SERVICES[:5]} <= seen


def env_of(docs: list[Doc], service: str) -> dict[str, Doc]:
    (container,) = containers(by_kind(docs, "Deployment")[f"{FULLNAME}-{service}"])
    return {var["name"]: var for var in container["env"]}


def test_inference_replicas_share_lane_limits_in_redis() -> None:
    for value_set in VALUE_SETS:
        var = env_of(documents(rendered(value_set)), "inference")["COSTMESH_INFERENCE_LIMITS_REDIS_URL"]
        assert var["valueFrom"]["secretKeyRef"]["key"] == "redis-url", value_set


def test_batch_queue_follows_kafka() -> None:
    default = env_of(documents(rendered("default")), "batch")
    assert default["COSTMESH_BATCH_QUEUE"]["value"] == "redis"
    assert "COSTMESH_BATCH_KAFKA_BOOTSTRAP" not in default
    in_cluster = documents(rendered("in-cluster"))
    assert env_of(in_cluster, "batch")["COSTMESH_BATCH_QUEUE"]["value"] == "kafka"
    assert f"{FULLNAME}-kafka" in by_kind(in_cluster, "StatefulSet")
    external = documents(rendered("external"))
    batch = env_of(external, "batch")
    assert batch["COSTMESH_BATCH_QUEUE"]["value"] == "kafka"
    assert batch["COSTMESH_BATCH_KAFKA_BOOTSTRAP"]["value"].startswith("kafka-0.kafka.data.svc.cluster.local:9092,")
    assert by_kind(external, "StatefulSet") == {}  # no Redis, Weaviate or Kafka of the chart's own
    cache = env_of(external, "cache")
    assert cache["COSTMESH_CACHE_WEAVIATE_URL"]["value"] == "https://weaviate.data.svc.cluster.local"


def test_weaviate_replication() -> None:
    docs = documents(rendered("in-cluster"))
    weaviate = by_kind(docs, "StatefulSet")[f"{FULLNAME}-weaviate"]
    env = {var["name"]: var.get("value") for var in containers(weaviate)[0]["env"]}
    assert weaviate["spec"]["replicas"] == 3
    assert env["REPLICATION_MINIMUM_FACTOR"] == "2"
    assert env["RAFT_BOOTSTRAP_EXPECT"] == "3"
    assert env["RAFT_JOIN"] == ",".join(f"{FULLNAME}-weaviate-{i}" for i in range(3))
    assert f"{FULLNAME}-weaviate" in by_kind(docs, "PodDisruptionBudget")
    too_many = template("--set", "weaviate.replicas=2", "--set", "weaviate.replicationFactor=3")
    assert too_many.returncode != 0 and "replicationFactor" in too_many.stderr


def test_rayservice_serves_each_tier_from_the_models_volume() -> None:
    docs = documents(rendered("default"))
    (ray,) = by_kind(docs, "RayService").values()
    assert ray["apiVersion"] == "ray.io/v1"
    (serve,) = documents(ray["spec"]["serveConfigV2"])
    apps = {app["name"]: app for app in serve["applications"]}
    assert set(apps) == {"small", "large"}
    for tier, app in apps.items():
        assert app["route_prefix"] == f"/{tier}"
        (llm,) = app["args"]["llm_configs"]
        assert llm["model_loading_config"]["model_source"].startswith("/models/")  # nothing downloaded
    assert "RayService" not in {doc["kind"] for doc in documents(rendered("openai"))}


# --- broken templates and values fail ---


def test_the_validator_rejects_a_misspelt_field_in_a_rendered_document() -> None:
    text = rendered("default")
    broken = text.replace("containerPort:", "containerPrt:", 1)
    assert broken != text
    result = manifestcheck(broken)
    assert result.returncode == 1
    assert 'unknown field "spec.template.spec.containers[0].ports[0].containerPrt"' in result.stdout


def test_the_validator_rejects_a_misspelt_kuberay_field() -> None:
    text = rendered("default")
    broken = text.replace("enableInTreeAutoscaling:", "enableInTreeAutoscale:", 1)
    assert broken != text
    result = manifestcheck(broken)
    assert result.returncode == 1
    assert 'unknown field "spec.rayClusterConfig.enableInTreeAutoscale"' in result.stdout


def test_a_broken_template_fails_the_validator(tmp_path: Path) -> None:
    chart = tmp_path / "costmesh"
    shutil.copytree(CHART, chart)
    services = chart / "templates" / "services.yaml"
    original = services.read_text()
    services.write_text(original.replace("readinessProbe:", "readinesProbe:"))
    result = template(chart=chart)
    assert result.returncode == 0, result.stderr  # helm itself does not know the fields
    checked = manifestcheck(result.stdout)
    assert checked.returncode == 1
    assert checked.stdout.count('unknown field "spec.template.spec.containers[0].readinesProbe"') == len(SERVICES)


@pytest.mark.parametrize(
    ("setting", "message", "by_schema"),
    [
        ("services.cache.replica=3", "replica", True),  # misspelt key: values.schema.json
        ("redis.enable=false", "enable", True),
        ("services.router.env.COSTMESH_ROUTR_THRESHOLD=0.6", "COSTMESH_ROUTR_THRESHOLD", True),  # another prefix
        ("kafka.externalBootstrapServers=kafka", "externalBootstrapServers", True),  # no port
        ("redis.enabled=false", "secrets.existingSecret", False),  # an external Redis's URL only from a Secret
        ("compressor.method=llmlingua", "llmlinguaUrl", False),
    ],
)
def test_bad_values_fail_to_render(setting: str, message: str, by_schema: bool) -> None:
    result = template("--set", setting)
    assert result.returncode != 0, f"--set {setting} rendered"
    assert message in result.stderr, result.stderr
    if by_schema:  # `helm lint` checks the schema too; it only logs a template's `fail` and `required`
        linted = run(tool("helm"), "lint", "--strict", str(CHART), "--set", setting)
        assert linted.returncode != 0 and message in linted.stdout + linted.stderr


# --- compose ---


def compose() -> Doc:
    (loaded,) = documents(COMPOSE.read_text())
    return loaded


def test_compose_names_every_service() -> None:
    services = compose()["services"]
    assert set(SERVICES) <= set(services)
    assert {"redis", "weaviate", "kafka"} <= set(services)
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert "healthcheck" in service, name
        assert "/models:ro" in service["volumes"][0]
        for dependency in service["depends_on"]:
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_compose_env_is_known_to_each_service_and_addresses_resolve() -> None:
    services = compose()["services"]
    for name in SERVICES:
        prefix = f"COSTMESH_{name.upper()}_"
        known = {field.upper() for field in settings_class(name).model_fields}
        for key, value in services[name]["environment"].items():
            if key.startswith(prefix):
                assert key[len(prefix) :] in known, f"{name}: {key} is not a setting of the service"
            if key.endswith("_ADDR"):
                host, _, port = str(value).partition(":")
                assert host in services and port.isdigit(), f"{name}: {key}={value}"
            if any(hint in key for hint in SECRET_HINTS) and value != "":
                assert "${" in str(value), f"{name}: {key} holds a literal secret"
        assert services[name]["environment"][f"{prefix}HOST"] == "0.0.0.0"


def test_compose_publishes_only_the_front_doors_on_loopback() -> None:
    services = compose()["services"]
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert published == {"gateway": ["127.0.0.1:8080:8080"], "orchestrator": ["127.0.0.1:50050:50050"]}


def test_dockerfile_runs_as_non_root_and_downloads_no_weights() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)
    assert "HF_HUB_OFFLINE=1" in dockerfile
    assert not re.search(r"huggingface-cli|snapshot_download|hf_hub_download", dockerfile)
