// The JSON API as the console uses it: the session's token, requests, pages, and
// Server-Sent Events read through fetch (EventSource cannot send an Authorization header).

const KEY = "openvle.console.token";
export const API = "/api/v1";

/** The bearer token of this browser tab (sessionStorage: gone when the tab closes). */
export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** Move a `#token=...` fragment (openvle demo's console_url) into the session, and
 * take it out of the address bar and the history at once. */
export function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  token.set(decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}

/** A problem+json answer: `detail` is written for people; `errors` names the fields. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  /** The message of each invalid body field, by field name. */
  fieldErrors() {
    const out = {};
    for (const item of this.problem.errors || []) {
      const name = item.loc[item.loc.length - 1];
      out[name] = out[name] ? `${out[name]}; ${item.msg}` : item.msg;
    }
    return out;
  }
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const value = token.get();
  if (value) out.Authorization = `Bearer ${value}`;
  return out;
}

/** One API call; resolves to the parsed body, rejects with an ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  signal?.throwIfAborted(); // cancelled while the body was read: not an empty answer
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** `path` with the query parameters that are set. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** Every item of a paginated list (500 a page), up to `max` items. */
export async function allPages(path, params = {}, { signal, max = 5000 } = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await api(withQuery(path, { ...params, limit: 500, cursor }), { signal });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items, truncated: Boolean(cursor) };
}

/** Follow a Server-Sent Events stream, calling `onEvent(name, data)` per message,
 * until it ends or `signal` aborts it. */
export async function stream(path, onEvent, signal) {
  const response = await fetch(API + path, {
    headers: headers({ Accept: "text/event-stream" }),
    signal,
  });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const message = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(message, onEvent);
    }
  }
}

function dispatch(message, onEvent) {
  let name = "message";
  const data = [];
  for (const line of message.split("\n")) {
    if (line.startsWith("event: ")) name = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  if (data.length) onEvent(name, JSON.parse(data.join("\n")));
}

let openapi = null;

/** What this server's API offers beyond the console's baseline (read from its OpenAPI
 * document once): `identity` (a VM's identity state) and `plan` (an event's plan). */
export async function features() {
  openapi = openapi || fetch("/openapi.json").then((r) => (r.ok ? r.json() : {}));
  const doc = await openapi.catch(() => ({}));
  const vm = (doc.components && doc.components.schemas && doc.components.schemas.VmOut) || {};
  const props = vm.properties || {};
  const identity = ["identity", "identity_state"].find((name) => name in props) || null;
  const plan = Boolean(doc.paths && doc.paths[`${API}/events/{event_id}/plan`]);
  return { identity, plan };
}
