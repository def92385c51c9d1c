"""Config name -> classifier factory. Add a classifier by adding a module and one line here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.common.errors import MissingConfig
from services.router.backends.base import ComplexityClassifier
from services.router.backends.learned import LearnedClassifier, LogisticModel
from services.router.backends.rules import RulesClassifier


def _learned(model_path: str) -> ComplexityClassifier:
    return LearnedClassifier(LogisticModel.load(Path(model_path).expanduser()))


def _rules(model_path: str) -> ComplexityClassifier:
    return RulesClassifier()


CLASSIFIERS: dict[str, Callable[[str], ComplexityClassifier]] = {"rules": _rules, "learned": _learned}


def make_classifier(name: str, model_path: str = "") -> ComplexityClassifier:
    try:
        factory = CLASSIFIERS[name]
    except KeyError:
        raise MissingConfig(f"unknown classifier {name!r}; known: {sorted(CLASSIFIERS)}") from None
    return factory(model_path)
