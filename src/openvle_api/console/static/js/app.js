// The console's entry point: sign-in, the page router (History API under /console/),
// and what every page gets (`ctx`): the token's scope, the API's optional features, an
// AbortSignal that ends the page's streams and timers when the person navigates away.

import { api, features, takeTokenFromFragment, token } from "./api.js";
import { button, field, fill, h } from "./dom.js";
import { changelogPage } from "./changelog.js";
import { eventPage } from "./event.js";
import { eventsPage } from "./events.js";
import { nodesPage } from "./nodes.js";
import { operationsPage } from "./operations.js";
import { vmsPage } from "./vms.js";

const ROOT = "/console";
const ROUTES = [
  [/^\/events\/([^/]+)$/, eventPage, "Event"],
  [/^\/events\/?$/, eventsPage, "Events"],
  [/^\/vms\/?$/, vmsPage, "VMs"],
  [/^\/nodes\/?$/, nodesPage, "Nodes"],
  [/^\/operations\/?$/, operationsPage, "Operations"],
  [/^\/changelog\/?$/, changelogPage, "Changelog"],
];
const SCOPES = ["read", "operate", "admin"];

let current = null; // the AbortController of the page on screen
let me = null; // the signed-in token: {id, name, scope}

/** Go to a console path (`/events/...`, with a query string if any). */
export function navigate(path, { replace = false } = {}) {
  const url = ROOT + path;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

function route() {
  const path = location.pathname.slice(ROOT.length) || "/";
  for (const [pattern, page, title] of ROUTES) {
    const match = pattern.exec(path);
    if (match) return { page, title, params: match.slice(1).map(decodeURIComponent) };
  }
  return null;
}

async function render() {
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  const main = document.getElementById("main");
  if (!token.get()) return signIn(main);
  if (!me) {
    try {
      me = await api("/tokens/current");
    } catch (error) {
      token.clear();
      return signIn(main, error.status === 401 ? "That token is unknown, revoked or expired." : error.message);
    }
  }
  showWho();
  const found = route();
  if (!found) return navigate("/events", { replace: true });
  markNav();
  document.title = `${found.title} - OpenVLE console`;
  const ctx = {
    params: found.params,
    query: new URLSearchParams(location.search),
    me,
    can: (scope) => SCOPES.indexOf(me.scope) >= SCOPES.indexOf(scope),
    features: await features(),
    navigate,
    signal,
  };
  // A page left while it loads (a link followed before its first fetch answered) must not
  // write over the page that replaced it, whatever error its cancelled fetch ends with.
  if (signal.aborted) return;
  fill(main);
  try {
    await found.page(main, ctx);
  } catch (error) {
    if (error.name === "AbortError" || signal.aborted) return;
    fill(main, h("h1", { text: found.title }), h("p", { class: "alert", role: "alert", text: error.message }));
  }
}

function signIn(main, problem) {
  document.title = "Sign in - OpenVLE console";
  fill(document.getElementById("who"));
  const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: false });
  const form = h(
    "form",
    { class: "signin", onsubmit: (e) => { e.preventDefault(); token.set(input.value.trim()); me = null; render(); } },
    h("h1", { text: "Sign in" }),
    h("p", { text: "Paste an API token (openvle token create). It is kept in this browser tab only and sent to this server alone." }),
    problem ? h("p", { class: "alert", role: "alert", text: problem }) : null,
    field("token", "API token", input, "Read tokens see; operate tokens also start and stop VMs; admin tokens also deploy and archive events."),
    h("button", { type: "submit", class: "primary", text: "Sign in" }),
  );
  fill(main, form);
  input.focus();
}

function showWho() {
  const out = () => { token.clear(); me = null; render(); };
  fill(
    document.getElementById("who"),
    h("span", { text: `${me.name} (${me.scope})` }),
    button("Sign out", out, { kind: "link" }),
  );
}

function markNav() {
  for (const link of document.querySelectorAll("nav a")) {
    const active = location.pathname.startsWith(link.pathname);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// Links inside the console change the page without a reload (and keep the session).
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || link.getAttribute("href").startsWith("#")) return;
  if (link.origin !== location.origin || !link.pathname.startsWith(ROOT)) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || link.target) return;
  event.preventDefault();
  navigate(link.pathname.slice(ROOT.length) + link.search);
  document.getElementById("main").focus();
});
window.addEventListener("popstate", render);

takeTokenFromFragment();
render();
