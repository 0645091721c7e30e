// One event: what it is, its latest deploy or archive live (the operation's event
// stream: progress, state and each VM's phase), a timeline of it, and each VM with its
// IPv4 or, when it failed, the reason and a retry.

import { allPages, api, stream } from "./api.js";
import { ago, badge, bar, between, button, fill, fmtDuration, fmtTime, h, table, toast } from "./dom.js";
import { archive, deploy, vmSummary } from "./events.js";
import { planPanel } from "./plan.js";

const BATCH = ["event.deploy", "event.archive"];
const FINISHED = ["succeeded", "failed"];

export async function eventPage(main, ctx) {
  const id = ctx.params[0];
  const { signal } = ctx;
  const [event, templates] = await Promise.all([
    api(`/events/${id}`, { signal }),
    allPages("/templates", {}, { signal }).then(({ items }) => new Map(items.map((t) => [t.id, t.name]))),
  ]);
  const view = { ctx, event, templates, op: null, rows: new Map(), seen: {}, pending: null };
  view.head = h("div");
  view.progress = h("section", { "aria-labelledby": "progress-title" });
  view.vms = h("section", { "aria-labelledby": "vms-title" });
  fill(main, view.head, ctx.features.plan ? planPanel(ctx, event) : null, view.progress, view.vms);
  await loadLatest(view);
}

async function loadLatest(view) {
  const { ctx, event } = view;
  const page = await api(`/operations?target=${event.id}&limit=10`, { signal: ctx.signal });
  view.op = page.items.find((op) => BATCH.includes(op.kind)) || null;
  view.rows.clear();
  const items = view.op
    ? await api(`/operations/${view.op.id}/vms`, { signal: ctx.signal })
    : (await allPages("/vms", { event_id: event.id }, { signal: ctx.signal })).items.map((vm) => ({ ...vm, phase: vm.status }));
  for (const item of items) view.rows.set(item.id, item);
  renderHead(view); // the actions appear once the page knows the latest operation
  render(view);
  if (view.op && !FINISHED.includes(view.op.state)) follow(view, view.op);
}

/** Follow the operation's stream until it ends, then read the final state once. */
async function follow(view, op) {
  view.op = op;
  render(view);
  try {
    await stream(`/operations/${op.id}/events`, (name, data) => onMessage(view, name, data), view.ctx.signal);
  } catch (error) {
    if (error.name === "AbortError") return;
    toast(`The live view stopped: ${error.message}`, "error");
  }
  if (view.ctx.signal.aborted) return;
  await refreshHead(view);
  render(view);
}

async function refreshHead(view) {
  try {
    view.event = await api(`/events/${view.event.id}`, { signal: view.ctx.signal });
    renderHead(view);
  } catch (error) {
    if (error.name !== "AbortError") toast(error.message, "error");
  }
}

function onMessage(view, name, data) {
  if (name === "vm") view.rows.set(data.id, data);
  else if (name === "vm_removed") view.rows.delete(data.id);
  else if (name === "state" || name === "progress") view.op = data;
  if (name === "state") refreshHead(view);
  if (name === "vm" && data.phase === "running") {
    view.seen.firstRunning = view.seen.firstRunning || data.updated_at;
  }
  if (!view.pending) view.pending = setTimeout(() => { view.pending = null; render(view); }, 100);
}

function renderHead(view) {
  const { ctx, event, templates } = view;
  const expected = event.participants * event.template_ids.length;
  const start = async (action) => {
    const op = await action(ctx, event);
    if (op) { view.rows.clear(); view.seen = {}; refreshHead(view); follow(view, op); }
  };
  fill(view.head,
    h("p", { class: "crumbs" }, h("a", { href: "/console/events", text: "Events" }), " / ", event.slug),
    h("div", { class: "page-head" },
      h("h1", {}, `${event.slug}: ${event.name} `, badge(event.status)),
      ctx.can("admin") ? h("div", { class: "actions" },
        button("Deploy", () => start(() => deploy({ ...ctx, navigate: () => {} }, event)), { kind: "primary" }),
        button("Archive", () => start(() => archive({ ...ctx, navigate: () => {} }, event)))) : null),
    h("dl", { class: "facts" },
      h("dt", { text: "Schedule" }), h("dd", { text: `${fmtTime(event.starts_at)} to ${fmtTime(event.ends_at)}` }),
      h("dt", { text: "Participants" }), h("dd", { text: String(event.participants) }),
      h("dt", { text: "Templates" }), h("dd", { text: event.template_ids.map((t) => templates.get(t) || t).join(", ") }),
      h("dt", { text: "VMs" }), h("dd", {}, vmSummary(event.vm_counts || {}, expected)),
      h("dt", { text: "More" }), h("dd", {},
        h("a", { href: `/console/vms?event_id=${event.id}`, text: "Power actions on its VMs" }), " · ",
        h("a", { href: `/console/changelog?entity=event&entity_id=${event.id}`, text: "Changelog" }))));
}

