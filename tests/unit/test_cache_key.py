from services.cache.domain import KeyMaterial, normalize


def material(**overrides: object) -> KeyMaterial:
    base: dict[str, object] = {
        "tenant": "acme",
        "messages": (("system", "You are terse."), ("user", "What is the capital of France?")),
        "documents": (),
        "sampling": (("max_tokens", "64"),),
        "tier": "auto",
        "response_format": "",
    }
    base.update(overrides)
    return KeyMaterial(**base)  # type: ignore[arg-type]


def test_normalize_collapses_whitespace_and_case() -> None:
    assert normalize("  What   is\tthe CAPITAL\nof France? ") == "what is the capital of france?"


def test_whitespace_and_case_variants_share_a_key() -> None:
    a = material()
    b = material(messages=(("system", "you are terse."), ("user", "  what is the capital   of france?")))
    assert a.exact_key() == b.exact_key()
    assert len(a.exact_key()) == 64


def test_everything_that_changes_the_answer_changes_the_key() -> None:
    base = material().exact_key()
    variants = [
        material(tenant="globex"),
        material(messages=(("system", "You are verbose."), ("user", "What is the capital of France?"))),
        material(messages=(("user", "What is the capital of France?"),)),
        material(messages=(("system", "You are terse."), ("user", "What is the capital of Spain?"))),
        material(sampling=(("max_tokens", "65"),)),
        material(sampling=(("max_tokens", "64"), ("temperature", "0.7"))),
        material(tier="large"),
        material(documents=(("DOCUMENT_KIND_CONTEXT", "Paris is in France."),)),
        material(response_format='{"type": "object"}'),
    ]
    keys = {v.exact_key() for v in variants}
    assert base not in keys
    assert len(keys) == len(variants)


def test_role_is_part_of_the_key() -> None:
    a = material(messages=(("user", "hi"), ("user", "What?")))
    b = material(messages=(("assistant", "hi"), ("user", "What?")))
    assert a.exact_key() != b.exact_key()
