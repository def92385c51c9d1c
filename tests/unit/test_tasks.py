"""The task registry's record, its state machine, nearest-centroid assignment and the router's drift metrics."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from services.common.errors import InvalidInput
from services.common.tasks import Task, TaskTable, check_name, normalise_answer
from services.router.tasks import TaskMetrics, TaskRouting


def unit(*values: float) -> list[float]:
    v = np.asarray(values, dtype=np.float32)
    return (v / np.linalg.norm(v)).tolist()


BANK = Task(
    name="bank",
    instruction="Classify.",
    centroid=tuple(unit(1, 0, 0)),
    train_distance_p50=0.05,
    train_distance_p95=0.2,
    state="serving",
    student="bank-v1",
    adapter_path="/a",
)
TRAVEL = Task(name="travel", instruction="Route.", centroid=tuple(unit(0, 1, 0)), train_distance_p95=0.2)


def table() -> TaskTable:
    t = TaskTable(None)
    t.load([BANK, TRAVEL])
    return t


def test_the_life_of_a_task_follows_its_states() -> None:
    task = Task(name="bank", instruction="x").moved_to("training").moved_to("shadow").moved_to("serving")
    assert [h.split()[1] for h in task.history] == ["training", "shadow", "serving"]
    with pytest.raises(InvalidInput, match="cannot go from collecting to serving"):
        Task(name="bank", instruction="x").moved_to("serving")  # no student is served without gate and shadow
    with pytest.raises(InvalidInput, match="unknown task state"):
        task.moved_to("done")


def test_retraining_keeps_the_promoted_student_serving() -> None:
    served = Task(
        name="bank",
        instruction="x",
        state="training",
        student="bank-v2",
        adapter_path="/v2",
        serving_student="bank-v1",
        serving_adapter_path="/v1",
    )
    assert served.served_student() == ("bank-v1", "/v1")
    assert Task(
        name="bank", instruction="x", state="serving", student="bank-v2", adapter_path="/v2"
    ).served_student() == ("bank-v2", "/v2")


def test_a_record_round_trips_through_json() -> None:
    assert Task.from_dict(BANK.as_dict() | {"field_from_a_newer_version": 1}) == BANK


@pytest.mark.parametrize("name", ["", "Bank", "bank\n", "a" * 64, "../x"])
def test_bad_task_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_name(name)


def test_named_tasks_and_nearest_centroid_assignment() -> None:
    t = table()
    named = t.match("bank", np.asarray(unit(0, 1, 0)))
    assert named is not None and not named.assigned and named.distance == pytest.approx(1.0)
    near = t.match("", np.asarray(unit(1, 0.2, 0)))
    assert near is not None and near.task.name == "bank" and near.assigned and near.distance < 0.2
    assert t.match("", np.asarray(unit(0, 0, 1))) is None  # beyond every task's training p95
    assert t.match("unknown", np.asarray(unit(1, 0, 0))) is None


def test_answers_compare_without_case_space_or_end_punctuation() -> None:
    assert normalise_answer(" Card_Arrival. ") == normalise_answer("card_arrival")


def test_the_router_measures_each_task_request_against_the_training_distribution() -> None:
    registry = CollectorRegistry()
    routing = TaskRouting(table(), TaskMetrics(registry))
    routing.export_training()
    close, far = unit(1, 0.1, 0), unit(0.3, 1, 0)
    matched = routing.match("bank", close)
    assert matched is not None and matched.student == "bank-v1" and matched.state == "serving"
    routing.match("bank", far)
    value = registry.get_sample_value
    assert value("costmesh_task_centroid_distance_count", {"task": "bank"}) == 2
    assert value("costmesh_task_beyond_train_p95_total", {"task": "bank"}) == 1
    assert value("costmesh_task_train_distance", {"task": "bank", "quantile": "0.95"}) == pytest.approx(0.2)
    assert 0 < value("costmesh_task_live_centroid_shift", {"task": "bank"}) < 1
    assert routing.match("", unit(0, 0, 1)) is None
