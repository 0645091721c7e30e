// An event's plan (POST /events/{id}/plan), shown only when the API offers it: whether
// the event fits the cluster, the problems found, and the figures per node.

import { api } from "./api.js";
import { badge, button, fill, h, table } from "./dom.js";

function problemText(problem) {
  if (typeof problem === "string") return problem;
  return problem.detail || problem.message || problem.msg || JSON.stringify(problem);
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function nodesTable(nodes) {
  const list = Array.isArray(nodes)
    ? nodes
    : Object.entries(nodes || {}).map(([name, figures]) => ({ name, ...figures }));
  if (!list.length) return null;
  const columns = [...new Set(list.flatMap((n) => Object.keys(n)))];
  const rows = list.map((n) => columns.map((c) => cellText(n[c])));
  return table("The plan's figures per node", columns, rows);
}

export function render(slot, plan) {
  const problems = plan.problems || [];
  fill(slot,
    h("p", {}, "Fits the cluster: ", badge(plan.fits ? "fits" : "does-not-fit"),
      plan.fits ? "" : h("span", { class: "muted", text: " (see the problems below)" })),
    problems.length
      ? h("ul", { class: "problems" }, problems.map((p) => h("li", { text: problemText(p) })))
      : h("p", { class: "muted", text: "No problems found." }),
    nodesTable(plan.nodes || plan.per_node));
}

export function planPanel(ctx, event) {
  const slot = h("div", { "aria-live": "polite" });
  const check = async () => {
    render(slot, await api(`/events/${event.id}/plan`, { method: "POST", signal: ctx.signal }));
  };
  return h("section", { class: "card", "aria-labelledby": "plan-title" },
    h("div", { class: "page-head" }, h("h2", { id: "plan-title", text: "Plan" }),
      button("Check the plan", check)),
    h("p", { class: "muted", text: "What a deploy would need on each node, and whether it fits, before anything is cloned." }),
    slot);
}
