// Every VM, filtered by event, template, node, status or a search, with power actions
// (operate scope) for one VM or the selected ones.

import { allPages, api, withQuery } from "./api.js";
import { ago, badge, button, fill, h, table, toast } from "./dom.js";

const STATUSES = ["cloning", "stopped", "starting", "running", "paused", "stopping", "migrating", "deleting", "error", "missing"];
const ACTIONS = [["start", "Start"], ["shutdown", "Shut down"], ["stop", "Stop"], ["restart", "Restart"]];
const FILTERS = ["event_id", "template_id", "node", "status"];
const WAIT_MS = 500;
const WAIT_ROUNDS = 240;

function select(id, label, options, value) {
  return h("div", { class: "field inline" },
    h("label", { for: id, text: label }),
    h("select", { id, name: id },
      h("option", { value: "", text: "any" }),
      options.map(([v, text]) => h("option", { value: v, text, selected: v === value }))));
}

/** Wait until these operations finished (bounded), so the list shows their outcome. */
async function settle(ids, signal) {
  for (let round = 0; round < WAIT_ROUNDS && ids.length; round++) {
    await new Promise((resolve) => setTimeout(resolve, WAIT_MS));
    if (signal.aborted) return [];
    const ops = await Promise.all(ids.map((id) => api(`/operations/${id}`, { signal })));
    const failed = ops.filter((op) => op.state === "failed");
    if (ops.every((op) => ["succeeded", "failed"].includes(op.state))) return failed;
  }
  return [];
}

function identityOf(vm, name) {
  const value = vm[name];
  if (!value) return "";
  return badge(typeof value === "string" ? value : value.state || JSON.stringify(value));
}

export async function vmsPage(main, ctx) {
  const { signal } = ctx;
  const [events, templates, nodes] = await Promise.all(
    ["/events", "/templates", "/nodes"].map((p) => allPages(p, {}, { signal }).then((r) => r.items)));
  const slugs = new Map(events.map((e) => [e.id, e.slug]));
  const names = new Map(templates.map((t) => [t.id, t.name]));
  const q = ctx.query;
  const search = h("input", { type: "search", value: q.get("q") || "" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter VMs", onsubmit: (e) => e.preventDefault() },
    select("event_id", "Event", events.map((e) => [e.id, e.slug]), q.get("event_id")),
    select("template_id", "Template", templates.map((t) => [t.id, t.name]), q.get("template_id")),
    select("node", "Node", nodes.map((n) => [n.name, n.name]), q.get("node")),
    select("status", "Status", STATUSES.map((s) => [s, s]), q.get("status")),
    h("div", { class: "field inline" }, h("label", { for: "q", text: "Search" }), Object.assign(search, { id: "q", name: "q", placeholder: "name, participant or IPv4" })));
  const toolbar = h("div", { class: "toolbar", "aria-label": "Actions on the selected VMs", role: "group" });
  const list = h("section", { "aria-label": "VM list" });
  fill(main, h("div", { class: "page-head" }, h("h1", { text: "VMs" })), form, ctx.can("operate") ? toolbar : null, list);
  let vms = [];
  const selected = new Set();

  const params = () => Object.fromEntries(FILTERS.map((f) => [f, form.querySelector(`#${f}`).value]));
  const load = async () => {
    const { items, truncated } = await allPages("/vms", params(), { signal });
    vms = items;
    history.replaceState(null, "", withQuery("/console/vms", { ...params(), q: search.value }));
    show(truncated);
  };
  const act = async (targets, action) => {
    const ops = await Promise.all(targets.map((vm) => api(`/vms/${vm.id}/${action}`, { method: "POST" })));
    toast(`${ACTIONS.find(([a]) => a === action)[1]}: ${targets.length} VM(s) queued.`);
    await load();
    const failed = await settle(ops.map((op) => op.id), signal);
    if (failed.length) toast(`${failed.length} failed: ${failed[0].error.message}`, "error");
    await load();
  };
  const rowActions = (vm) => {
    if (!ctx.can("operate")) return "";
    const up = ["running", "paused"].includes(vm.status);
    const pick = up ? ACTIONS.filter(([a]) => a === "shutdown" || a === "stop") : vm.status === "stopped" ? ACTIONS.filter(([a]) => a === "start") : [];
    return h("div", { class: "actions" }, pick.map(([a, text]) => button(text, () => act([vm], a), { label: `${text} ${vm.name}` })));
  };
  const show = (truncated) => {
    const needle = search.value.trim().toLowerCase();
    const shown = vms.filter((vm) => !needle || [vm.name, String(vm.participant ?? ""), vm.ipv4 || ""].some((v) => v.toLowerCase().includes(needle)));
    const columns = ["Select", "Name", "Participant", "Event", "Template", "Node", "Status", "IPv4",
      ...(ctx.features.identity ? ["Identity"] : []), "Last change", "Actions"];
    const rows = shown.map((vm) => [
      h("input", { type: "checkbox", checked: selected.has(vm.id), "aria-label": `Select ${vm.name}`,
        onchange: (e) => { if (e.target.checked) selected.add(vm.id); else selected.delete(vm.id); } }),
      h("a", { href: `/console/changelog?entity=vm&entity_id=${vm.id}`, text: vm.name, title: "Changelog of this VM" }),
      vm.participant === null ? "" : String(vm.participant),
      vm.event_id ? h("a", { href: `/console/events/${vm.event_id}`, text: slugs.get(vm.event_id) || "event" }) : "",
      names.get(vm.template_id) || "",
      vm.node || "",
      badge(vm.status),
      vm.ipv4 ? h("code", { text: vm.ipv4 }) : "",
      ...(ctx.features.identity ? [identityOf(vm, ctx.features.identity)] : []),
      ago(vm.updated_at),
      rowActions(vm),
    ]);
    const note = truncated ? h("p", { class: "muted", text: "Only the first 5000 VMs are listed: narrow the filters." }) : null;
    fill(list, note, table(`VMs (${shown.length} of ${vms.length})`, columns, rows, { empty: "No VMs match." }));
  };
  fill(toolbar, h("span", { text: "Selected VMs: " }),
    ACTIONS.map(([a, text]) => button(text, () => {
      const targets = vms.filter((vm) => selected.has(vm.id));
      if (!targets.length) return toast("Select VMs first (the boxes in the first column).");
      return act(targets, a);
    })));
  form.addEventListener("change", (e) => { if (e.target !== search) load(); });
  search.addEventListener("input", () => show(false));
  await load();
}
