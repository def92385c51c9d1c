"""`costmesh cache calibrate --pairs FILE --max-false-hit-rate R`: the cache settings that keep false hits
under R on labelled pairs, and the recall they cost.

Every pair is scored once, in process, by the cache's own decision pieces: the orchestrator's embedding
text and embedder, the context key (a multi-turn pair hits only with the same earlier conversation), the
rule guard and the verifier the cache service loads. A hit at (similarity threshold t, verifier cut-off v)
is then an exact-key match, or same context, cosine >= t, guard passed and P(same answer) >= v. The grid
is searched for the pair with the most recall whose false-hit rate stays under R, also a margin
looser on both axes (0.03 cosine, 0.05 probability); with --upper, the upper end of its 95 % Wilson
interval must (strict: with a few hundred different pairs it allows no false hit at all). A set is a
sample: ask for about half the rate you need on new data (the README's default was picked with
R = 0.005 for a 1 % goal).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.stats import hit_rates, wilson
from services.cache.domain import KeyMaterial, same_wording
from services.cache.guard import mismatch
from services.cache.settings import CacheSettings
from services.cache.verifier import Verifier, load_verifier
from services.common.embedding import OnnxMiniLM, embedding_text, load_minilm
from services.orchestrator.settings import OrchestratorSettings
from workloads import pairs as pair_file

SIMILARITY_GRID = np.round(np.arange(0.50, 0.995, 0.01), 2)
VERIFIER_GRID = np.round(np.arange(0.0, 0.995, 0.01), 2)
SIMILARITY_MARGIN, VERIFIER_MARGIN = 0.03, 0.05  # the neighbourhood the bound must hold in


@dataclass(frozen=True)
class Scored:
    same: np.ndarray  # bool: the label
    exact: np.ndarray  # bool: same exact key, a hit whatever the thresholds
    eligible: np.ndarray  # bool: same context and the guard passed
    similarity: np.ndarray
    verifier: np.ndarray  # P(same answer); 1.0 everywhere without a verifier


def embed(embedder: OnnxMiniLM, texts: list[str], batch: int = 64) -> np.ndarray:
    return np.vstack([embedder.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)])


def score(pairs: list[pair_file.Pair], verifier: Verifier | None) -> Scored:
    orchestrator = OrchestratorSettings()
    embedder = load_minilm(orchestrator.embedding_model_dir, orchestrator.embedding_threads)
    a = [KeyMaterial("calibrate", p.a) for p in pairs]
    b = [KeyMaterial("calibrate", p.b) for p in pairs]
    va = embed(embedder, [embedding_text(p.a) for p in pairs])
    vb = embed(embedder, [embedding_text(p.b) for p in pairs])
    return Scored(
        same=np.array([p.same_answer for p in pairs]),
        exact=np.array([x.exact_key() == y.exact_key() for x, y in zip(a, b, strict=True)]),
        eligible=np.array(
            [
                x.context_key() == y.context_key() and not mismatch(y.query(), x.query())
                for x, y in zip(a, b, strict=True)
            ]
        ),
        similarity=(va * vb).sum(axis=1),
        # The cache serves a candidate worded the same (bar case, punctuation, articles) unverified.
        verifier=np.array(
            [
                1.0
                if not verifier or same_wording(x.query(), y.query())
                else verifier.scores(y.query(), [x.query()])[0]
                for x, y in zip(a, b, strict=True)
            ]
        ),
    )


def hits(s: Scored, threshold: float, cut: float) -> np.ndarray:
    return s.exact | (s.eligible & (s.similarity >= threshold) & (s.verifier >= cut))


def summary(s: Scored, threshold: float, cut: float) -> dict[str, object]:
    h = hits(s, threshold, cut)
    same, different = int(s.same.sum()), int((~s.same).sum())
    good, bad = int((h & s.same).sum()), int((h & ~s.same).sum())
    return {
        "similarity_threshold": float(threshold),
        "verifier_threshold": float(cut),
        "pairs": len(s.same),
        "same": same,
        "different": different,
        **hit_rates(good, same, bad, different),
    }


def choose(s: Scored, max_rate: float, upper: bool) -> dict[str, object] | None:
    """The (threshold, cut-off) with the most recall under the bound; ties go to the stricter setting.

    The bound must also hold SIMILARITY_MARGIN / VERIFIER_MARGIN looser, so the choice is not a knife edge
    that one more near-duplicate in production tips over: false hits fall as either setting rises, so
    the looser corner is the worst case of the neighbourhood.
    """
    best: tuple[int, int, float, float] | None = None
    different = max(1, int((~s.same).sum()))

    def rate(bad: int) -> float:
        return (wilson(bad, different) or [0.0, 0.0])[1] if upper else bad / different

    for threshold in SIMILARITY_GRID:
        for cut in VERIFIER_GRID:
            looser = hits(s, float(threshold) - SIMILARITY_MARGIN, max(0.0, float(cut) - VERIFIER_MARGIN))
            if rate(int((looser & ~s.same).sum())) > max_rate:
                continue
            h = hits(s, float(threshold), float(cut))
            good, bad = int((h & s.same).sum()), int((h & ~s.same).sum())
            # Most recall, then fewest false hits; `>=` moves ties on to the stricter setting.
            if best is None or (good, -bad) >= best[:2]:
                best = (good, -bad, float(threshold), float(cut))
    return None if best is None else summary(s, best[2], best[3])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="costmesh cache calibrate")
    parser.add_argument("--pairs", type=Path, required=True, help="labelled pairs, JSONL (see workloads/pairs.py)")
    parser.add_argument("--max-false-hit-rate", type=float, required=True, help="e.g. 0.01")
    parser.add_argument("--upper", action="store_true", help="bound the upper end of the rate's 95 %% interval")
    parser.add_argument("--tenant", default="", help="print a TENANT_POLICIES entry for this tenant instead")
    args = parser.parse_args(argv)
    if not 0.0 <= args.max_false_hit_rate < 1.0:
        parser.error("--max-false-hit-rate must be within [0, 1)")
    pairs = pair_file.read(args.pairs)  # a bad file stops here, before any model loads
    settings = CacheSettings()
    verifier = load_verifier(settings.verifier_kind, settings.verifier_model_dir, settings.verifier_threads)
    scored = score(pairs, verifier)
    current = summary(scored, settings.similarity_threshold, settings.verifier_threshold if verifier else 0.0)
    print(json.dumps({"current_settings": current}))
    chosen = choose(scored, args.max_false_hit_rate, upper=args.upper)
    if chosen is None:
        print(json.dumps({"error": f"no setting keeps false hits under {args.max_false_hit_rate} on these pairs"}))
        return 1
    t = chosen["similarity_threshold"]
    v = chosen["verifier_threshold"] if verifier else None  # without a verifier the cut-off means nothing
    chosen["verifier_threshold"] = v
    if args.tenant:
        override = {"similarity_threshold": t} | ({"verifier_threshold": v} if verifier else {})
        chosen["env"] = {"COSTMESH_CACHE_TENANT_POLICIES": json.dumps({args.tenant: override})}
    elif verifier:
        chosen["env"] = {"COSTMESH_CACHE_SIMILARITY_THRESHOLD": str(t), "COSTMESH_CACHE_VERIFIER_THRESHOLD": str(v)}
    else:
        chosen["env"] = {"COSTMESH_CACHE_SIMILARITY_THRESHOLD_WITHOUT_VERIFIER": str(t)}
    chosen["verifier"] = verifier.name if verifier else None
    print(json.dumps({"summary": True, "max_false_hit_rate": args.max_false_hit_rate, **chosen}))
    return 0
