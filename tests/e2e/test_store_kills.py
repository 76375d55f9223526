"""The store survives a SIGKILL at any moment of promote, rollback and publish (the alias journal of
modelstore/history.py and the flock of modelstore/publish.py).

A driver process runs ``xalign-store promote --force`` and ``rollback`` (the CLI's ``main``, in process, so that a
kill lands in the store's code rather than in Python's start-up) and publishes, in a random order, until it is
killed at a random moment; then another starts. After at least 50 kills: the journal is readable and names only
complete versions after every kill, ``xalign-store rollback`` really moves production, ``verify`` passes (files
and aliases agreeing with the history) and ``gc`` collects every leftover.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from processes import REPO
from store_specs import make_files, make_spec

from xalign.modelstore import ModelStore
from xalign.modelstore.cli import main
from xalign.modelstore.history import read_journal

KILLS = 60
DEADLINE_S = 150.0  # bounded even on a loaded machine; typically ~30 s

DRIVER = """
import os, random, sys
from pathlib import Path
from xalign.modelstore import ModelStore
from xalign.modelstore.cli import main
from store_specs import make_files, make_spec

store, src = Path(sys.argv[1]), Path(sys.argv[2])
models = ModelStore(store)
rng = random.Random(int(sys.argv[3]))
files = make_files(src / str(os.getpid()), os.urandom(256 * 1024))
print("ready", flush=True)
while True:
    op = rng.random()
    if op < 0.4:
        version = rng.choice(models.versions("m"))
        main(["--store", str(store), "promote", "m", str(version), "--force", "--actor", "killer"])
    elif op < 0.8:
        main(["--store", str(store), "rollback", "m"])
    else:
        models.publish("m", make_spec(), files)
"""


def _leftovers(model: Path) -> list[str]:
    return sorted(p.name for p in model.iterdir() if p.name.startswith(".tmp-") or p.name.endswith(".tmp"))


def _check_consistent(store: ModelStore) -> None:
    """After a kill: the journal parses and every alias names a complete, verified version."""
    journal = read_journal(store.root / "m")
    assert journal is not None
    for alias, version in journal.aliases.items():
        assert version in store.versions("m"), f"{alias} names a missing version {version}"
        assert journal.stacks[alias][-1] == version
    for version in store.versions("m"):
        assert (store.root / "m" / str(version) / "manifest.json").is_file()


def _kill_loop(store: ModelStore, tmp_path: Path) -> tuple[int, int]:
    """Start, wait for, randomly delay and SIGKILL drivers; (kills, times the view was left behind)."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER, encoding="utf-8")
    rng = random.Random(19)
    kills = stale = 0
    deadline = time.monotonic() + DEADLINE_S
    while kills < KILLS:
        assert time.monotonic() < deadline, f"only {kills} kills in {DEADLINE_S} s"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(store.root), str(tmp_path / "src"), str(kills)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(REPO / "tests" / "support")},
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        kills += 1
        _check_consistent(store)
        view = json.loads((store.root / "m" / "aliases.json").read_text())
        stale += view != store.aliases("m")
    return kills, stale


def test_sigkill_loop_over_promote_rollback_publish(tmp_path: Path, capsys: object) -> None:
    store = ModelStore(tmp_path / "store")
    for i in range(3):
        store.publish("m", make_spec(), make_files(tmp_path / f"seed{i}", b"%d" % i))
    store.promote("m", 1)
    store.promote("m", 2)
    kills, stale = _kill_loop(store, tmp_path)
    model = store.root / "m"
    leftovers = _leftovers(model)

    journal = read_journal(model)
    assert journal is not None
    if len(journal.stacks["production"]) < 2:  # the last completed move was a rollback to the bottom
        other = next(v for v in store.versions("m") if v != journal.aliases["production"])
        assert main(["--store", str(store.root), "promote", "m", str(other), "--force"]) == 0
        journal = read_journal(model)
        assert journal is not None
    before, target = journal.stacks["production"][-1], journal.stacks["production"][-2]
    assert main(["--store", str(store.root), "rollback", "m"]) == 0
    assert store.aliases("m")["production"] == target != before
    assert json.loads((model / "aliases.json").read_text())["production"] == target

    assert main(["--store", str(store.root), "gc", "--grace-s", "0"]) == 0
    assert _leftovers(model) == []
    assert main(["--store", str(store.root), "verify"]) == 0
    history = read_journal(model)
    assert history is not None and len(history.events) <= 200
    print(
        f"store kills: {kills} SIGKILLs, view left behind {stale} times, {len(store.versions('m'))} versions, "
        f"{len(leftovers)} leftovers collected by gc ({sum(n.startswith('.tmp-') for n in leftovers)} publish folders)"
    )
