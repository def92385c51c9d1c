"""`costmesh keys create|list|revoke`, and the demo key `costmesh up` makes for `costmesh ask`.

Keys live in the stack's Redis (services/common/apikeys.py); the demo key's plain text is kept in the
stack's secrets folder (0600), the only place a key is ever written down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from launcher.settings import StackSettings
from services.common.apikeys import KeyPolicy, KeyStore, parse_tiers
from services.common.errors import CostmeshError
from services.orchestrator.spend import SpendLedger

DEMO_TENANT = "default"
API_KEY_ENV = "COSTMESH_API_KEY"


def demo_key_path(settings: StackSettings) -> Path:
    return settings.data_dir / "secrets" / "demo-key"


def caller_key(settings: StackSettings, explicit: str = "") -> str:
    """The key the CLI sends: --key, else $COSTMESH_API_KEY, else the demo key `costmesh up` made."""
    if explicit or os.environ.get(API_KEY_ENV):
        return explicit or os.environ[API_KEY_ENV]
    path = demo_key_path(settings)
    return path.read_text().strip() if path.exists() else ""


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


async def _ensure_demo_key(settings: StackSettings) -> tuple[str, bool]:
    store = KeyStore.from_url(settings.redis_url())
    try:
        path = demo_key_path(settings)
        if path.exists():
            key = path.read_text().strip()
            if await store.lookup(key) is not None:
                return key, False
        key, _ = await store.create(DEMO_TENANT, allow_batch=True)
        _write_secret(path, key)
        return key, True
    finally:
        await store.close()


def ensure_demo_key(settings: StackSettings) -> tuple[str, bool]:
    """The demo key (tenant `default`, both tiers, batch allowed, no budget); True if made just now."""
    return asyncio.run(_ensure_demo_key(settings))


def _row(policy: KeyPolicy, spent: float) -> dict[str, object]:
    return {**policy.as_dict(), "spent_usd_today": round(spent, 8)}


async def _run(args: argparse.Namespace, settings: StackSettings) -> int:
    store = KeyStore.from_url(settings.redis_url())
    ledger = SpendLedger(store.client)
    try:
        if args.action == "create":
            key, policy = await store.create(
                args.tenant,
                budget_usd_per_day=args.budget_usd_per_day,
                rpm=args.rpm,
                tiers=parse_tiers(args.tiers),
                allow_batch=args.allow_batch,
            )
            print(json.dumps({"key": key, **policy.as_dict()}))
        elif args.action == "list":
            for policy in await store.list():
                print(json.dumps(_row(policy, await ledger.spent_today(policy.key_id, time.time()))))
        else:
            print(json.dumps((await store.revoke(args.key_id)).as_dict()))
    finally:
        await store.close()
    return 0


def main(args: argparse.Namespace, settings: StackSettings) -> int:
    try:
        return asyncio.run(_run(args, settings))
    except CostmeshError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    k = sub.add_parser("keys", help="API keys: `create --tenant T [...]` prints the key once; `list`; `revoke KEY_ID`")
    actions = k.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="a new key for a tenant; the key is printed once, only its hash is kept")
    c.add_argument("--tenant", required=True)
    c.add_argument("--budget-usd-per-day", type=float, default=0.0, help="0: no budget")
    c.add_argument("--rpm", type=int, default=0, help="requests per minute; 0: unlimited")
    c.add_argument("--tiers", default="small,large", help="the tiers the key may use")
    c.add_argument("--allow-batch", action="store_true", help="may submit batches (batch-lane prices)")
    actions.add_parser("list", help="every key (never the key itself) with today's spend")
    r = actions.add_parser("revoke", help="stop a key at once")
    r.add_argument("key_id")
    k.set_defaults(fn=main)
