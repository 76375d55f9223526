// Mining jobs (POST /v1/bitext/jobs): submit, poll the job's progress into a progress bar, then read all its
// pairs as JSON lines. Used for inputs past the synchronous route's limits, or when asked for.

import { ApiError, call, callJson } from "./api.js";

const POLL_MS = 400;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The stage a job is in and how far it is: its last reported stage, as done / total. */
export function stageOf(job) {
  const stages = job.progress || [];
  if (job.state === "succeeded") return { label: "done", fraction: 1 };
  if (stages.length === 0) return { label: job.state, fraction: 0 };
  const last = stages[stages.length - 1];
  const fraction = last.total > 0 ? Math.min(1, last.done / last.total) : 0;
  return { label: `${job.state}: ${last.stage} ${last.done.toLocaleString()} / ${last.total.toLocaleString()}`, fraction };
}

function show(view, job) {
  const { label, fraction } = stageOf(job);
  view.stage.textContent = `job ${job.id.slice(0, 8)} · ${label}`;
  view.progress.value = fraction;
  view.box.dataset.state = job.state;
  view.box.dataset.jobId = job.id;
}

async function pairsOf(jobId) {
  const response = await call("GET", `v1/bitext/jobs/${jobId}/pairs?format=jsonl`, undefined, "application/x-ndjson");
  const text = await response.text();
  return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

/**
 * Run `body` as a mining job; resolves to {job, pairs}. `view` holds the progress elements and a `cancelled()`
 * check: once it says so, the job is deleted (cancelled on the server) and the promise rejects.
 */
export async function runJob(body, view) {
  view.box.hidden = false;
  let job = await callJson("POST", "v1/bitext/jobs", body);
  show(view, job);
  while (!["succeeded", "failed", "cancelled"].includes(job.state)) {
    await sleep(POLL_MS);
    if (view.cancelled()) {
      job = await callJson("DELETE", `v1/bitext/jobs/${job.id}`);
      show(view, job);
      throw new ApiError(undefined, "job_cancelled", `mining job ${job.id} was cancelled`);
    }
    job = await callJson("GET", `v1/bitext/jobs/${job.id}`);
    show(view, job);
  }
  if (job.state !== "succeeded") {
    throw new ApiError(undefined, `job_${job.state}`, `mining job ${job.id} ${job.state}: ${job.error || "no reason given"}`);
  }
  return { job, pairs: await pairsOf(job.id) };
}
