// Small DOM and formatting helpers shared by the pages (no framework: elements are
// built with h() and text is always set as text, never parsed as HTML).

/** An element: `attrs` sets properties/attributes (`on*` adds listeners, `class`,
 * `text`, `aria-*`, `data-*`), children are nodes, strings, arrays or null. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name in el && !name.includes("-") && name !== "list") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function fmtTime(iso) {
  return iso ? TIME.format(new Date(iso)) : "";
}

/** "12 s ago", "3 min ago", ... for a timestamp; the exact time goes in a title. */
export function ago(iso) {
  if (!iso) return h("span", { text: "" });
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  const text =
    seconds < 60 ? `${Math.round(seconds)} s ago`
    : seconds < 3600 ? `${Math.round(seconds / 60)} min ago`
    : seconds < 86400 ? `${Math.round(seconds / 3600)} h ago`
    : fmtTime(iso);
  return h("time", { datetime: iso, title: fmtTime(iso), text });
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function between(start, end) {
  if (!start) return null;
  return (end ? new Date(end) : new Date()) - new Date(start);
}

export function fmtBytes(n) {
  const gib = n / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
}

/** A status word as a coloured badge (the word is always there: colour is not the only cue). */
export function badge(word) {
  return h("span", { class: `badge badge-${String(word).replace(/[^a-z_-]/g, "")}`, text: word });
}

/** A horizontal bar; `role` is "meter" for a load and "progressbar" for progress. */
export function bar(label, value, max, text, role = "meter") {
  const share = max > 0 ? Math.min(1, Math.max(0, value / max)) : 0;
  const level = share >= 0.9 ? "high" : share >= 0.7 ? "mid" : "low";
  const fillEl = h("span", { class: `bar-fill bar-${role === "meter" ? level : "progress"}` });
  fillEl.style.width = `${(share * 100).toFixed(1)}%`;
  return h(
    "div",
    { class: "bar-row" },
    h(
      "div",
      {
        class: "bar",
        role,
        "aria-label": label,
        "aria-valuemin": "0",
        "aria-valuemax": String(max),
        "aria-valuenow": String(value),
        "aria-valuetext": text,
      },
      fillEl,
    ),
    h("span", { class: "bar-text", text }),
  );
}

/** A table with a caption and column headers; `rows` are arrays of cells. The wrapper
 * scrolls sideways on narrow screens and can be scrolled with the keyboard. */
export function table(caption, columns, rows, { empty = "Nothing here yet." } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })));
  const body = rows.length
    ? rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))
    : [h("tr", {}, h("td", { colSpan: columns.length, class: "empty", text: empty }))];
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {}, h("caption", { text: caption }), h("thead", {}, head), h("tbody", {}, body)),
  );
}

/** A labelled form field with its rule explained below it (and room for an error). */
export function field(id, label, input, hint) {
  input.id = id;
  input.name = input.name || id;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  input.setAttribute("aria-describedby", `${hintId} ${errorId}`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    input,
    h("p", { class: "hint", id: hintId, text: hint || "" }),
    h("p", { class: "error", id: errorId, "aria-live": "polite" }),
  );
}

/** Show `errors` (field name -> message) next to the fields of `form`. */
export function showFieldErrors(form, errors) {
  for (const el of form.querySelectorAll(".error")) el.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  let first = null;
  for (const [name, message] of Object.entries(errors)) {
    const input = form.querySelector(`[name="${name}"]`) || form.querySelector(`#${name}`);
    const slot = form.querySelector(`#${name}-error`);
    if (slot) slot.textContent = message;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    }
  }
  if (first) first.focus();
}

/** A message in the polite live region at the bottom (errors stay until replaced). */
export function toast(message, kind = "info") {
  const region = document.getElementById("toast");
  fill(region, h("p", { class: `toast toast-${kind}`, text: message }));
  if (kind !== "error") setTimeout(() => region.firstChild && region.firstChild.remove(), 6000);
}

/** A button that runs `action` once at a time and reports its failure. */
export function button(text, action, { kind = "", label } = {}) {
  const el = h("button", { type: "button", class: kind, text, "aria-label": label });
  el.addEventListener("click", async () => {
    el.disabled = true;
    try {
      await action();
    } catch (error) {
      toast(error.message || String(error), "error");
    } finally {
      el.disabled = false;
    }
  });
  return el;
}
