"""Answer signals from token logprobs: margin and entropy from the top alternatives."""

import math

import pytest

from costmesh.v1 import inference_pb2
from services.common.signals import MAX_MARGIN, answer_signals, signals


def test_confident_and_unsure_answers() -> None:
    sure = signals([-0.01, -0.02], [[-0.01, -6.0], [-0.02, -5.0]], "Paris")
    unsure = signals([-0.7, -0.7], [[-0.7, -0.7], [-0.7, -0.7]], "Lyon?")
    assert sure.mean_margin > 4.9 and unsure.mean_margin == pytest.approx(0.0)
    assert unsure.mean_entropy == pytest.approx(math.log(2)) and sure.mean_entropy < 0.05
    assert sure.tokens == 2 and sure.first_logprob == -0.01 and sure.chars == 5


def test_edge_cases() -> None:
    empty = signals([], [], "")
    assert empty.tokens == 0 and empty.mean_margin == MAX_MARGIN
    lone = signals([-0.1], [[]], "x")  # no alternatives returned (e.g. Ray Serve)
    assert lone.mean_margin == MAX_MARGIN and lone.mean_entropy == 0.0
    sampled = signals([-2.0], [[-0.5, -2.0]], "x")  # a sampled token that was not the top one
    assert sampled.mean_margin == pytest.approx(-1.5)


def test_from_the_inference_proto() -> None:
    tokens = [
        inference_pb2.TokenLogprob(
            token="A",
            logprob=-0.1,
            top=[inference_pb2.TopLogprob(token="A", logprob=-0.1), inference_pb2.TopLogprob(token="B", logprob=-2.5)],
        )
    ]
    proto = answer_signals(tokens, "A")
    assert proto.tokens == 1 and proto.mean_margin == pytest.approx(2.4) and proto.chars == 1
