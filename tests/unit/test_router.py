import pytest

from services.common.errors import InvalidInput
from services.router.backends.rules import RulesClassifier
from services.router.core import RouterCore
from services.router.features import extract


def route(text: str, threshold: float | None = None, history: int = 0) -> tuple[str, float]:
    messages = [("user", "earlier"), ("assistant", "reply")] * history + [("user", text)]
    r = RouterCore(RulesClassifier(), 0.5).route(messages, [], threshold)
    return r.tier, r.confidence


def test_simple_factual_question_goes_small() -> None:
    assert route("What is the capital of France?")[0] == "small"


def test_multi_step_code_and_math_go_large() -> None:
    prompt = (
        "Explain step by step how to prove that the integral of x^2 from 0 to 1 equals 1/3, then write "
        "```python\ndef integrate(f, a, b):\n    return ...\n``` and compare trapezoid and Simpson rules."
    )
    tier, confidence = route(prompt)
    assert tier == "large"
    assert confidence > 0.5


def test_threshold_is_the_cost_quality_knob() -> None:
    prompt = "Compare two approaches to caching."
    assert route(prompt, threshold=0.01)[0] == "large"
    assert route(prompt, threshold=0.99)[0] == "small"


def test_features_count_markers() -> None:
    f = extract("First do X, then Y. Why? How? def f(): return 1", turns=3)
    assert f.questions == 2
    assert f.code_markers >= 2
    assert f.multi_step_markers >= 1
    assert f.turns == 3


def test_requires_a_user_message() -> None:
    with pytest.raises(InvalidInput):
        RouterCore(RulesClassifier(), 0.5).route([("system", "be nice")], [])


def test_rejects_threshold_out_of_range() -> None:
    with pytest.raises(InvalidInput):
        route("hi", threshold=1.5)


def test_a_product_of_two_numbers_goes_large() -> None:
    # SmolLM2 answered "17 * 23 = 381"; one arithmetic expression is enough evidence for the rules.
    assert route("What is 17 * 23?")[0] == "large"
