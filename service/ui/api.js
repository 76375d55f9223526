// The service's HTTP API as the page uses it: the key from sessionStorage as a Bearer header (never in a URL),
// and every failure turned into an ApiError carrying the error body's code and message.

const KEY_ITEM = "xalign.apiKey";

/** The API key typed into this tab ("" when none). */
export function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

/** Keep (or, when empty, forget) the key for this tab only. */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

/** A failed call: HTTP status (0: no answer), the body's code, message and param. */
export class ApiError extends Error {
  constructor(status, code, message, param = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

/** The API's URL for `path` ("v1/models"): beside /ui/, so a path prefix in front of the service is kept. */
export function apiUrl(path) {
  return new URL(`../${path}`, document.baseURI);
}

async function errorOf(response) {
  let detail = null;
  try {
    detail = (await response.json()).error;
  } catch {
    detail = null;
  }
  if (detail && typeof detail.message === "string") {
    return new ApiError(response.status, detail.code || detail.type || "error", detail.message, detail.param ?? null);
  }
  const text = response.statusText || "error";
  return new ApiError(response.status, "http_error", `HTTP ${response.status} ${text}: not the service's error body`);
}

/** Call the API; resolves to the Response when it is 2xx, else rejects with an ApiError. */
export async function call(method, path, body = undefined, accept = "application/json") {
  const headers = { Accept: accept };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const url = apiUrl(path);
  let response;
  try {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    response = await fetch(url, { method, headers, body: payload, cache: "no-store", credentials: "omit" });
  } catch (err) {
    throw new ApiError(0, "network_error", `${method} ${url.pathname} got no answer: ${err.message}`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** Call the API and parse its JSON answer. */
export async function callJson(method, path, body = undefined) {
  const response = await call(method, path, body);
  return response.status === 204 ? null : response.json();
}
