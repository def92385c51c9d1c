"""The distillation task registry: which tasks exist, their teacher and student, and their state. No grpc.

A task is a high-volume, stable job (intent classification, slot filling, extraction) whose large-tier
answers can be learnt by a small model. Its life, moved on by the `costmesh distill` commands:

  collecting -> training -> shadow -> serving      (and back to collecting when retraining starts)

Redis layout (the stack's Redis; the CLI writes, the router and the orchestrator read a snapshot):

  costmesh:tasks                   hash  name -> the task's JSON record
  costmesh:task-shadow:<name>      hash  n, agree: live comparisons of the student with the teacher
  costmesh:distill:<name>          stream  the (request, teacher answer) pairs the orchestrator recorded
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import redis.asyncio as redis

from costmesh.v1 import common_pb2, router_pb2
from services.common.contracts import TIERS_BY_NAME, to_messages
from services.common.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

STATES = ("collecting", "training", "shadow", "serving")
# Training may start from any state (retraining keeps a serving student serving until a new one passes
# the gate and its shadow period); a student is served only after both.
_NEXT = {
    "collecting": {"training"},
    "training": {"shadow", "collecting", "training"},
    "shadow": {"serving", "collecting", "training"},
    "serving": {"collecting", "training"},
}
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
REGISTRY_KEY = "costmesh:tasks"
SHADOW_PREFIX = "costmesh:task-shadow:"
PAIRS_PREFIX = "costmesh:distill:"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"task {name!r} is invalid: lowercase letters, digits, '-' and '_', at most 63")
    return name


@dataclass(frozen=True)
class Task:
    name: str
    instruction: str  # the student's system prompt: short, since the student has learnt the task
    teacher_prompt: str = ""  # the system prompt requests carry to the teacher (labelling sends it too)
    labels: tuple[str, ...] = ()  # the allowed answers of a classification; empty: free-form
    teacher_tier: str = "large"
    state: str = "collecting"
    collect: bool = False  # opt-in: the orchestrator records this task's large-tier answers
    student: str = ""  # the current student's adapter name (shadow, serving)
    adapter_path: str = ""
    serving_student: str = ""  # the promoted one, kept while a newer student is in shadow
    serving_adapter_path: str = ""
    centroid: tuple[float, ...] = ()  # mean of the training inputs' unit embeddings
    train_distance_p50: float = 0.0
    train_distance_p95: float = 0.0
    evaluation: Mapping[str, Any] = field(default_factory=dict)  # the last `distill eval` report's figures
    labelling_usd: float = 0.0  # what the teacher's labels of the current training set cost (batch prices)
    train_s: float = 0.0  # the current student's training time
    history: tuple[str, ...] = ()  # "<unix s> <state>" per transition
    updated_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Task:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for name in ("labels", "centroid", "history"):
            known[name] = tuple(known.get(name, ()))
        return cls(**known)

    def moved_to(self, state: str) -> Task:
        if state not in STATES:
            raise InvalidInput(f"unknown task state {state!r}; known: {', '.join(STATES)}")
        if state != self.state and state not in _NEXT[self.state]:
            raise InvalidInput(f"task {self.name!r} cannot go from {self.state} to {state}")
        now = time.time()
        return replace(self, state=state, history=(*self.history, f"{now:.0f} {state}"), updated_s=now)

    def served_student(self) -> tuple[str, str]:
        """(adapter name, path) of the student that answers the task's requests; ("", "") when none does."""
        if self.state == "serving":
            return self.student, self.adapter_path
        return self.serving_student, self.serving_adapter_path


def student_messages(instruction: str, user_text: str) -> list[dict[str, str]]:
    """What a student sees: its task instruction and the user's message, nothing else. Training data and
    serving both build it here, so the two cannot drift apart."""
    return [{"role": "system", "content": instruction}, {"role": "user", "content": user_text}]


def student_prompt(instruction: str, user_text: str) -> list[common_pb2.Message]:
    """student_messages as the mesh sends them."""
    return to_messages((m["role"], m["content"]) for m in student_messages(instruction, user_text))


def normalise_answer(text: str) -> str:
    """The form two answers are compared in (agreement, gold accuracy): case, spaces and end punctuation."""
    return " ".join(text.strip().strip(".").lower().split())


