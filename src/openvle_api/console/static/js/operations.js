// Recent operations with their durations and errors, and the last sync: its outcome,
// duration and what it found drifting (missing, unmanaged, adopted VMs, changes).

import { api, withQuery } from "./api.js";
import { ago, badge, between, button, fill, fmtDuration, fmtTime, h, table, toast } from "./dom.js";

const KINDS = ["event.deploy", "event.archive", "event.vm_deploy", "event.vm_archive", "vm.clone", "vm.power",
  "vm.migrate", "vm.delete", "template.create", "template.update", "template.delete", "sync"];
const DRIFT = [
  ["changes", "Changes written"], ["vms_updated", "VMs updated"], ["missing", "VMs missing"],
  ["unmanaged", "Unmanaged guests in the pool"], ["adopted", "VMs adopted"], ["unknown", "Guests unknown"],
  ["skipped", "Skipped (busy)"], ["lookups_failed", "Lookups failed"], ["pool_guests", "Guests in the pool"],
  ["resources", "Cluster resources"],
];

function targetLink(op) {
  if (op.target_type === "event") return h("a", { href: `/console/events/${op.target_id}`, text: `event ${op.target_id.slice(0, 8)}` });
  if (op.target_type === "vm") return h("a", { href: `/console/changelog?entity=vm&entity_id=${op.target_id}`, text: `vm ${op.target_id.slice(0, 8)}` });
  return `${op.target_type} ${op.target_id || ""}`;
}

function freshness(status) {
  if (!status) return null;
  if (!status.synced_at) return h("p", { text: "The cluster has not been synced yet: nodes, VM states and IPs appear after the first sync." });
  return h("p", {}, "The cluster was last synced ", ago(status.synced_at),
    ` (the periodic sync runs every ${status.interval_s} s; nodes, VM states and IPs are that fresh).`);
}

const syncStatus = (signal) => api("/system/sync", { signal }).catch(() => null);

function syncPanel(ctx, slot, sync, status) {
  const result = (sync && sync.result) || {};
  const duration = result.duration_s !== undefined ? fmtDuration(result.duration_s * 1000) : fmtDuration(between(sync && sync.started_at, sync && sync.finished_at));
  const now = ctx.can("admin") ? button("Sync now", async () => {
    const op = await api("/sync", { method: "POST" });
    toast("Sync queued.");
    for (let i = 0; i < 120 && !["succeeded", "failed"].includes((await api(`/operations/${op.id}`)).state); i++) {
      await new Promise((r) => setTimeout(r, 500));
    }
    await syncPanel(ctx, slot, await api(`/operations/${op.id}`), await syncStatus());
  }) : null;
  fill(slot,
    h("div", { class: "page-head" }, h("h2", { id: "sync-title", text: "Last sync" }), now),
    freshness(status),
    !sync ? h("p", { class: "muted", text: "No sync has been run on demand yet." })
      : h("div", {},
          h("p", {}, "On demand: ", badge(sync.state), ` finished ${fmtTime(sync.finished_at)} in ${duration}`),
          sync.error ? h("p", { class: "alert", role: "alert", text: `${sync.error.type}: ${sync.error.message}` }) : null,
          h("dl", { class: "facts drift" }, DRIFT.filter(([k]) => k in result).flatMap(([k, label]) =>
            [h("dt", { text: label }), h("dd", { text: String(result[k]) })]))));
}

export async function operationsPage(main, ctx) {
  const { signal } = ctx;
  const sync = h("section", { class: "card", "aria-labelledby": "sync-title" });
  const state = h("select", { id: "state" }, h("option", { value: "", text: "any" }),
    ["queued", "running", "succeeded", "failed"].map((s) => h("option", { value: s, text: s, selected: ctx.query.get("state") === s })));
  const kind = h("select", { id: "kind" }, h("option", { value: "", text: "any" }),
    KINDS.map((k) => h("option", { value: k, text: k, selected: ctx.query.get("kind") === k })));
  const list = h("section", { "aria-label": "Operation list" });
  const more = h("div");
  fill(main, h("h1", { text: "Operations and sync" }), sync,
    h("h2", { text: "Recent operations" }),
    h("form", { class: "filters", "aria-label": "Filter operations", onsubmit: (e) => e.preventDefault() },
      h("div", { class: "field inline" }, h("label", { for: "state", text: "State" }), state),
      h("div", { class: "field inline" }, h("label", { for: "kind", text: "Kind" }), kind)),
    list, more);
  const [last, status] = await Promise.all([api("/operations?kind=sync&limit=1", { signal }), syncStatus(signal)]);
  syncPanel(ctx, sync, last.items[0] || null, status);
  let ops = [];
  const load = async (cursor) => {
    const page = await api(withQuery("/operations", { state: state.value, kind: kind.value, limit: 50, cursor }), { signal });
    ops = cursor ? ops.concat(page.items) : page.items;
    const rows = ops.map((op) => [
      op.kind, targetLink(op), badge(op.state),
      op.progress.total ? `${op.progress.done} / ${op.progress.total}` : "",
      fmtDuration(between(op.started_at, op.finished_at)),
      op.error ? h("span", { class: "error-text", text: `${op.error.type}: ${op.error.message}` }) : "",
      ago(op.created_at),
    ]);
    fill(list, table("Operations, newest first", ["Kind", "Target", "State", "Progress", "Duration", "Error", "Created"], rows,
      { empty: "No operations match." }));
    fill(more, page.next_cursor ? button("Load more", () => load(page.next_cursor)) : null);
  };
  for (const el of [state, kind]) el.addEventListener("change", () => load(null));
  await load(null);
}
