// Pieces shared by the panels.

import { h, fill, uid } from "../dom.js";

/** An error box with a title and the server's message, as text. */
export function errorBox(title, message) {
  return h(
    "div",
    { class: "notice error", role: "alert" },
    h("strong", { text: title }),
    message ? h("span", { text: message }) : null,
  );
}

/**
 * A card: <section class="card ..."> with a header holding the title and `tools`, and a body
 * element of class `bodyClass`. Returns {section, body}.
 */
export function card({ title, span, bodyClass, tools = null }) {
  const id = `md-${bodyClass}-title`;
  const body = h("div", { class: bodyClass });
  const section = h(
    "section",
    { class: `card${span ? " " + span : ""}`, "aria-labelledby": id },
    h("header", { class: "card-head" }, h("h2", { id, text: title }), tools),
    body,
  );
  return { section, body };
}

/**
 * Shows the states every loading panel has: {loading} says `loadingText` (or, with
 * `keepWhileLoading`, keeps what is shown and dims it), {error} replaces the body with an error
 * box titled `errorTitle`, {empty} with a muted line. Returns true when `data` was one of those.
 */
export function showState(body, data, { loadingText, errorTitle, keepWhileLoading = false }) {
  body.classList.toggle("loading", Boolean(data.loading) && keepWhileLoading);
  if (data.loading) {
    if (!keepWhileLoading || !body.childElementCount) {
      fill(body, h("p", { class: "muted loading-text", text: loadingText }));
    }
    return true;
  }
  if (data.error !== undefined) {
    fill(body, errorBox(errorTitle, data.error));
    return true;
  }
  if (data.empty !== undefined) {
    fill(body, h("p", { class: "muted", text: data.empty }));
    return true;
  }
  return false;
}

/**
 * A group of radio buttons ([[value, label], ...]) with `current` checked; onSelect(value)
 * runs when the user picks another.
 */
export function segmented(ariaLabel, options, current, onSelect) {
  const group = h("div", { class: "segmented", role: "radiogroup", "aria-label": ariaLabel });
  const name = uid("seg");
  for (const [value, label] of options) {
    const input = h("input", {
      type: "radio",
      name,
      value,
      checked: current === value,
      onchange: () => {
        if (input.checked) onSelect(value);
      },
    });
    group.append(h("label", { class: "seg" }, input, h("span", { text: label })));
  }
  return group;
}
