"""Service settings: every field is an ``XALIGN_`` environment variable and an ``xalign-serve`` flag."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xalign.runtime.session import Spinning


class Settings(BaseSettings):
    """Typed configuration of the service, read when the app is built, never at import time."""

    # env_ignore_empty: compose passes `${XALIGN_X:-}` as an empty string when unset; that means "default".
    model_config = SettingsConfigDict(env_prefix="XALIGN_", extra="ignore", env_ignore_empty=True)

    store: Path = Field(default=Path("store"), description="model store folder")
    host: str = Field(default="127.0.0.1", description="address to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="port to listen on")
    models: list[str] = Field(
        default_factory=list,
        description="models to serve (name, name:VERSION or name@ALIAS); empty: every model in the store",
    )
    default_model: str | None = Field(
        default=None,
        description="model for requests that name none (name, name:VERSION or name@ALIAS); "
        "unset: the first served dual encoder (a Backpack only when named here)",
    )
    variant: str = Field(
        default="auto",
        description="ONNX variant to load: auto (int8 on CPU, fp16 on a GPU, where a version publishes it; else "
        "fp32), fp32, int8 or fp16",
    )
    threads: int | None = Field(default=None, ge=1, description="onnxruntime intra-op threads (default: all cores)")
    # Measured by benchmarks/lanes.py (e5-small, 2 CPU cores): two single-threaded runs side by side embed
    # 1.07-1.14x the sentences/s of one two-threaded session on a quiet machine, 1.25-1.38x with other work on
    # the cores (an op split over threads waits for its slowest part, and a preempted thread stalls it); a lone
    # short text still runs multi-threaded (9.1 vs 5.3 ms fp32). The price: a second session in memory.
    lanes: int | None = Field(
        default=None,
        ge=1,
        description="batches run side by side when several are ready, each single-threaded on a second session "
        "(default: the threads setting, else all cores; a GPU always runs one; 1: one session, one batch at a time, "
        "and no second copy of the model in memory)",
    )
    prefer_gpu: bool = Field(default=True, description="use CUDA when onnxruntime-gpu sees a GPU")
    ort_spinning: Spinning = Field(
        default="run",
        description="how idle onnxruntime threads wait: busy-wait always, only within a run (sleep between batches, "
        "so request handling gets the cores), or never",
    )
    max_inputs_per_request: int = Field(default=2048, ge=1, description="most texts in one request")
    max_chars_per_input: int = Field(default=50_000, ge=1, description="most characters in one text")
    batch_size: int = Field(default=32, ge=1, description="most texts in one inference batch")
    max_batch_tokens: int = Field(default=8192, ge=1, description="token budget of one inference batch")
    # The batch cost model (service/engine/batch_plan.py): e5-small's constants on 2 CPU cores, measured by
    # benchmarks/batch_cost.py (benchmarks/results/batch_cost.json).
    batch_overhead_tokens: float = Field(
        default=64.0, ge=0, description="estimated fixed cost of one inference batch, in padded tokens"
    )
    batch_attention_tokens: float = Field(
        default=256.0, gt=0, description="length at which attention costs as much as the token-wise layers"
    )
    max_wait_ms: float = Field(default=2.0, ge=0, description="longest a request waits for others to batch with")
    # Measured by benchmarks/request_path.py (e5-small, 2 CPU cores): the two thread wake-ups of a run on the
    # inference thread cost a one-sentence request 0.4-0.6 ms; run on the event loop they cost ~0.2 ms. While
    # the loop runs it nothing else is served, so only a lone request (nothing else open) with a short batch does.
    inline_max_tokens: int = Field(
        default=128,
        ge=0,
        description="a lone request's batch of at most this many padded tokens runs on the event loop's thread, "
        "without the hand-over to the inference thread (0: never)",
    )
    max_queue: int = Field(default=1024, ge=1, description="queued texts per model before answering 429")
    max_queue_tokens: int = Field(
        default=65_536, ge=1, description="queued tokens per model before answering 429 (reserved at admission)"
    )
    max_tokens_per_request: int = Field(
        default=65_536, ge=1, description="most tokens in one request, both mining sides together (413 above)"
    )
    queue_timeout_s: float = Field(
        default=30.0, ge=0, description="work that cannot start within this many seconds answers 503 (0: no limit)"
    )
    # A token bound alone is hardware-blind: 65k tokens are well under a second on a GPU, ~10 s on two CPU cores.
    # 2 s, not more: the estimate counts inference time only, and under contention (request handling, clients on
    # the same cores) real waits ran 2-3x over it: 5 s gave mining p50 17 s, 2 s gave 9 s
    # (benchmarks/results/overload.md).
    max_queue_wait_s: float = Field(
        default=2.0,
        ge=0,
        description="429 while the queued work would take longer than this at the measured throughput (0: no limit)",
    )
    max_concurrent_senses: int = Field(default=4, ge=1, description="senses requests computed at once (429 above)")
    max_body_bytes: int = Field(default=8 << 20, ge=1, description="largest request body in bytes (413 above)")
    keep_alive_timeout_s: float = Field(
        default=5.0, gt=0, description="seconds a kept-alive connection may sit idle between requests; closed after"
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="seconds a request's headers may take to arrive (from the connection's start or the request's "
        "first byte); 408 and close after",
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="seconds a request's body may take to arrive after its headers; 408 and close"
    )
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, description="seconds a stopping server waits for open requests before closing them"
    )
    data_dir: Path = Field(default=Path("data"), description="folder of the persistent FAISS indexes")
    # A snapshot rewrites the whole FAISS index (1.5 GB for 1M 384-d vectors), so rows alone would either
    # snapshot big flat indexes too often or leave minutes of HNSW building to replay; the two bounds together
    # keep the replay at start short for every kind (service/search/snapshot.py).
    index_snapshot_rows: int = Field(default=100_000, ge=0, description="snapshot an index per N new rows (0: at stop)")
    index_snapshot_build_s: float = Field(default=30.0, ge=0, description="or every N s of FAISS adds (0: not by time)")
    # Mining jobs (POST /v1/bitext/jobs, service/jobs/): corpus-sized inputs beside live traffic.
    jobs_dir: Path | None = Field(
        default=None, description="folder whose files mining jobs may read (unset: <data_dir>/jobs-input)"
    )
    max_concurrent_jobs: int = Field(default=1, ge=1, description="mining jobs run at once (the others queue)")
    max_queued_jobs: int = Field(default=16, ge=0, description="mining jobs waiting to run before answering 429")
    max_job_texts_per_side: int = Field(
        default=1_000_000, ge=1, description="most lines per side of a mining job read from files (413 above)"
    )
    job_embed_chunk: int = Field(
        default=32, ge=1, description="texts a mining job queues for inference at once (small: requests interleave)"
    )
    job_shard_size: int = Field(default=2048, ge=1, description="texts per embedding shard of a mining job")
    job_knn_chunk_rows: int = Field(default=4096, ge=1, description="rows per block of a mining job's exact kNN")
    poll_interval_s: float = Field(
        default=10.0, ge=0, description="seconds between checks of the store for new versions (0: never)"
    )
    api_keys: list[str] = Field(default_factory=list, description="keys with read scope; empty: no key needed")
    admin_api_keys: list[str] = Field(
        default_factory=list,
        description="keys with admin scope (reload, index changes); empty: admin routes are open only while "
        "api_keys is empty too, else closed to everyone",
    )
    log_level: str = Field(default="info", description="log level: debug, info, warning, error")
    cors_allow_origins: list[str] = Field(
        default_factory=list,
        description="origins a browser may call the API from (e.g. https://app.example.com, or * for any); "
        "empty: no CORS headers at all",
    )
    tracing: bool = Field(
        default=False,
        description="an OpenTelemetry server span per request (extra 'tracing'); exporters as OTEL_* configure them",
    )
    tracing_service_name: str = Field(
        default="xalign",
        description="service.name of the tracer provider xalign sets up (OTEL_TRACES_EXPORTER=console)",
    )

    @model_validator(mode="after")
    def _default_is_served(self) -> Settings:
        # A default outside the configured models would never be loaded: refuse it at start, not per request.
        names = {m.partition("@")[0].partition(":")[0] for m in self.models}
        default = (self.default_model or "").partition("@")[0].partition(":")[0]
        if self.default_model is not None and names and default not in names:
            raise ValueError(f"default_model {self.default_model!r} is not one of models {sorted(names)}")
        return self


def jobs_input_dir(settings: Settings) -> Path:
    """The folder mining jobs read their files from: ``jobs_dir``, else ``<data_dir>/jobs-input``."""
    return settings.jobs_dir if settings.jobs_dir is not None else settings.data_dir / "jobs-input"


def env_name(field: str) -> str:
    """The environment variable of a setting (``admin_api_keys`` → ``XALIGN_ADMIN_API_KEYS``)."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()
