"""``xalign-store``: list, show, promote, roll back and verify the versions in a model store."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from modelstore.aliases import DEFAULT_ALIAS
from modelstore.errors import StoreError
from modelstore.refs import parse_ref
from modelstore.seed import seed_store
from modelstore.store import ModelStore


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xalign-store``."""
    parser = argparse.ArgumentParser(prog="xalign-store", description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("store"), help="store folder (default: ./store)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="models, their versions and aliases")
    show = sub.add_parser("show", help="print the manifest of NAME, NAME:VERSION or NAME@ALIAS")
    show.add_argument("ref")
    promote = sub.add_parser("promote", help="point an alias at a version")
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    promote.add_argument("--alias", default=DEFAULT_ALIAS, help=f"alias to move (default: {DEFAULT_ALIAS})")
    rollback = sub.add_parser("rollback", help="move an alias back to the version it had before")
    rollback.add_argument("name")
    rollback.add_argument("--alias", default=DEFAULT_ALIAS, help=f"alias to move (default: {DEFAULT_ALIAS})")
    verify = sub.add_parser("verify", help="check every file's sha256 (all versions when no REF is given)")
    verify.add_argument("ref", nargs="?")
    seed = sub.add_parser("seed", help="publish every version of another store here, if this one has no model yet")
    seed.add_argument("--from", dest="source", type=Path, required=True, help="the store to copy from")
    return parser


def _list(store: ModelStore) -> None:
    for name in store.models():
        aliases = store.aliases(name)
        shown = ", ".join(f"{a}={v}" for a, v in sorted(aliases.items())) or "no aliases"
        print(f"{name}: versions {store.versions(name)}; {shown}")


def _verify(store: ModelStore, ref_text: str | None) -> int:
    refs = (
        [parse_ref(ref_text)]
        if ref_text
        else [parse_ref(f"{name}:{v}") for name in store.models() for v in store.versions(name)]
    )
    failures = 0
    for ref in refs:
        try:
            loaded = store.load(ref)
        except StoreError as exc:
            failures += 1
            print(f"FAIL {ref}: {exc}")
        else:
            print(f"ok   {loaded.manifest.name}:{loaded.manifest.version} ({len(loaded.manifest.files)} files)")
    return 1 if failures else 0


def _seed(store: ModelStore, source: Path) -> None:
    report = seed_store(store, ModelStore(source))
    if report.skipped:
        print(f"nothing seeded: {report.skipped}")
    for name, old, new in report.published:
        print(f"seeded {name}:{new} from {source}/{name}/{old}")
    for name, aliases in report.aliases.items():
        for alias, version in sorted(aliases.items()):
            print(f"{name}@{alias} -> {version}")


def run(args: argparse.Namespace) -> int:
    """Execute one parsed command; return the process exit code."""
    store = ModelStore(args.store)
    if args.command == "list":
        _list(store)
    elif args.command == "show":
        print(json.dumps(json.loads(store.manifest(parse_ref(args.ref)).to_json()), indent=2))
    elif args.command == "promote":
        store.promote(args.name, args.version, args.alias)
        print(f"{args.name}@{args.alias} -> {args.version}")
    elif args.command == "rollback":
        version = store.rollback(args.name, args.alias)
        print(f"{args.name}@{args.alias} -> {version}")
    elif args.command == "verify":
        return _verify(store, args.ref)
    elif args.command == "seed":
        _seed(store, args.source)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``xalign-store``."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except StoreError as exc:
        print(f"xalign-store: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