function render(view) {
  renderProgress(view);
  renderVms(view);
}

function renderProgress(view) {
  const { op } = view;
  if (!op) {
    fill(view.progress, h("h2", { id: "progress-title", text: "Progress" }), h("p", { text: "Not deployed yet." }));
    return;
  }
  const deploying = op.kind === "event.deploy";
  const phases = {};
  for (const row of view.rows.values()) phases[row.phase] = (phases[row.phase] || 0) + 1;
  const words = Object.entries(phases).sort().map(([p, n]) => `${n} ${p}`).join(", ");
  const total = op.progress.total || view.rows.size;
  const label = deploying ? "VMs running" : "VMs archived";
  fill(view.progress,
    h("h2", { id: "progress-title" }, `${deploying ? "Deploy" : "Archive"} `, badge(op.state)),
    bar(`${deploying ? "Deploy" : "Archive"} progress`, op.progress.done, total,
      `${op.progress.done} of ${total} ${label}`, "progressbar"),
    h("p", { class: "muted", text: words ? `Phases: ${words}` : "" }),
    op.error ? h("p", { class: "alert", role: "alert" }, h("strong", { text: `${op.error.type}: ` }), op.error.message) : null,
    timeline(view));
}

/** The deploy's milestones on one track, and the same as a list with times. */
function timeline(view) {
  const { op, rows } = view;
  const running = [...rows.values()].filter((r) => r.phase === "running").map((r) => r.updated_at).sort();
  const marks = [
    ["queued", op.created_at],
    ["started", op.started_at],
    ["first VM running", running[0] || view.seen.firstRunning],
    [op.kind === "event.deploy" ? "last VM running" : null, op.state === "succeeded" ? running[running.length - 1] : null],
    [op.state === "failed" ? "failed" : "finished", op.finished_at],
  ].filter(([name, when]) => name && when);
  const from = new Date(op.created_at).getTime();
  const span = Math.max(1, (op.finished_at ? new Date(op.finished_at) : new Date()).getTime() - from);
  const track = h("div", { class: "timeline-track", "aria-hidden": "true" },
    marks.map(([name, when]) => {
      const dot = h("span", { class: "timeline-mark", title: name });
      dot.style.left = `${Math.min(100, ((new Date(when).getTime() - from) / span) * 100).toFixed(1)}%`;
      return dot;
    }));
  const list = h("ol", { class: "timeline-list" }, marks.map(([name, when]) =>
    h("li", {}, h("strong", { text: name }), ` ${fmtTime(when)} (+${fmtDuration(between(op.created_at, when))})`)));
  return h("div", { class: "timeline" }, h("h3", { text: "Timeline" }), track, list);
}

function reason(view, row) {
  if (row.phase !== "failed") return "";
  const retry = view.ctx.can("admin")
    ? button("Retry", async () => {
        const op = await api(`/events/${view.event.id}/deploy`, { method: "POST" });
        toast("Deploying again: only what is missing or failed.");
        view.seen = {};
        follow(view, op);
      }, { label: `Retry ${row.name}` })
    : null;
  return h("div", { class: "reason" }, h("span", { text: row.error || "failed" }), retry);
}

function renderVms(view) {
  const rows = [...view.rows.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const cells = rows.map((row) => [
    h("a", { href: `/console/changelog?entity=vm&entity_id=${row.id}`, text: row.name, title: "Changelog of this VM" }),
    row.participant === null || row.participant === undefined ? "" : String(row.participant),
    view.templates.get(row.template_id) || "",
    row.node || "",
    badge(row.phase),
    row.ipv4 ? h("code", { text: row.ipv4 }) : (row.phase === "running" ? h("span", { class: "muted", text: "waiting for the agent" }) : ""),
    ago(row.updated_at),
    reason(view, row),
  ]);
  const columns = ["Name", "Participant", "Template", "Node", "Phase", "IPv4", "Last change", "Reason"];
  fill(view.vms, h("h2", { id: "vms-title", text: `VMs (${rows.length})` }),
    table("VMs of this event and where each stands", columns, cells, { empty: "No VMs." }));
}
