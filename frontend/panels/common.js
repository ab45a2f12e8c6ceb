// Pieces shared by the panels.

import { h, classLabel, fill, isNum, uid } from "../dom.js";

/**
 * Above this many classes the tab switches to its many-class views: an overview heatmap instead
 * of the whole confusion table, the per-class table worst first, and class pickers with a search
 * box.
 */
export const MANY_CLASSES = 30;

/** The page's heading: the tab's name and, below it, `subtitle`. */
export function pageHead(subtitle) {
  return h(
    "header",
    { class: "page-head" },
    h(
      "div",
      null,
      h("h1", { text: "Metrics diagnostics" }),
      h("p", { class: "subtitle", text: subtitle }),
    ),
  );
}

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
  const id = uid(`${bodyClass}-title`); // unique: the HTML report shows the panels of each run
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

/**
 * A class picker: a <select> of the class names (aria-label `ariaLabel`) and, above
 * MANY_CLASSES classes, a search box before it that narrows the options to the names holding
 * its text (case-insensitive; the selected class stays listed); Enter in the box picks the first
 * match and ArrowDown moves to the list. onSelect(classIndex) runs on the user's choice.
 * Returns {element, select, update(names, index)}.
 */
export function classPicker({ id, ariaLabel, onSelect }) {
  let names = [];
  let index = 0;
  const select = h("select", {
    id,
    "aria-label": ariaLabel,
    onchange: () => onSelect(Number(select.value)),
  });
  const search = h("input", {
    type: "search",
    class: "class-search",
    placeholder: "find a class",
    "aria-label": `Search: ${ariaLabel}`,
    oninput: () => fillOptions(),
    onkeydown: (evt) => {
      if (evt.key === "Enter") {
        evt.preventDefault();
        const first = matches().find((i) => i !== index) ?? matches()[0];
        if (first !== undefined && first !== index) onSelect(first);
      } else if (evt.key === "ArrowDown") {
        evt.preventDefault();
        select.focus();
      }
    },
  });
  const element = h("span", { class: "class-picker" }, search, select);

  function matches() {
    const query = search.value.trim().toLowerCase();
    const all = names.map((_, i) => i);
    if (!query) return all;
    return all.filter((i) => String(names[i]).toLowerCase().includes(query));
  }

  let listed = ""; // the names and indices the options show now
  function fillOptions() {
    const shown = matches();
    if (!shown.includes(index) && index < names.length) shown.unshift(index);
    const key = JSON.stringify([names, shown]);
    if (key !== listed) {
      select.replaceChildren(
        ...shown.map((i) => h("option", { value: String(i), text: names[i] })),
      );
      listed = key;
    }
    select.value = String(index);
  }

  function update(classNames, classIndex) {
    names = classNames.map(String);
    index = classIndex;
    search.hidden = names.length <= MANY_CLASSES;
    if (search.hidden) search.value = "";
    fillOptions();
  }

  return { element, select, update };
}

const IMAGE_PREFIX = "data:image/png;base64,";

/**
 * An example's preview from a route (`null`, `{text}` or `{image}`): the text as text, an
 * image as an <img> whose src is only ever a PNG data URI (anything else is left out), else
 * an em dash.
 */
function examplePreview(preview) {
  if (preview && typeof preview.text === "string") {
    return h("span", { class: "preview-text", text: preview.text });
  }
  if (preview && typeof preview.image === "string" && preview.image.startsWith(IMAGE_PREFIX)) {
    const img = h("img", { class: "preview-image", alt: "preview" });
    img.src = preview.image;
    return img;
  }
  return h("span", { class: "muted", text: "\u2014" });
}

/**
 * A scrolling table of examples: class `className`, one row per entry of `examples` (an
 * answer's list): its preview, its id, then the cells `cells(example)` returns under
 * `headings`; without examples, a muted line saying `emptyText`.
 */
export function examplesTable({ className, ariaLabel, headings, examples, cells, emptyText }) {
  if (!examples.length) return h("p", { class: "muted", text: emptyText });
  const rows = examples.map((e) =>
    h(
      "tr",
      null,
      h("td", { class: "preview" }, examplePreview(e.preview)),
      h("td", { class: "example-id", text: String(e.id) }),
      cells(e),
    ),
  );
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: className, "aria-label": ariaLabel },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["Preview", "Id", ...headings].map((text) => h("th", { scope: "col", text })),
        ),
      ),
      h("tbody", null, rows),
    ),
  );
}

/**
 * The row indices of `per` in the order of column `key` ("name" or a metric), `dir` 1
 * ascending or -1 descending: undefined values last either way, ties in class order.
 */
export function sortedIndices(per, key, dir) {
  const value = (i) => (key === "name" ? classLabel(per[i].name, i) : per[i][key]);
  const defined = (v) => (key === "name" ? true : isNum(v));
  return per
    .map((_, i) => i)
    .sort((a, b) => {
      const va = value(a);
      const vb = value(b);
      if (defined(va) !== defined(vb)) return defined(va) ? -1 : 1;
      if (defined(va) && va !== vb) {
        const order = key === "name" ? va.localeCompare(vb, undefined, { numeric: true }) : va - vb;
        if (order !== 0) return dir * order;
      }
      return a - b;
    });
}

/**
 * The header cells of a sortable table: a <th> per column ({key, label, num, title,
 * firstDir, unsorted}) holding a sort button (data-sort = key; an `unsorted` column has its
 * label alone); `order` ({key, dir}, dir 1 ascending or -1 descending) marks its column
 * (aria-sort, an arrow). A click calls onSort({key, dir}): the marked column reversed, another
 * in its `firstDir` (default ascending).
 */
export function sortHeads(columns, order, onSort) {
  return columns.map((col) => {
    const cls = col.num ? "num" : "";
    if (col.unsorted) return h("th", { scope: "col", class: cls, text: col.label });
    const active = Boolean(order) && order.key === col.key;
    const ariaSort = active ? (order.dir > 0 ? "ascending" : "descending") : "none";
    return h(
      "th",
      { scope: "col", class: cls, "aria-sort": ariaSort },
      h(
        "button",
        {
          type: "button",
          class: "sort",
          "data-sort": col.key,
          title: `Sort by ${col.title || col.label.toLowerCase()}`,
          onclick: () => onSort({ key: col.key, dir: active ? -order.dir : (col.firstDir ?? 1) }),
        },
        col.label,
        h("span", {
          class: "sort-mark",
          "aria-hidden": "true",
          text: active ? (order.dir > 0 ? " \u25B2" : " \u25BC") : "",
        }),
      ),
    );
  });
}
