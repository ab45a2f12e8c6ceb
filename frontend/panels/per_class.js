// Per-class precision, recall, F1, support (and AP when the answer has it) of one epoch: a
// search box, sortable columns (the worst F1 first by default above MANY_CLASSES classes), and
// the flags the route decided (`per_class[i].flags`), each with the route's reason
// (`per_class[i].flag_reasons`: the figure, its interval, the median class it is clearly below)
// under the class name and as the tooltip of the flag and its cell; `flag_rule` is the
// tooltip where a reason is missing. A class name opens its PR curve.

import { h, classLabel, fill, fmt, fmtInt, isNum, uid } from "../dom.js";
import { MANY_CLASSES, card, sortHeads, sortedIndices } from "./common.js";

const FLAG_LABELS = { low_recall: "low recall", low_precision: "low precision" };
// The cell a flag marks.
const FLAG_METRICS = { low_recall: "recall", low_precision: "precision" };
const COLUMNS = [
  { key: "name", label: "Class" },
  { key: "precision", label: "Precision", num: true },
  { key: "recall", label: "Recall", num: true },
  { key: "f1", label: "F1", num: true },
  { key: "support", label: "Support", num: true },
  { key: "ap", label: "AP", num: true, optional: true },
];

// The tooltip of a proportion: its 95% Wilson interval as the route gives it.
function intervalTitle(interval) {
  if (!Array.isArray(interval) || !isNum(interval[0]) || !isNum(interval[1])) return "";
  return `95% Wilson interval ${fmt(interval[0])}\u2013${fmt(interval[1])}`;
}

/**
 * actions: showPrClass(classIndex).
 * update({confusion}) shows the per_class list of a /confusion answer; update({}) clears.
 */
export function create(container, actions) {
  const ids = { search: uid("classfilter"), flagged: uid("flagged") };
  let shown = null; // the /confusion answer
  let sort = null; // {key, dir} the user chose; null: the default of the class count
  const search = h("input", {
    id: ids.search,
    type: "search",
    class: "class-search",
    placeholder: "filter classes",
    "aria-label": "Filter the per-class table by class name",
    oninput: () => render(),
  });
  const flaggedOnly = h("input", {
    id: ids.flagged,
    type: "checkbox",
    onchange: () => render(),
  });
  const countText = h("span", { class: "muted filter-count", "aria-live": "polite" });
  const { section, body } = card({
    title: "Per-class metrics",
    span: "span-5",
    bodyClass: "table-wrap",
    tools: h(
      "div",
      { class: "head-tools" },
      search,
      h("label", { class: "check" }, flaggedOnly, "flagged only"),
      countText,
    ),
  });
  container.append(section);

  function update({ confusion = null }) {
    shown = confusion;
    if (!confusion) {
      body.replaceChildren();
      countText.textContent = "";
      return;
    }
    render();
  }

  function render() {
    if (!shown) return;
    const per = Array.isArray(shown.per_class) ? shown.per_class : [];
    const rule = typeof shown.flag_rule === "string" ? shown.flag_rule : "";
    const columns = COLUMNS.filter((col) => !col.optional || per.some((p) => isNum(p[col.key])));
    const many = per.length > MANY_CLASSES;
    const order = sort || (many ? { key: "f1", dir: 1 } : { key: "index", dir: 1 });
    const flagsOf = (p) =>
      Array.isArray(p.flags) ? p.flags.filter((f) => typeof f === "string") : [];
    // The reason of each flag, in the order of `flags`; the rule where the route gave none.
    const reasonsOf = (p) =>
      flagsOf(p).map((_, k) => {
        const reason = Array.isArray(p.flag_reasons) ? p.flag_reasons[k] : null;
        return typeof reason === "string" && reason ? reason : rule;
      });
    const query = search.value.trim().toLowerCase();
    let indices =
      order.key === "index" ? per.map((_, i) => i) : sortedIndices(per, order.key, order.dir);
    indices = indices.filter(
      (i) =>
        (!query || classLabel(per[i].name, i).toLowerCase().includes(query)) &&
        (!flaggedOnly.checked || flagsOf(per[i]).length > 0),
    );
    countText.textContent =
      indices.length === per.length ? "" : `${fmtInt(indices.length)} of ${fmtInt(per.length)}`;
    const supports = per.map((p) => p.support).filter(isNum);
    const maxSupport = supports.length ? Math.max(...supports) : 0;

    const rows = indices.map((i) => {
      const p = per[i];
      const flags = flagsOf(p);
      const reasons = reasonsOf(p);
      // metric -> the reason of the flag that marks its cell
      const marked = new Map(
        flags.map((f, k) => [FLAG_METRICS[f], reasons[k]]).filter(([metric]) => metric),
      );
      const width = maxSupport && isNum(p.support) ? (p.support / maxSupport) * 100 : 0;
      const metricCell = (key, title = "") =>
        h("td", {
          class: `num${marked.has(key) ? " flagged" : ""}`,
          "data-metric": key,
          title: marked.get(key) || title,
          text: fmt(p[key]),
        });
      return h(
        "tr",
        { class: flags.length ? "low" : "", "data-class": String(i) },
        h(
          "th",
          { scope: "row" },
          h("button", {
            type: "button",
            class: "link",
            text: classLabel(p.name, i),
            title: "Show the PR curve of this class",
            onclick: () => actions.showPrClass(i),
          }),
          flags.map((f, k) =>
            h("span", {
              class: "flag",
              "data-flag": f,
              title: reasons[k],
              text: FLAG_LABELS[f] || f.replace(/_/g, " "),
            }),
          ),
          flags.map((f, k) =>
            h("span", { class: "flag-reason", "data-flag": f, text: reasons[k] }),
          ),
        ),
        metricCell("precision", intervalTitle(p.precision_interval)),
        metricCell("recall", intervalTitle(p.recall_interval)),
        metricCell("f1"),
        h(
          "td",
          { class: "num support", "data-metric": "support" },
          h("span", { class: "support-bar", style: { "--w": `${width.toFixed(1)}%` } }),
          h("span", { text: fmtInt(p.support) }),
        ),
        columns.some((col) => col.key === "ap") ? metricCell("ap") : null,
      );
    });
    const head = sortHeads(columns, order, (next) => {
      sort = next;
      render();
    });
    const table = h(
      "table",
      { class: "per-class", "aria-label": "Per-class precision, recall, F1 and support" },
      h("thead", null, h("tr", null, head)),
      h("tbody", null, rows),
    );
    const notes = [];
    if (many && !sort)
      notes.push(h("p", { class: "caption", text: "Worst F1 first; click a column to sort." }));
    if (!rows.length) notes.push(h("p", { class: "muted", text: "No class matches." }));
    // Sorting rebuilds the table: keep the keyboard on the column header pressed.
    const focused = document.activeElement?.dataset?.sort;
    fill(body, notes, h("div", { class: "scroll" }, table));
    if (focused) body.querySelector(`button[data-sort="${focused}"]`)?.focus();
  }

  return { element: section, update };
}
