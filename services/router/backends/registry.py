"""Config name -> classifier factory. Add a classifier by adding a module and one line here."""

from __future__ import annotations

from collections.abc import Callable

from services.common.errors import MissingConfig
from services.router.backends.base import ComplexityClassifier
from services.router.backends.rules import RulesClassifier

# The quality estimator is not a classifier: it routes and judges (services/router/estimator.py), with
# a classifier from here as its fallback.
CLASSIFIERS: dict[str, Callable[[], ComplexityClassifier]] = {"rules": RulesClassifier}


def make_classifier(name: str) -> ComplexityClassifier:
    try:
        factory = CLASSIFIERS[name]
    except KeyError:
        raise MissingConfig(f"unknown classifier {name!r}; known: {sorted(CLASSIFIERS)}") from None
    return factory()