class TaskStore:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    async def all(self) -> list[Task]:
        raw = await self._redis.hgetall(REGISTRY_KEY)  # type: ignore[misc]
        return sorted((Task.from_dict(json.loads(v)) for v in raw.values()), key=lambda t: t.name)

    async def get(self, name: str) -> Task:
        raw = await self._redis.hget(REGISTRY_KEY, check_name(name))  # type: ignore[misc]
        if raw is None:
            raise NotFound(f"no task {name!r}; `costmesh tasks list` shows them")
        return Task.from_dict(json.loads(raw))

    async def put(self, task: Task) -> Task:
        check_name(task.name)
        task = replace(task, updated_s=time.time())
        await self._redis.hset(REGISTRY_KEY, task.name, json.dumps(task.as_dict()))  # type: ignore[misc]
        return task

    async def delete(self, name: str) -> bool:
        """Forgets a task (its registry entry, shadow counters and recorded pairs); its files stay."""
        removed = await self._redis.hdel(REGISTRY_KEY, check_name(name))  # type: ignore[misc]
        await self._redis.delete(SHADOW_PREFIX + name, PAIRS_PREFIX + name)
        return bool(removed)

    async def shadow(self, name: str) -> tuple[int, int]:
        raw = await self._redis.hgetall(SHADOW_PREFIX + name)  # type: ignore[misc]
        return int(raw.get(b"n", 0)), int(raw.get(b"agree", 0))

    async def record_shadow(self, name: str, agree: bool) -> None:
        pipe = self._redis.pipeline()
        pipe.hincrby(SHADOW_PREFIX + name, "n", 1)
        pipe.hincrby(SHADOW_PREFIX + name, "agree", int(agree))
        await pipe.execute()

    async def reset_shadow(self, name: str) -> None:
        await self._redis.delete(SHADOW_PREFIX + name)

    async def append_pair(self, name: str, record: Mapping[str, str], maxlen: int) -> None:
        await self._redis.xadd(PAIRS_PREFIX + name, dict(record), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]

    async def pairs(self, name: str, after: str = "0-0", count: int = 10_000) -> list[tuple[str, dict[str, str]]]:
        """Recorded pairs after a stream id, oldest first: (id, record)."""
        rows = await self._redis.xrange(PAIRS_PREFIX + name, min=f"({after}" if after != "0-0" else "-", count=count)
        return [(i.decode(), {k.decode(): v.decode() for k, v in fields.items()}) for i, fields in rows]


@dataclass(frozen=True)
class Match:
    task: Task
    assigned: bool  # by nearest centroid (False: the request named it)
    distance: float  # -1 without an embedding or a centroid


def match_proto(found: Match) -> router_pb2.TaskMatch:
    """A match as the router reports it: the task and what its registry entry says about serving it."""
    task = found.task
    student, path = task.served_student()
    shadow = task.state == "shadow"
    return router_pb2.TaskMatch(
        name=task.name,
        assigned=found.assigned,
        distance=found.distance,
        state=task.state,
        student=student,
        adapter_path=path,
        instruction=task.instruction,
        collect=task.collect,
        teacher_tier=TIERS_BY_NAME.get(task.teacher_tier, common_pb2.TIER_LARGE),
        labels=task.labels,
        shadow_student=task.student if shadow else "",
        shadow_adapter_path=task.adapter_path if shadow else "",
    )


class TaskTable:
    """A snapshot of the registry, refreshed in the background: the hot path reads memory only.

    `match` names a request's task: the one it names, else the nearest centroid when the request is at
    most `assign_margin` times that task's training p95 distance away (so a request is assigned
    only where training inputs lay)."""

    def __init__(self, store: TaskStore | None, assign_margin: float = 1.0) -> None:
        self._store = store
        self._assign_margin = assign_margin
        self._tasks: dict[str, Task] = {}
        self._centroids: tuple[list[str], np.ndarray] = ([], np.zeros((0, 0), dtype=np.float32))
        self._unit: dict[str, np.ndarray] = {}  # task -> its unit centroid, computed once per refresh

    @property
    def tasks(self) -> dict[str, Task]:
        return dict(self._tasks)

    def __contains__(self, name: str) -> bool:
        return name in self._tasks

    def load(self, tasks: list[Task]) -> None:
        self._tasks = {t.name: t for t in tasks}
        self._unit = {t.name: _unit(np.asarray(t.centroid, dtype=np.float32)) for t in tasks if t.centroid}
        with_centroid = [t for t in tasks if t.centroid]
        dims = {len(t.centroid) for t in with_centroid}
        if len(dims) > 1:
            log.warning("task centroids of different sizes %s; nearest-centroid assignment off", sorted(dims))
            with_centroid = []
        if not with_centroid:
            self._centroids = ([], np.zeros((0, 0), dtype=np.float32))
            return
        self._centroids = ([t.name for t in with_centroid], np.stack([self._unit[t.name] for t in with_centroid]))

    async def refresh(self) -> None:
        if self._store is not None:
            self.load(await self._store.all())

    async def refresh_logged(self) -> None:
        """A refresh that never raises: the registry is optional on the hot path, so a failed read keeps
        the last snapshot (empty until Redis first answers). Services run it as a periodic job."""
        try:
            await self.refresh()
        except Exception as exc:
            log.warning("task registry refresh failed (kept the last snapshot): %s", exc)

    def distance(self, task: Task, vector: np.ndarray) -> float:
        """Cosine distance of a vector (an embedding, a moving centroid) to the task's training centroid;
        -1 when the task has none or the sizes differ."""
        centroid = self._unit.get(task.name)
        if centroid is None or vector.size != centroid.size:
            return -1.0
        return 1.0 - float(_unit(vector) @ centroid)

    def match(self, named: str, embedding: np.ndarray) -> Match | None:
        """The request's task, or None (a named task this snapshot does not have is None too: the
        orchestrator refuses unknown names; the router only serves what it knows)."""
        if named:
            task = self._tasks.get(named)
            return None if task is None else Match(task, assigned=False, distance=self.distance(task, embedding))
        names, matrix = self._centroids
        if not names or embedding.size != matrix.shape[1]:
            return None
        distances = 1.0 - matrix @ _unit(embedding)
        best = int(np.argmin(distances))
        task = self._tasks[names[best]]
        if distances[best] > task.train_distance_p95 * self._assign_margin:
            return None
        return Match(task, assigned=True, distance=float(distances[best]))


def _unit(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector / max(float(np.linalg.norm(vector)), 1e-12), dtype=np.float32)
