"""The `costmesh` command line: run the local stack, ask it questions, benchmark it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import grpc

from launcher import stack
from launcher.settings import StackSettings
from services.cli import ask as ask_cmd
from services.cli import batch as batch_cmd
from services.cli import distill as distill_cmd
from services.cli import keys as keys_cmd
from services.cli import tasks as tasks_cmd
from services.common.errors import MissingConfig


def _up(args: argparse.Namespace, settings: StackSettings) -> int:
    print("starting costmesh:")
    try:
        stack.up(settings, only=args.only)
    except stack.StartupError as exc:
        print(f"costmesh up failed:\n{exc}", file=sys.stderr)
        return 1
    if getattr(args, "supervise", False):
        stack.start_supervisor(settings)
    print(f"costmesh is up; orchestrator at 127.0.0.1:{settings.orchestrator_port}")
    if not args.only or "redis" in args.only:
        key, made = keys_cmd.ensure_demo_key(settings)
        where = keys_cmd.demo_key_path(settings)
        print(f"demo API key (tenant {keys_cmd.DEMO_TENANT!r}, {'new' if made else 'kept'} in {where}): {key}")
        print(f"OpenAI-compatible endpoint: http://127.0.0.1:{settings.gateway_port}/v1")
    return 0


def _down(args: argparse.Namespace, settings: StackSettings) -> int:
    stopped = stack.down(settings, only=args.only)
    print(f"stopped {len(stopped)} component(s)")
    return 0


def _status(args: argparse.Namespace, settings: StackSettings) -> int:
    rows = stack.status(settings)
    width = max(52, *(len(row.address) + 2 for row in rows))  # model servers' addresses carry the model name
    print(f"{'component':<14}{'address':<{width}}{'health':<10}note")
    for row in rows:
        health = "SERVING" if row.healthy else ("starting" if row.running else "down")
        print(f"{row.name:<14}{row.address:<{width}}{health:<10}{row.note}")
    return 0 if all(r.healthy for r in rows) else 3


def _ask(args: argparse.Namespace, settings: StackSettings) -> int:
    request = ask_cmd.build_request(
        args.prompt, args.tenant, args.tier, args.max_tokens, args.no_cache, args.system, args.task
    )
    key = keys_cmd.caller_key(settings, args.key)
    try:
        result = ask_cmd.ask(args.address or f"127.0.0.1:{settings.orchestrator_port}", request, args.timeout, key)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    if settings.jaeger and result["trace_id"]:
        result["trace_url"] = settings.jaeger_trace_url(result["trace_id"])  # the stack's Jaeger shows it
    print(ask_cmd.render(result, args.json))
    return 0


def _bench(args: argparse.Namespace, settings: StackSettings) -> int:
    from bench import run as bench_run  # noqa: PLC0415 - benchmarks load only when asked for

    return bench_run.main(args.name, args.bench_args)


def _batch(args: argparse.Namespace, settings: StackSettings) -> int:
    client = batch_cmd.Client(
        args.address or f"127.0.0.1:{settings.batch_port}", keys_cmd.caller_key(settings, args.key)
    )
    try:
        if args.action == "refresh-index":
            return _refresh_index(args, settings, client)
        if not args.target:
            print(f"error: batch {args.action} needs a file or a batch id", file=sys.stderr)
            return 2
        if args.action == "submit":
            status = batch_cmd.submit(client, args.tenant, Path(args.target), args.timeout, args.priority or "normal")
            print(status.batch_id)
            print(batch_cmd.progress_line(status), file=sys.stderr)
        elif args.action == "status":
            batch_cmd.watch(client, args.tenant, args.target, follow=args.watch)
        elif args.action == "results":
            batch_cmd.results(client, args.tenant, args.target)
        else:
            print(batch_cmd.progress_line(batch_cmd.cancel(client, args.tenant, args.target)))
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _refresh_index(args: argparse.Namespace, settings: StackSettings, client: batch_cmd.Client) -> int:
    from services.cli import refresh_index  # noqa: PLC0415 - weaviate-client loads only when asked for

    if not args.source or not args.weaviate_class:
        print("error: batch refresh-index needs --from FILE and --weaviate-class NAME", file=sys.stderr)
        return 2
    url = settings.weaviate_url or f"http://127.0.0.1:{settings.weaviate_port}"
    try:
        store = refresh_index.connect(url, settings.weaviate_grpc_port, settings.weaviate_api_key())
    except Exception as exc:  # weaviate-client raises its own hierarchy for an unreachable server
        print(f"error: Weaviate at {url}: {exc}", file=sys.stderr)
        return 2
    try:
        priority = batch_cmd.PRIORITIES[args.priority or "low"]
        done = refresh_index.refresh(
            client, store, Path(args.source), args.weaviate_class, args.tenant, args.timeout, priority
        )
    except (ValueError, RuntimeError) as exc:  # a bad documents file; Weaviate refusing the upsert
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(dataclasses.asdict(done)))
    return 1 if done.failed else 0


def _replay(args: argparse.Namespace, settings: StackSettings) -> int:
    from bench import replay  # noqa: PLC0415 - loads the datasets only when asked for

    return replay.main(args.replay_args)


def _report(args: argparse.Namespace, settings: StackSettings) -> int:
    from bench import report  # noqa: PLC0415

    return report.main(args.report_args)


def _router(args: argparse.Namespace, settings: StackSettings) -> int:
    # Offline tools: they load the datasets, the embedder and numpy only when asked for.
    from training import estimator, outcomes  # noqa: PLC0415

    if args.tool == "label":
        return outcomes.main(args.tool_args, settings.endpoints())
    return estimator.main(args.tool_args)


def _cache(args: argparse.Namespace, settings: StackSettings) -> int:
    from pydantic import ValidationError  # noqa: PLC0415

    from bench import cache_calibrate  # noqa: PLC0415 - loads the embedder and the verifier only when asked for

    try:
        return cache_calibrate.main(args.tool_args)
    except (MissingConfig, ValidationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _ask_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    a = sub.add_parser("ask", help="send one request through the orchestrator")
    a.add_argument("prompt")
    a.add_argument("--tenant", default="", help="must be the key's tenant (default: the key's)")
    a.add_argument("--key", default="", help="API key (default: $COSTMESH_API_KEY, else the demo key)")
    a.add_argument("--tier", choices=sorted(ask_cmd.TIERS), default="auto")
    a.add_argument("--system", default="", help="a system prompt")
    a.add_argument("--task", default="", help="the distillation task the request belongs to")
    a.add_argument("--max-tokens", type=int, default=128)
    a.add_argument("--no-cache", action="store_true")
    a.add_argument("--json", action="store_true", help="one JSON object with every decision")
    a.add_argument("--address", default="", help="orchestrator host:port")
    a.add_argument("--timeout", type=float, default=120.0)
    a.set_defaults(fn=_ask)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="costmesh", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, text in (("up", _up, "start the local stack"), ("down", _down, "stop what `up` started")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--only", nargs="*", default=[], help="component names (see `costmesh status`)")
        if name == "up":
            cmd.add_argument("--supervise", action="store_true", help="restart a component that exits, with backoff")
        cmd.set_defaults(fn=fn)
    sub.add_parser("status", help="each component with its address and health").set_defaults(fn=_status)
    _ask_parser(sub)
    b = sub.add_parser("bench", help="run a benchmark; prints JSON lines, the last one a summary")
    b.add_argument("name")
    b.add_argument("bench_args", nargs=argparse.REMAINDER)
    b.set_defaults(fn=_bench)
    bt = sub.add_parser(
        "batch",
        help="the batch lane: `submit FILE.jsonl` (OpenAI batch input) prints a batch id; `status ID [--watch]`; "
        "`results ID > out.jsonl` (OpenAI batch output, streamed as items complete); `cancel ID`; "
        "`refresh-index --from DOCS.jsonl --weaviate-class NAME` (re-embed on the batch lane, upsert into Weaviate)",
    )
    bt.add_argument("action", choices=("submit", "status", "results", "cancel", "refresh-index"))
    bt.add_argument("target", nargs="?", default="", help="the JSONL file (submit) or the batch id")
    bt.add_argument("--from", dest="source", default="", help="refresh-index: JSONL documents {id, text, ...}")
    bt.add_argument("--weaviate-class", default="", help="refresh-index: the collection to upsert into")
    bt.add_argument("--tenant", default="", help="must be the key's tenant (default: the key's)")
    bt.add_argument("--key", default="", help="API key (default: $COSTMESH_API_KEY, else the demo key)")
    bt.add_argument("--watch", action="store_true", help="status: redraw the progress bar until done")
    bt.add_argument(
        "--priority", choices=("high", "normal", "low"), default="", help="submit / refresh-index (normal / low)"
    )
    bt.add_argument("--address", default="", help="batch service host:port")
    bt.add_argument("--timeout", type=float, default=120.0)
    bt.set_defaults(fn=_batch)
    rp = sub.add_parser("replay", help="send a workload through the running mesh and record every decision")
    rp.add_argument("replay_args", nargs=argparse.REMAINDER)
    rp.set_defaults(fn=_replay)
    rr = sub.add_parser("report", help="the savings waterfall, latency and quality of a replay (HTML + JSON)")
    rr.add_argument("report_args", nargs=argparse.REMAINDER)
    rr.set_defaults(fn=_report)
    r = sub.add_parser(
        "router", help="offline tools: `label` records both tiers' graded answers, `train` fits the quality estimator"
    )
    r.add_argument("tool", choices=("label", "train"))
    r.add_argument("tool_args", nargs=argparse.REMAINDER)
    r.set_defaults(fn=_router)
    c = sub.add_parser(
        "cache", help="offline tools: `calibrate --pairs FILE --max-false-hit-rate R` picks the semantic thresholds"
    )
    c.add_argument("tool", choices=("calibrate",))
    c.add_argument("tool_args", nargs=argparse.REMAINDER)
    c.set_defaults(fn=_cache)
    keys_cmd.add_parser(sub)
    tasks_cmd.add_parser(sub)
    distill_cmd.add_parser(sub)
    return p


# Commands whose own argument parser reads everything after the command name, options included.
PASS_THROUGH = {"replay": "replay_args", "report": "report_args"}


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra and args.command not in PASS_THROUGH:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in PASS_THROUGH:
        dest = PASS_THROUGH[args.command]
        setattr(args, dest, extra + getattr(args, dest))
    settings = StackSettings()
    code: int = args.fn(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
