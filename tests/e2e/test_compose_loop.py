"""The retraining loop of deploy/docker-compose.yml, for real but without containers.

Each service's command and environment are read from the compose file and run as a plain process; the named
volumes are temporary folders and the image's baked-in store (``/opt/xalign/store``, what ``make model`` put
there) is a temporary store holding the tiny model. The only changes to what compose says: paths inside the
container become those folders, the api listens on a free loopback port instead of the container's 8000 (the
port mapping's job), and the shell variables the compose file reads pick a tiny recipe and a short poll.

The trainer releases through the gate: the data folder holds the mini Tatoeba sample (which the trainer measures
because it is there), and the image's version 1 is a weak encoder (every token embedded alike) measured on it,
so the retrained version passes the gate against it by a wide margin.

bootstrap seeds the store → api ready → a client streams embedding and search requests the whole time →
trainer publishes version 2 → api serves it → ``xalign-store rollback`` → api serves version 1 again; zero
failed requests.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from compose_file import COMPOSE, REPO, Service, load, service
from processes import free_port, running, wait_for, wait_ready
from retrain_recipe import write_recipe
from streaming_client import StreamingClient
from tiny_models import publish_tiny

TRAIN_DATA = REPO / "tests" / "data" / "trainer"
TATOEBA_MINI = REPO / "tests" / "data" / "tatoeba_mini"
IMAGE_STORE = "/opt/xalign/store"
DOCS = ["a dog runs in the park", "ein Hund rennt im Park", "the train is late", "der Zug hat Verspätung"]


def _client(base_url: str) -> StreamingClient:
    """Alternates embedding and index-search requests until stopped."""
    requests = [("/v1/embeddings", {"input": DOCS[:2]}), ("/v1/indexes/docs/search", {"query": "dog", "k": 2})]
    return StreamingClient(base_url, requests)


def _host_paths(compose_service: Service, volumes: dict[str, Path], image_store: Path) -> dict[str, Path]:
    """Container path → host folder: the service's mounts, the image's store, and the image's workdir."""
    paths = {IMAGE_STORE: image_store, "/app": REPO}
    for mount in compose_service.volumes:
        source = Path(mount.source)
        paths[mount.target] = volumes[mount.source] if mount.source in volumes else (COMPOSE.parent / source).resolve()
    return paths


def _to_host(value: str, paths: dict[str, Path]) -> str:
    for target in sorted(paths, key=len, reverse=True):
        if value == target or value.startswith(target + "/"):
            return str(paths[target]) + value[len(target) :]
    return value


def _process(compose_service: Service, paths: dict[str, Path]) -> tuple[list[str], dict[str, str]]:
    """The service's command (console script of this environment) and environment, on host paths."""
    command = [_to_host(part, paths) for part in compose_service.command]
    command[0] = str(Path(sys.executable).with_name(command[0]))
    return command, {key: _to_host(value, paths) for key, value in compose_service.environment.items()}


