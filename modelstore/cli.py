"""``xalign-store``: list, show, promote (through the release gate), roll back, verify, history and gc."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from xalign.modelstore.aliases import DEFAULT_ALIAS
from xalign.modelstore.errors import StoreError
from xalign.modelstore.gc import DEFAULT_GRACE_S, collect
from xalign.modelstore.history import disagreements
from xalign.modelstore.refs import parse_ref
from xalign.modelstore.release import GatePolicy, Release, release, rollback
from xalign.modelstore.seed import seed_store
from xalign.modelstore.store import ModelStore

# promote's exit status when the candidate fails the gate (or cannot be compared) and is not promoted.
EXIT_REFUSED = 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``xalign-store``."""
    parser = argparse.ArgumentParser(prog="xalign-store", description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("store"), help="store folder (default: ./store)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="models, their versions and aliases")
    show = sub.add_parser("show", help="print the manifest of NAME, NAME:VERSION or NAME@ALIAS")
    show.add_argument("ref")
    promote = sub.add_parser(
        "promote",
        help="point an alias at a version; production only if it passes the release gate (or --force)",
        description="Move production to VERSION if it passes the release gate against the version production "
        "names now (exit 1 and the table of differences otherwise); other aliases move ungated.",
    )
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    promote.add_argument("--alias", default=DEFAULT_ALIAS, help=f"alias to move (default: {DEFAULT_ALIAS})")
    add_release_options(promote)
    rollback_parser = sub.add_parser("rollback", help="move an alias back to the version it had before (ungated)")
    rollback_parser.add_argument("name")
    rollback_parser.add_argument("--alias", default=DEFAULT_ALIAS, help=f"alias to move (default: {DEFAULT_ALIAS})")
    rollback_parser.add_argument("--actor", help="who moves the alias, for the history (default: user@host)")
    history = sub.add_parser("history", help="who moved NAME's aliases, from which version to which, when, and why")
    history.add_argument("name")
    history.add_argument("--json", action="store_true", help="print the events as JSON lines")
    verify = sub.add_parser(
        "verify", help="check every file's sha256 and that aliases.json agrees with the alias history"
    )
    verify.add_argument("ref", nargs="?")
    gc = sub.add_parser("gc", help="remove what killed publishers and promoters left; repair aliases.json")
    gc.add_argument(
        "--grace-s",
        type=float,
        default=DEFAULT_GRACE_S,
        help=f"leave unlocked temporary folders younger than this alone (default: {DEFAULT_GRACE_S:g})",
    )
    seed = sub.add_parser("seed", help="publish every version of another store here, if this one has no model yet")
    seed.add_argument("--from", dest="source", type=Path, required=True, help="the store to copy from")
    return parser


def add_release_options(parser: argparse.ArgumentParser) -> None:
    """``--force``, ``--actor`` and the gate's thresholds (``xalign-export retrain`` has them too)."""
    default = GatePolicy()
    group = parser.add_argument_group("release gate")
    group.add_argument("--force", action="store_true", help="promote even if the gate fails (recorded as forced)")
    group.add_argument("--actor", help="who moves the alias, for the history (default: user@host)")
    group.add_argument(
        "--min-mean-delta",
        type=float,
        default=default.min_mean_delta,
        help=f"least change of a Tatoeba mean or accuracy, in points (default: {default.min_mean_delta:g})",
    )
    group.add_argument(
        "--min-f1-delta",
        type=float,
        default=default.min_f1_delta,
        help=f"least change of a BUCC F1, in points (default: {default.min_f1_delta:g})",
    )
    group.add_argument(
        "--max-direction-loss",
        type=float,
        default=default.max_direction_loss,
        help=f"most points one Tatoeba direction may lose (default: {default.max_direction_loss:g})",
    )


def policy_from_args(args: argparse.Namespace) -> GatePolicy:
    """The gate policy the release options ask for."""
    return GatePolicy(
        min_mean_delta=args.min_mean_delta,
        min_f1_delta=args.min_f1_delta,
        max_direction_loss=args.max_direction_loss,
    )


def print_release(result: Release) -> int:
    """Print a release's outcome (and its table of differences); the exit status it stands for."""
    if result.gate is not None and result.gate.rows:
        print(result.gate.table())
    print(result.summary(), file=sys.stdout if result.promoted else sys.stderr)
    return 0 if result.promoted else EXIT_REFUSED


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
    for name in sorted({ref.name for ref in refs}):
        stale = disagreements(store.root / name)
        failures += len(stale)
        for line in stale:
            print(f"FAIL {name} aliases: {line} (xalign-store gc repairs it)")
        if not stale:
            print(f"ok   {name} aliases agree with the history: {store.aliases(name)}")
    return 1 if failures else 0


def _history(store: ModelStore, name: str, as_json: bool) -> None:
    events = store.history(name)
    if as_json:
        for event in events:
            print(event.model_dump_json())
        return
    for e in events:
        moved = f"{e.from_version if e.from_version is not None else '-'} -> {e.to_version or '-'}"
        detail = f" ({e.detail})" if e.detail else ""
        at = e.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        print(f"{at}  {e.alias:<12} {e.action:<9} {moved:<10} {e.actor}  gate: {e.gate}{detail}")
    for alias, stack in sorted(store.rollback_targets(name).items()):
        print(f"{name}@{alias}: {stack[-1]} (rollback goes to {stack[-2] if len(stack) > 1 else 'nothing'})")


def _gc(store: ModelStore, grace_s: float) -> None:
    report = collect(store.root, grace_s)
    for path in report.removed:
        print(f"removed {path}")
    for path in report.live:
        print(f"kept    {path} (a publisher holds it)")
    for path in report.young:
        print(f"kept    {path} (younger than {grace_s:g} s)")
    for name in report.repaired:
        print(f"repaired {name}/aliases.json from the history")
    for name in report.trimmed:
        print(f"trimmed {name}'s history to its bounds")


def _seed(store: ModelStore, source: Path) -> None:
    report = seed_store(store, ModelStore(source))
    if report.skipped:
        print(f"nothing seeded: {report.skipped}")
    for name, old, new in report.published:
        print(f"seeded {name}:{new} from {source}/{name}/{old}")
    for name, aliases in report.aliases.items():
        for alias, version in sorted(aliases.items()):
            print(f"{name}@{alias} -> {version}")


def _promote(store: ModelStore, args: argparse.Namespace) -> int:
    if args.alias != DEFAULT_ALIAS:
        store.promote(args.name, args.version, args.alias, actor=args.actor)
        print(f"{args.name}@{args.alias} -> {args.version}")
        return 0
    result = release(store, args.name, args.version, policy=policy_from_args(args), force=args.force, actor=args.actor)
    return print_release(result)


def run(args: argparse.Namespace) -> int:
    """Execute one parsed command; return the process exit code."""
    store = ModelStore(args.store)
    if args.command == "list":
        _list(store)
    elif args.command == "show":
        print(json.dumps(json.loads(store.manifest(parse_ref(args.ref)).to_json()), indent=2))
    elif args.command == "promote":
        return _promote(store, args)
    elif args.command == "rollback":
        version = rollback(store, args.name, args.alias, actor=args.actor)
        print(f"{args.name}@{args.alias} -> {version}")
    elif args.command == "history":
        _history(store, args.name, args.json)
    elif args.command == "verify":
        return _verify(store, args.ref)
    elif args.command == "gc":
        _gc(store, args.grace_s)
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
