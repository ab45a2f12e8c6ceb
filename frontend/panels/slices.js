// One table per group key of the selected epoch (the /slices answers): each value's support,
// accuracy, balanced accuracy, macro F1 and its worst class's recall with that recall's 95%
// Wilson interval; the worst macro F1 first, sortable by any column. Slices with fewer than
// MIN_SLICE_SIZE rows are greyed: their figures say little. Clicking a row selects its slice for
// the scoped panels (see slice_picker.js). Values and class names are user text: textContent.

import { h, classLabel, fill, fmt, fmtInt, isNum } from "../dom.js";
import { card, errorBox, showState, sortHeads, sortedIndices } from "./common.js";

/** Slices with fewer rows are greyed (the command line's --min-slice-size default). */
export const MIN_SLICE_SIZE = 30;

const COLUMNS = [
  { key: "name", label: "Value" },
  { key: "support", label: "Support", num: true },
  { key: "accuracy", label: "Accuracy", num: true },
  { key: "balanced_accuracy", label: "Balanced accuracy", num: true },
  { key: "macro_f1", label: "Macro F1", num: true },
  { key: "worst_recall", label: "Worst recall", num: true },
];

/**
 * The class with the lowest recall of a slice (among classes with a defined recall; the first
 * of equal ones): {index, name, recall, interval}, or null when none has one.
 */
export function worstRecall(perClass) {
  let worst = null;
  (Array.isArray(perClass) ? perClass : []).forEach((p, index) => {
    if (!p || !isNum(p.recall)) return;
    if (worst === null || p.recall < worst.recall) {
      worst = {
        index,
        name: classLabel(p.name, index),
        recall: p.recall,
        interval: p.recall_interval,
      };
    }
  });
  return worst;
}

/** The rows of one /slices answer, as sortedIndices takes them ("name": the value). */
function rowsOf(doc) {
  const slices = Array.isArray(doc.slices) ? doc.slices : [];
  return slices
    .filter((e) => e && typeof e.value === "string")
    .map((e) => {
      const worst = worstRecall(e.per_class);
      return {
        name: e.value,
        support: e.support,
        accuracy: e.accuracy,
        balanced_accuracy: e.balanced_accuracy,
        macro_f1: e.macro_f1,
        worst_recall: worst ? worst.recall : null,
        worst,
      };
    });
}

function intervalText(interval) {
  return Array.isArray(interval) && isNum(interval[0]) && isNum(interval[1])
    ? `${fmt(interval[0])}\u2013${fmt(interval[1])}`
    : "";
}

/**
 * actions: selectSlice({key, value} | null).
 * update({hidden: true}) hides the panel; update({loading}) dims it; update({tables,
 * selected}): `tables` is [{key, doc} | {key, error}] (doc: the key's /slices answer),
 * `selected` the chosen {key, value} or null.
 */
export function create(container, actions) {
  const sorts = new Map(); // key -> {key: column, dir} the user chose; none: the route's order
  let shown = null;
  const allRows = h("button", {
    type: "button",
    class: "btn small",
    text: "All rows",
    title: "Show every row in the scoped panels",
    onclick: () => actions.selectSlice(null),
  });
  const { section, body } = card({
    title: "Slices",
    span: "span-12",
    bodyClass: "slices-wrap",
    tools: allRows,
  });
  section.hidden = true;
  container.append(section);

  function update(data) {
    section.hidden = Boolean(data.hidden);
    if (data.hidden) {
      shown = null;
      body.replaceChildren();
      return;
    }
    if (
      showState(body, data, {
        loadingText: "Loading the slices\u2026",
        errorTitle: "Could not load the slices.",
        keepWhileLoading: true,
      })
    ) {
      return;
    }
    shown = data;
    render();
  }

  function render() {
    const { tables, selected } = shown;
    allRows.disabled = !selected;
    fill(
      body,
      tables.map((t) =>
        t.doc
          ? keyTable(t.key, t.doc, selected)
          : errorBox(`Could not load the slices of ${t.key}.`, t.error),
      ),
      h("p", {
        class: "caption",
        text: `worst macro F1 first; click a column to sort, a row to show its slice; greyed: fewer than ${MIN_SLICE_SIZE} rows; worst recall: the class with the lowest recall, with its 95% Wilson interval`,
      }),
    );
  }

  function keyTable(key, doc, selected) {
    const rows = rowsOf(doc);
    const order = sorts.get(key) || null;
    const indices = order ? sortedIndices(rows, order.key, order.dir) : rows.map((_, i) => i);
    const head = sortHeads(COLUMNS, order, (next) => {
      sorts.set(key, next);
      render();
      body.querySelector(`table[data-key="${key}"] button[data-sort="${next.key}"]`)?.focus();
    });
    const bodyRows = indices.map((i) => {
      const r = rows[i];
      const small = isNum(r.support) && r.support < MIN_SLICE_SIZE;
      const chosen = Boolean(selected) && selected.key === key && selected.value === r.name;
      const pick = () => actions.selectSlice({ key, value: r.name });
      const worst = r.worst;
      return h(
        "tr",
        {
          class: `${small ? "small-slice" : ""}${chosen ? " selected" : ""}`.trim(),
          "data-value": r.name,
          "aria-selected": chosen ? "true" : "false",
          title: small
            ? `Fewer than ${MIN_SLICE_SIZE} rows: these figures are uncertain.`
            : "Show this slice in the scoped panels",
          onclick: pick,
        },
        h(
          "th",
          { scope: "row" },
          h("button", {
            type: "button",
            class: "link slice-value",
            text: r.name,
            onclick: (evt) => {
              evt.stopPropagation();
              pick();
            },
          }),
        ),
        h("td", { class: "num", "data-metric": "support", text: fmtInt(r.support) }),
        h("td", { class: "num", "data-metric": "accuracy", text: fmt(r.accuracy) }),
        h("td", {
          class: "num",
          "data-metric": "balanced_accuracy",
          text: fmt(r.balanced_accuracy),
        }),
        h("td", { class: "num", "data-metric": "macro_f1", text: fmt(r.macro_f1) }),
        h(
          "td",
          { class: "num worst", "data-metric": "worst_recall" },
          worst
            ? [
                h("span", { class: "worst-class", text: worst.name }),
                " ",
                h("span", { class: "worst-value", text: fmt(worst.recall) }),
                " ",
                h("span", { class: "worst-interval muted", text: intervalText(worst.interval) }),
              ]
            : "\u2014",
        ),
      );
    });
    return h(
      "div",
      { class: "slice-key" },
      h("h3", null, h("span", { text: "By " }), h("span", { class: "slice-key-name", text: key })),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          {
            class: "slices",
            "data-key": key,
            "aria-label": `Slices by ${key}`,
          },
          h("thead", null, h("tr", null, head)),
          h("tbody", null, bodyRows),
        ),
      ),
    );
  }

  return { element: section, update };
}
