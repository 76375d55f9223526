"""deploy/*.yml against the Compose schema, and against what the images and the service actually provide."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from compose_file import COMPOSE, COMPOSE_GPU, REPO, interpolate, load, service

from xalign.service.settings import Settings

SCHEMA = REPO / "tests" / "data" / "schemas" / "compose-spec.json"
SHARED_SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
DOCKERFILE = REPO / "Dockerfile"


def _stages() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE))


def _scripts() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"])


def _validator() -> jsonschema.Draft7Validator:
    # The schema names draft-07 by a URI form jsonschema does not look up; say it outright.
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda p: p.name)
def test_valid_against_the_compose_schema(path: Path) -> None:
    _validator().validate(load(path))


def test_schema_is_the_shared_one() -> None:
    if not SHARED_SCHEMA.is_file():
        pytest.skip("no ../shared beside the checkout")
    assert SCHEMA.read_bytes() == SHARED_SCHEMA.read_bytes()


def test_the_schema_check_catches_a_mistake() -> None:
    broken = load(COMPOSE)
    broken["services"]["api"]["restart"] = ["always"]  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(broken)


def test_services_profiles_and_policies() -> None:
    services: dict[str, Any] = load(COMPOSE)["services"]
    assert set(services) == {"bootstrap", "api", "trainer", "prometheus"}
    assert services["trainer"]["profiles"] == ["train"] and services["prometheus"]["profiles"] == ["monitoring"]
    assert "profiles" not in services["api"] and "profiles" not in services["bootstrap"]
    api = services["api"]
    assert api["restart"] == "unless-stopped" and api["ports"] == ["${XALIGN_HTTP_PORT:-8000}:8000"]
    assert "/ready" in " ".join(api["healthcheck"]["test"])
    assert api["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
    assert services["bootstrap"]["restart"] == "no"


def test_build_targets_are_dockerfile_stages() -> None:
    targets = {
        s["build"]["target"] for f in (COMPOSE, COMPOSE_GPU) for s in load(f)["services"].values() if "build" in s
    }
    assert targets == {"serve", "train"}
    assert targets | {"model"} <= _stages()


def test_gpu_api_builds_serve_on_the_gpu_dependencies() -> None:
    # One serving stage on either base (Dockerfile, ARG SERVE_DEPS): the GPU file names the CUDA one.
    args = load(COMPOSE_GPU)["services"]["api"]["build"]["args"]
    assert args == {"SERVE_DEPS": "serve-deps-gpu"} and args["SERVE_DEPS"] in _stages()
    default = re.search(r"^ARG SERVE_DEPS=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert default is not None and default.group(1) == "serve-deps-cpu"
    assert {"serve-deps-cpu", "serve-deps-gpu"} <= _stages()
    # The CPU file passes the default outright (buildah resolves an ARG-named stage only when it is passed).
    assert load(COMPOSE)["services"]["api"]["build"]["args"] == {"SERVE_DEPS": "serve-deps-cpu"}


def test_commands_are_console_scripts_of_the_package() -> None:
    compose = load(COMPOSE)
    for name in ("bootstrap", "api", "trainer"):
        command = service(compose, name, {}).command
        assert command[0] in _scripts(), (name, command)


def test_api_environment_names_real_settings() -> None:
    # A typo in a variable name would be silently ignored by the service (extra="ignore").
    env = service(load(COMPOSE), "api", {}).environment
    fields = {f"XALIGN_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    gpu_env = load(COMPOSE_GPU)["services"]["api"]["environment"]
    assert set(gpu_env) <= fields


def test_api_environment_defaults_parse_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in service(load(COMPOSE), "api", {}).environment.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.store == Path("/store") and settings.port == 8000 and settings.api_keys == []
    assert settings.poll_interval_s == 10 and settings.threads is None


def test_stores_and_mounts() -> None:
    compose = load(COMPOSE)
    mounts = {
        name: {v.target: v for v in service(compose, name, {}).volumes} for name in ("bootstrap", "api", "trainer")
    }
    assert mounts["api"]["/store"].read_only  # only bootstrap and trainer publish
    assert not mounts["bootstrap"]["/store"].read_only and not mounts["trainer"]["/store"].read_only
    assert {m["/store"].source for m in mounts.values()} == {"store"}  # one shared store volume
    assert mounts["trainer"]["/data"].read_only
    assert set(compose["volumes"]) >= {"store", "indexes", "runs", "cache"}


def test_prometheus_scrapes_the_api_metrics() -> None:
    import yaml  # noqa: PLC0415

    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    job = config["scrape_configs"][0]
    # Every replica of `--scale api=N`: the service name resolves to each on the compose network.
    assert job["metrics_path"] == "/metrics" and "static_configs" not in job
    assert job["dns_sd_configs"] == [{"names": ["api"], "type": "A", "port": 8000, "refresh_interval": "15s"}]


def test_eval_data_context_defaults_to_an_existing_folder() -> None:
    # Without XALIGN_EVAL_DATA the build must still find its `evaldata` context (an empty stand-in).
    contexts = [
        s["build"]["additional_contexts"]["evaldata"]
        for f in (COMPOSE, COMPOSE_GPU)
        for s in load(f)["services"].values()
        if "additional_contexts" in s.get("build", {})
    ]
    assert len(contexts) == 3  # bootstrap and api (one image), and the GPU api
    for context in contexts:
        assert (COMPOSE.parent / interpolate(context, {})).is_dir()
    assert "evaldata" in _stages()
