"""Policies replayed on outcome records: cost, accuracy, shares and intervals."""

import pytest

from training import simulate


def rows() -> list[simulate.Row]:
    return [
        simulate.Row(0.9, 0.9, True, True, 0.1, 1.0),  # easy: cheap and kept
        simulate.Row(0.9, 0.2, False, True, 0.1, 1.0),  # cheap tried, escalated
        simulate.Row(0.1, 0.1, False, True, 0.1, 1.0),  # routed large straight away
        simulate.Row(0.9, 0.9, False, False, 0.1, 1.0),  # both wrong: the cheap answer is as good
    ]


def test_cascade_pays_for_both_calls_when_it_escalates() -> None:
    o = simulate.cascade(rows(), route_threshold=0.5, keep_threshold=0.5)
    assert o.correct == (True, True, True, False)
    assert o.cost == (0.1, 1.1, 1.0, 0.1)
    assert o.cheap_share == 0.5 and o.escalation_rate == pytest.approx(1 / 3)


def test_fixed_policies_and_the_oracle() -> None:
    r = rows()
    assert simulate.all_large(r).accuracy == 0.75 and simulate.all_large(r).total_cost == 4.0
    assert simulate.all_small(r).accuracy == 0.25
    oracle = simulate.oracle(r)
    assert oracle.accuracy == 0.75 and oracle.total_cost == pytest.approx(2.2)


def test_random_routing_expectation_and_paired_interval() -> None:
    expected, cost = simulate.random_expected(rows(), 0.5)
    assert expected == [1.0, 0.5, 0.5, 0.0] and cost == pytest.approx(2.2)
    mean, lo, hi = simulate.paired_delta([1, 1, 1, 0], expected)
    assert mean == pytest.approx(25.0) and lo < mean < hi
    assert simulate.paired_delta([1.0] * 5, [1.0] * 5) == (0.0, 0.0, 0.0)


def test_wilson_interval() -> None:
    lo, hi = simulate.wilson(50, 100)
    assert lo == pytest.approx(0.404, abs=1e-3) and hi == pytest.approx(0.596, abs=1e-3)


def test_cheapest_within_respects_the_target() -> None:
    found = simulate.cheapest_within(rows(), 0.0, [0.0, 0.5, 2.0])
    assert found is not None
    _, _, outcome = found
    assert outcome.accuracy == 0.75 and outcome.total_cost < 4.0
