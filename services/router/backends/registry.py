"""Config name -> classifier factory."""

from __future__ import annotations

from collections.abc import Callable

from services.common.errors import MissingConfig
from services.router.backends.base import ComplexityClassifier
from services.router.backends.rules import RulesClassifier

CLASSIFIERS: dict[str, Callable[[], ComplexityClassifier]] = {"rules": RulesClassifier}


def make_classifier(name: str) -> ComplexityClassifier:
    try:
        return CLASSIFIERS[name]()
    except KeyError:
        raise MissingConfig(f"unknown classifier {name!r}; known: {sorted(CLASSIFIERS)}") from None
