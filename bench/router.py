"""Router: decision latency against the 15 ms budget, for the rules and for the quality estimator.

RouterCore.route (features + classifier or estimator) and RouterCore.assess on real prompts up to 512
tokens, the embedding computed upstream as in the mesh, one process. The cascade's cost and quality are
`costmesh bench cascade`'s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.output import emit
from bench.stats import summarize_ms
from services.common.embedding import embedding_text, load_minilm
from services.common.signals import Signals
from services.orchestrator.settings import OrchestratorSettings
from services.router.backends.rules import RulesClassifier
from services.router.core import RouterCore
from services.router.estimator import QualityModel
from services.router.settings import DEFAULT_MODEL
from workloads import datasets

ANSWER = Signals(tokens=8, mean_logprob=-0.4, min_logprob=-2.0, first_logprob=-0.1, mean_margin=3.0,
                 mean_entropy=0.4, chars=30)  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh bench router", description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--prompts", type=int, default=400)
    args = parser.parse_args(argv)
    settings = OrchestratorSettings()
    embedder = load_minilm(settings.embedding_model_dir, settings.embedding_threads)
    prompts = [q.prompt() for q in datasets.sample(datasets.mmlu(), args.prompts, seed=21)]
    prompts += [text for text, _ in datasets.mtbench()]
    vectors = [embedder.embed([embedding_text([("user", p)])])[0].tolist() for p in prompts]
    cores = {
        "rules": RouterCore(RulesClassifier(), 0.5),
        "estimator": RouterCore(RulesClassifier(), 0.5, {}, QualityModel.load(args.model)),
    }
    summary: dict[str, object] = {"bench": "router", "summary": True, "prompts": len(prompts)}
    for name, core in cores.items():
        for call_name in ("route", "assess") if name == "estimator" else ("route",):
            samples = []
            for prompt, vector in zip(prompts, vectors, strict=True):
                started = time.perf_counter()
                if call_name == "route":
                    core.route([("user", prompt)], vector)
                else:
                    core.assess([("user", prompt)], vector, ANSWER)
                samples.append(time.perf_counter() - started)
            row: dict[str, object] = {"bench": "router", "classifier": name, "call": call_name, **summarize_ms(samples)}
            emit(row)
            summary[f"{name}_{call_name}_p99_ms"] = row["p99_ms"]
    emit(summary)
    return 0
