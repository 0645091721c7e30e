// The events page: every event with its schedule and VMs by state, deploy and archive,
// and the form that creates one (each field's rule written next to it).

import { ApiError, allPages, api } from "./api.js";
import { badge, button, field, fill, fmtTime, h, showFieldErrors, table, toast } from "./dom.js";

const REFRESH_MS = 5000;
const UP = ["running"];
const BUSY = ["cloning", "starting", "stopping", "migrating", "deleting"];
const BAD = ["error", "missing"];

/** VMs by state as one stacked bar and the same counts in words. */
export function vmSummary(counts, expected) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const parts = [
    ["up", UP], ["busy", BUSY], ["bad", BAD],
    ["other", Object.keys(counts).filter((s) => ![...UP, ...BUSY, ...BAD].includes(s))],
  ];
  const denominator = Math.max(total, expected || 0, 1);
  const segments = parts.map(([kind, states]) => {
    const n = states.reduce((sum, s) => sum + (counts[s] || 0), 0);
    const el = h("span", { class: `seg seg-${kind}` });
    el.style.width = `${((n / denominator) * 100).toFixed(1)}%`;
    return el;
  });
  const words = Object.entries(counts).sort().map(([s, n]) => `${n} ${s}`).join(", ") || "no VMs";
  return h("div", { class: "summary" },
    h("div", { class: "stack", role: "img", "aria-label": `VMs: ${words}` }, segments),
    h("span", { class: "summary-text", text: words }));
}

export async function deploy(ctx, event) {
  const op = await api(`/events/${event.id}/deploy`, { method: "POST" });
  toast(`Deploy of ${event.slug} queued.`);
  ctx.navigate(`/events/${event.id}`);
  return op;
}

export async function archive(ctx, event) {
  if (!confirm(`Archive ${event.slug}? Its VMs are stopped and deleted.`)) return null;
  const op = await api(`/events/${event.id}/archive`, { method: "POST" });
  toast(`Archive of ${event.slug} queued.`);
  ctx.navigate(`/events/${event.id}`);
  return op;
}

function eventRow(ctx, event) {
  const expected = event.participants * event.template_ids.length;
  const actions = ctx.can("admin")
    ? h("div", { class: "actions" },
        button("Deploy", () => deploy(ctx, event), { label: `Deploy ${event.slug}` }),
        button("Archive", () => archive(ctx, event), { label: `Archive ${event.slug}` }))
    : "";
  return [
    h("a", { href: `/console/events/${event.id}` }, h("strong", { text: event.slug }), " ", event.name),
    badge(event.status),
    h("span", {}, fmtTime(event.starts_at), h("br"), h("span", { class: "muted", text: `to ${fmtTime(event.ends_at)}` })),
    String(event.participants),
    vmSummary(event.vm_counts || {}, expected),
    actions,
  ];
}

export async function eventsPage(main, ctx) {
  const list = h("section", { "aria-label": "Event list" });
  const formSlot = h("section", { "aria-label": "New event" });
  const header = h("div", { class: "page-head" }, h("h1", { text: "Events" }),
    ctx.can("admin") ? button("New event", () => openForm(ctx, formSlot), { kind: "primary" }) : null);
  fill(main, header, formSlot, list);
  if (ctx.query.get("new") === "1" && ctx.can("admin")) await openForm(ctx, formSlot);
  const refresh = async () => {
    const { items } = await allPages("/events", {}, { signal: ctx.signal });
    items.sort((a, b) => (a.starts_at < b.starts_at ? 1 : -1));
    const columns = ["Event", "Status", "Schedule", "Participants", "VMs", "Actions"];
    fill(list, table("Events, newest start first", columns, items.map((e) => eventRow(ctx, e)),
      { empty: "No events yet." }));
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  ctx.signal.addEventListener("abort", () => clearInterval(timer));
}

function localValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

async function openForm(ctx, slot) {
  if (slot.firstChild) return slot.querySelector("input").focus();
  const { items: templates } = await allPages("/templates", {}, { signal: ctx.signal });
  const start = new Date(Date.now() + 3600e3);
  start.setMinutes(0, 0, 0);
  const input = (attrs) => h("input", attrs);
  const choices = h("fieldset", { id: "template_ids", class: "choices", "aria-describedby": "template_ids-hint template_ids-error" },
    h("legend", { text: "Templates" }),
    templates.filter((t) => t.status === "available").map((t) =>
      h("label", { class: "choice" }, h("input", { type: "checkbox", name: "template_ids", value: t.id }), ` ${t.name} (${t.vmid})`)),
    h("p", { class: "hint", id: "template_ids-hint", text: "1 to 20 templates: each participant gets one VM of each." }),
    h("p", { class: "error", id: "template_ids-error", "aria-live": "polite" }));
  const form = h("form", { class: "card form", novalidate: true },
    h("h2", { text: "New event" }),
    field("slug", "Slug", input({ required: true, pattern: "[a-z0-9_-]{4,8}", maxLength: 8, autocomplete: "off" }),
      "4 to 8 characters: lowercase letters, digits, _ and -. It starts every VM name (sec101-001-debian) and cannot change once deployed."),
    field("name", "Name", input({ required: true, maxLength: 128 }), "1 to 128 characters, shown to people."),
    field("description", "Description", h("textarea", { rows: 2, maxLength: 10000 }), "Optional, up to 10,000 characters."),
    field("starts_at", "Starts at", input({ type: "datetime-local", required: true, value: localValue(start) }),
      "Your local time. The event is deployed when it starts (or earlier with Deploy)."),
    field("ends_at", "Ends at", input({ type: "datetime-local", required: true, value: localValue(new Date(start.getTime() + 3 * 3600e3)) }),
      "Must be after the start. The event is archived after it ends: its VMs are deleted."),
    field("participants", "Participants", input({ type: "number", required: true, min: 1, max: 1000, value: 2 }),
      "1 to 1000: one set of VMs per participant."),
    choices,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary", text: "Create event" }),
      button("Cancel", () => fill(slot))));
  form.addEventListener("submit", (e) => { e.preventDefault(); submit(ctx, form); });
  fill(slot, form);
  form.querySelector("#slug").focus();
}

function formBody(form) {
  const value = (name) => form.querySelector(`#${name}`).value.trim();
  const when = (name) => (value(name) ? new Date(value(name)).toISOString() : "");
  return {
    slug: value("slug"),
    name: value("name"),
    description: value("description"),
    starts_at: when("starts_at"),
    ends_at: when("ends_at"),
    participants: Number(value("participants")),
    template_ids: [...form.querySelectorAll('input[name="template_ids"]:checked')].map((i) => i.value),
  };
}

async function submit(ctx, form) {
  const body = formBody(form);
  const local = {};
  if (!/^[a-z0-9_-]{4,8}$/.test(body.slug)) local.slug = "4 to 8 characters of a-z, 0-9, _ and -.";
  if (!body.name) local.name = "A name is required.";
  if (!body.template_ids.length) local.template_ids = "Choose at least one template.";
  if (body.starts_at && body.ends_at && body.ends_at <= body.starts_at) local.ends_at = "Must be after the start.";
  if (Object.keys(local).length) return showFieldErrors(form, local);
  try {
    const event = await api("/events", { method: "POST", body });
    toast(`Event ${event.slug} created.`);
    ctx.navigate(`/events/${event.id}`);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const errors = error.fieldErrors();
    if (!Object.keys(errors).length) errors.slug = error.message;
    showFieldErrors(form, errors);
  }
}
