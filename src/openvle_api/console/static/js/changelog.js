// The changelog of one entity (or of everything): each changed field, old and new value,
// who changed it (sync, operation, api) and when.

import { api, withQuery } from "./api.js";
import { badge, button, fill, fmtTime, h, table } from "./dom.js";

export async function changelogPage(main, ctx) {
  const q = ctx.query;
  const entity = h("select", { id: "entity" }, h("option", { value: "", text: "any" }),
    ["vm", "template", "event", "node"].map((e) => h("option", { value: e, text: e, selected: q.get("entity") === e })));
  const entityId = h("input", { id: "entity_id", value: q.get("entity_id") || "", size: 38, spellcheck: false });
  const list = h("section", { "aria-label": "Changes" });
  const more = h("div");
  const form = h("form", { class: "filters", "aria-label": "Filter the changelog" },
    h("div", { class: "field inline" }, h("label", { for: "entity", text: "Entity" }), entity),
    h("div", { class: "field inline" }, h("label", { for: "entity_id", text: "Id" }), entityId),
    h("button", { type: "submit", text: "Show" }));
  fill(main, h("h1", { text: "Changelog" }), form, list, more);
  let entries = [];
  const load = async (cursor) => {
    const params = { entity: entity.value, entity_id: entityId.value.trim() };
    const page = await api(withQuery("/changelog", { ...params, limit: 100, cursor }), { signal: ctx.signal });
    entries = cursor ? entries.concat(page.items) : page.items;
    history.replaceState(null, "", withQuery("/console/changelog", params));
    const rows = entries.map((c) => [
      fmtTime(c.time), `${c.entity} ${c.entity_id.slice(0, 8)}`, c.field,
      h("span", {}, h("code", { text: c.old ?? "-" }), " -> ", h("code", { text: c.new ?? "-" })),
      badge(c.source),
    ]);
    fill(list, table("Changes, oldest first", ["Time", "Entity", "Field", "Change", "Source"], rows, { empty: "No changes recorded." }));
    fill(more, page.next_cursor ? button("Load more", () => load(page.next_cursor)) : null);
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); load(null); });
  await load(null);
}