def _run(command: list[str], env: dict[str, str], log: Path, timeout: float) -> str:
    """Run a one-shot service to the end; its output, or a failure with the output."""
    result = subprocess.run(
        command, cwd=REPO, env={**_base_env(), **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{(result.stdout + result.stderr)[-4000:]}"
    return result.stdout


def _base_env() -> dict[str, str]:
    import os  # noqa: PLC0415

    return {key: value for key, value in os.environ.items() if not key.startswith("XALIGN_")}


def test_bootstrap_serve_retrain_rollback(tiny_model_dir: Path, tmp_path: Path) -> None:
    compose = load()
    image_store = tmp_path / "image-store"
    # What the image's `make model` baked in: tiny:1, measured on Tatoeba.
    publish_tiny(
        _weak_copy(tiny_model_dir, tmp_path / "weak"), image_store, tatoeba_dir=TATOEBA_MINI, tatoeba_langs=("deu",)
    )
    data = tmp_path / "data"  # the training data and the Tatoeba sample the trainer measures on
    data.mkdir()
    (data / "multi30k").symlink_to(TRAIN_DATA / "multi30k")
    (data / "tatoeba").symlink_to(TATOEBA_MINI)
    volumes = {name: tmp_path / "volumes" / name for name in compose["volumes"]}
    for folder in volumes.values():
        folder.mkdir(parents=True)
    shell = {  # the variables compose reads from the shell or .env
        "XALIGN_POLL_INTERVAL_S": "0.5",
        "XALIGN_THREADS": "1",
        "XALIGN_TRAIN_RECIPE": str(write_recipe(tmp_path, tiny_model_dir, steps=4)),
        "XALIGN_TRAIN_MODEL": "tiny",
        "XALIGN_TRAIN_DATA": str(data),
    }
    services = {name: service(compose, name, shell) for name in ("bootstrap", "api", "trainer")}
    processes = {name: _process(s, _host_paths(s, volumes, image_store)) for name, s in services.items()}
    out = _run(*processes["bootstrap"], tmp_path / "bootstrap.log", timeout=120)
    assert "seeded tiny:1" in out

    port = free_port()
    api_command, api_env = processes["api"]
    assert api_env["XALIGN_STORE"] == str(volumes["store"]) and api_env["XALIGN_HOST"] == "0.0.0.0"
    api_env = {**api_env, "XALIGN_HOST": "127.0.0.1", "XALIGN_PORT": str(port)}  # the port mapping's job
    base_url, log = f"http://127.0.0.1:{port}", tmp_path / "api.log"
    with running(api_command, log, {**api_env}) as proc:
        wait_ready(base_url, proc, log, timeout=120)
        assert httpx.post(f"{base_url}/v1/indexes", json={"name": "docs"}, timeout=30).status_code == 201
        assert httpx.post(f"{base_url}/v1/indexes/docs/texts", json={"texts": DOCS}, timeout=30).status_code == 200
        client = _client(base_url)
        client.start()
        try:
            _loop(client, processes["trainer"], volumes["store"], tmp_path)
        finally:
            client.stop.set()
            client.join(timeout=60)
    failures = [answer for answer in client.answers if answer[1] != 200]
    searches = sum(1 for route, _, _ in client.answers if route.endswith("/search"))
    print(f"retraining loop: {len(client.answers)} requests ({searches} searches), {len(failures)} failed")
    assert failures == []
    assert searches >= 20
    assert (volumes["indexes"] / "indexes" / "docs" / "meta.json").is_file()  # the index lives on its volume
    assert "Traceback" not in log.read_text()


def _weak_copy(model_dir: Path, target: Path) -> Path:
    """``model_dir`` with every token's embedding replaced by the first one: valid, but it barely aligns."""
    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415

    shutil.copytree(model_dir, target)
    model = transformers.BertModel.from_pretrained(target)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[:] = model.embeddings.word_embeddings.weight[0]
    model.save_pretrained(target)
    return target


def _loop(client: StreamingClient, trainer: tuple[list[str], dict[str, str]], store: Path, tmp_path: Path) -> None:
    """Trainer publishes and promotes version 2, then the README's rollback returns to version 1."""
    models: Callable[[], list[str]] = client.embedding_models
    wait_for(lambda: len(client.answers) >= 20, 60, "answers from version 1")
    out = _run(*trainer, tmp_path / "trainer.log", timeout=600)
    assert "tiny:2 is production: the gate against tiny:1 passed" in out
    wait_for(lambda: "tiny:2" in models(), 60, "the swap to tiny:2")
    at_two = len(models())
    wait_for(lambda: len(models()) >= at_two + 10, 60, "answers from version 2")
    xalign_store = str(Path(sys.executable).with_name("xalign-store"))
    _run([xalign_store, "--store", str(store), "rollback", "tiny"], {}, tmp_path / "rollback.log", timeout=60)
    wait_for(lambda: "tiny:1" in models()[at_two:], 60, "the rollback to tiny:1")
    back = len(models())
    wait_for(lambda: len(models()) >= back + 10, 60, "answers after the rollback")
    assert set(models()[back:]) == {"tiny:1"}
    first_two = models().index("tiny:2")
    assert set(models()[:first_two]) == {"tiny:1"}
