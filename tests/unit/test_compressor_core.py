import pytest

from services.common.errors import InvalidInput
from services.compressor.backends.dedupe import DedupeCompressor
from services.compressor.core import CompressorCore, Doc

BOILERPLATE = "This document is confidential. Do not share it outside the company."


async def test_repeated_boilerplate_removed_and_fixed_docs_untouched() -> None:
    docs = [
        Doc("a", f"{BOILERPLATE} Refunds take 5 days.   {BOILERPLATE}", "context"),
        Doc("b", f"{BOILERPLATE} Cards ship in 3 days.", "context"),
        Doc("f", f"{BOILERPLATE} Fixed policy text.", "fixed"),
    ]
    result = await CompressorCore(DedupeCompressor(), 2.0).compress(docs, "How long do refunds take?", 0)
    assert result.applied
    assert result.tokens_after < result.tokens_before
    assert "Refunds take 5 days." in result.documents[0].text
    assert result.documents[0].text.count("confidential") == 1
    assert "confidential" not in result.documents[1].text
    assert "Cards ship in 3 days." in result.documents[1].text
    assert result.documents[2] == docs[2]
    assert [d.id for d in result.documents] == ["a", "b", "f"]


async def test_deterministic() -> None:
    docs = [Doc("a", f"{BOILERPLATE} x. {BOILERPLATE}", "context")]
    core = CompressorCore(DedupeCompressor(), 2.0)
    assert (await core.compress(docs, "q", 0)).documents == (await core.compress(docs, "q", 0)).documents


async def test_ratio_below_one_rejected() -> None:
    with pytest.raises(InvalidInput):
        await CompressorCore(DedupeCompressor(), 2.0).compress([], "q", 0.5)
