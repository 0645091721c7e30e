// The cluster's nodes as the last sync saw them: online or not, CPU and memory in use
// (a load bar each), and how many of our VMs each holds.

import { allPages } from "./api.js";
import { ago, badge, bar, fill, fmtBytes, h } from "./dom.js";

const REFRESH_MS = 10000;

function card(node) {
  const cores = node.cpu * node.maxcpu;
  const cpuText = `${Math.round(node.cpu * 100)}% of ${node.maxcpu} cores (${cores.toFixed(1)} in use)`;
  const memText = `${fmtBytes(node.mem)} of ${fmtBytes(node.maxmem)}`;
  return h("article", { class: "card node", "aria-labelledby": `node-${node.name}` },
    h("h2", { id: `node-${node.name}` }, `${node.name} `, badge(node.status)),
    h("p", { class: "label", text: "CPU" }),
    bar(`CPU of ${node.name}`, Math.round(node.cpu * 1000) / 10, 100, cpuText),
    h("p", { class: "label", text: "Memory" }),
    bar(`Memory of ${node.name}`, node.mem, node.maxmem, memText),
    h("p", {}, h("a", { href: `/console/vms?node=${encodeURIComponent(node.name)}`, text: `${node.vms} VMs of ours` })),
    h("p", { class: "muted" }, "Changed ", ago(node.updated_at)));
}

export async function nodesPage(main, ctx) {
  const grid = h("div", { class: "grid" });
  fill(main, h("h1", { text: "Nodes" }),
    h("p", { class: "muted", text: "As the last sync saw them (every minute by default)." }), grid);
  const refresh = async () => {
    const { items } = await allPages("/nodes", {}, { signal: ctx.signal });
    fill(grid, items.length ? items.map(card) : h("p", { text: "No nodes yet: the first sync has not run." }));
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  ctx.signal.addEventListener("abort", () => clearInterval(timer));
}
