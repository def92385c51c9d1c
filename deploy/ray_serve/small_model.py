"""The self-hosted small model as a Ray Serve deployment, behind an OpenAI-compatible HTTP ingress.

This is the path for teams that outgrow one machine: Ray Serve places replicas across a cluster and adds or
removes them with load (the autoscaling settings below). It runs in the model-server environment
(.venv-models, Python with torch + transformers + ray[serve]), not in costmesh's own, and the inference
service reaches it like any OpenAI-compatible server (backend kind `ray-serve`).

Each replica runs the model with Hugging Face transformers on CPU, one request at a time; concurrency comes
from replicas. On GPUs, Ray Serve's own LLM module (`ray.serve.llm`, vLLM inside each replica) is the
production choice; the ingress contract is the same, so costmesh does not change.

    python deploy/ray_serve/small_model.py --model-dir ~/.cache/costmesh/models/smollm2-135m-instruct \
        --served-model-name smollm2-135m-instruct --port 8103 --min-replicas 1 --max-replicas 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

# Ray's processes inherit this environment. A busy small machine starts a worker process in well over
# Ray Serve's default 5 s proxy readiness check, and the proxy is then killed and restarted forever.
os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "30")
# Ray binds its GCS, raylet, object manager, workers and agents to the node IP, which it resolves from the
# default route even when told 127.0.0.1 (ray._private.services.resolve_ip_for_localhost); with this off,
# the node IP is loopback (get_node_ip_address), so nothing of this single-node Ray listens outside the
# machine. The flag is named for Windows and macOS, where it is off by default: a `ray start` of a worker
# node joining this one is refused, and this script starts its own one-node instance anyway.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import psutil
import ray
import torch
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from ray import serve
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

api = FastAPI()
log = logging.getLogger(__name__)


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat-completions request that costmesh sends."""

    model: str = ""
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool = False
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def limit(self) -> int:
        return self.max_completion_tokens or self.max_tokens or 256


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    cuts = [text.index(s) for s in stops if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},  # transformers keeps no cache across requests
    }


def _replica_grpc_on_loopback() -> None:
    """Binds this replica's inter-deployment gRPC server to loopback instead of every interface.

    Ray Serve hard-codes "[::]:0" for it (ray/serve/_private/replica.py, `_on_initialized`, Ray 2.60) and no
    setting changes that; it requires Ray's auth token, but nothing of this one-node stack should listen
    outside the machine. The replica binds it after constructing the deployment, so the constructor can
    redirect the bind. Peers reach it at the node IP, which is loopback here (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
    above). A Ray without that hook is left as it is, with a warning; the e2e test then reports the listener.
    """
    from ray.serve._private import replica  # noqa: PLC0415 - Ray's internals, only inside a replica

    bind = getattr(replica, "add_port_to_grpc_server", None)
    if bind is None or getattr(bind, "costmesh_loopback", False):
        if bind is None:
            log.warning("ray serve: cannot bind the replica's gRPC server to loopback in this Ray version")
        return

    def on_loopback(server: Any, address: str) -> int:
        return int(bind(server, address.replace("[::]:", "127.0.0.1:", 1)))

    on_loopback.costmesh_loopback = True  # type: ignore[attr-defined]  # marks the wrapper: wrap once
    replica.add_port_to_grpc_server = on_loopback


@serve.deployment
@serve.ingress(api)
class SmallModel:
    def __init__(self, model_dir: str, served_name: str, threads: int) -> None:
        _replica_grpc_on_loopback()
        torch.set_num_threads(threads)
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self._model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self._name = served_name
        # One generation at a time per replica: two would only share the same cores. Load beyond that queues
        # and makes the autoscaler add replicas.
        self._busy = asyncio.Lock()

    def _inputs(self, request: ChatRequest) -> dict[str, torch.Tensor]:
        messages = [m.model_dump() for m in request.messages]
        encoded = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def _generate_args(self, request: ChatRequest) -> dict[str, Any]:
        if request.seed is not None:
            torch.manual_seed(request.seed)
        sampled = request.temperature > 0
        args: dict[str, Any] = {"max_new_tokens": request.limit(), "do_sample": sampled}
        if sampled:
            args.update(temperature=request.temperature, top_p=request.top_p)
        else:
            args.update(temperature=None, top_p=None, top_k=None)
        if request.stops():
            args.update(stop_strings=request.stops(), tokenizer=self._tokenizer)
        return args

    def _run(self, request: ChatRequest) -> dict[str, Any]:
        inputs = self._inputs(request)
        prompt_len = inputs["input_ids"].shape[1]
        with torch.inference_mode():
            out = self._model.generate(
                **inputs,
                **self._generate_args(request),
                output_scores=request.logprobs,
                return_dict_in_generate=True,
            )
        new = out.sequences[0, prompt_len:]
        text, stopped = _cut_at_stop(self._tokenizer.decode(new, skip_special_tokens=True), request.stops())
        ended = stopped or (len(new) > 0 and int(new[-1]) == self._tokenizer.eos_token_id)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop" if ended or len(new) < request.limit() else "length",
            "logprobs": None,
        }
        if request.logprobs:
            scores = self._model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0]
            choice["logprobs"] = {
                "content": [
                    {"token": self._tokenizer.decode([int(t)]), "logprob": float(lp), "bytes": None, "top_logprobs": []}
                    for t, lp in zip(new, scores, strict=True)
                ]
            }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._name,
            "choices": [choice],
            "usage": _usage(prompt_len, len(new)),
        }

    def _stream_tokens(self, request: ChatRequest) -> tuple[Iterator[str], int, threading.Thread]:
        inputs = self._inputs(request)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        worker = threading.Thread(
            target=self._model.generate,
            kwargs={**inputs, **self._generate_args(request), "streamer": streamer},
            daemon=True,
        )
        worker.start()
        return streamer, int(inputs["input_ids"].shape[1]), worker

    async def _events(self, request: ChatRequest) -> AsyncIterator[str]:
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "model": self._name}

        def event(**fields: Any) -> str:
            return f"data: {json.dumps({**base, 'created': int(time.time()), **fields})}\n\n"

        def chunk(delta: dict[str, str], finish: str | None = None) -> str:
            return event(choices=[{"index": 0, "delta": delta, "finish_reason": finish}])

        async with self._busy:
            pieces, prompt_len, worker = await asyncio.to_thread(self._stream_tokens, request)
            yield chunk({"role": "assistant", "content": ""})
            text, stopped = "", False
            while not stopped:
                piece = await asyncio.to_thread(next, pieces, None)
                if piece is None:
                    break
                kept, stopped = _cut_at_stop(text + piece, request.stops())
                if kept[len(text) :]:
                    yield chunk({"content": kept[len(text) :]})
                text = kept
            await asyncio.to_thread(worker.join)
            completion = len(self._tokenizer(text)["input_ids"])
            yield chunk({}, "stop" if stopped or completion < request.limit() else "length")
            if (request.stream_options or {}).get("include_usage"):
                yield event(choices=[], usage=_usage(prompt_len, completion))
            yield "data: [DONE]\n\n"

    @api.get("/health")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self._name, "object": "model", "owned_by": "costmesh"}]}

    @api.post("/v1/chat/completions", response_model=None)
    async def chat(self, request: ChatRequest) -> dict[str, Any] | StreamingResponse:
        if request.model and request.model != self._name:
            raise HTTPException(404, f"model {request.model!r} is not served here; this replica serves {self._name!r}")
        if request.stream:
            return StreamingResponse(self._events(request), media_type="text/event-stream")
        async with self._busy:
            return await asyncio.to_thread(self._run, request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--served-model-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--num-cpus", type=float, default=2, help="CPUs Ray may schedule on this node")
    parser.add_argument("--replica-cpus", type=float, default=1, help="CPUs reserved per replica")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per replica")
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--max-replicas", type=int, default=2)
    parser.add_argument("--target-ongoing-requests", type=float, default=1.0, help="autoscaling target per replica")
    args = parser.parse_args()

    ray.init(
        num_cpus=args.num_cpus,
        _node_ip_address="127.0.0.1",  # loopback, given the flag above (ray resolves it to the node IP)
        include_dashboard=False,  # no dashboard server (8265)
        object_store_memory=100 * 1024**2,  # nothing large goes through the object store here
        log_to_driver=False,
    )
    serve.start(http_options={"host": args.host, "port": args.port})
    deployment = SmallModel.options(
        autoscaling_config={
            "min_replicas": args.min_replicas,
            "max_replicas": args.max_replicas,
            "target_ongoing_requests": args.target_ongoing_requests,
        },
        max_ongoing_requests=8,
        ray_actor_options={"num_cpus": args.replica_cpus},
    )
    serve.run(deployment.bind(args.model_dir, args.served_model_name, args.threads), name="small", route_prefix="/")

    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    log.warning("ray serve: %s on http://%s:%d/v1", args.served_model_name, args.host, args.port)
    ray_processes: list[psutil.Process] = []
    while not stopping:
        # Replicas are children of the raylet in process groups of their own, so the launcher's SIGTERM to
        # this process group never reaches them, and once the raylet is gone they are orphans holding the
        # port. Remember them (autoscaling changes the set) to stop them ourselves.
        ray_processes = psutil.Process().children(recursive=True)
        time.sleep(1)
    _stop(ray_processes)


def _stop(processes: list[psutil.Process]) -> None:
    """Ray's own shutdown when the raylet still answers, then SIGTERM / SIGKILL to whatever is left."""
    quitter = threading.Thread(target=ray.shutdown, daemon=True)
    quitter.start()
    quitter.join(timeout=10)
    alive = [p for p in processes if p.is_running()]
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


if __name__ == "__main__":
    main()
