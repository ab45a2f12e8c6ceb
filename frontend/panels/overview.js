// The runs overview, shown when the logdir has more than one run: one row per run of the
// /overview answer (its figures at its best step and its findings by severity), filtered by
// run name and sorted by any column; clicking a run opens it. A run the server could not read
// shows its error in its row. Drawn in one pass for hundreds of runs (bench/render_time.py).

import { h, fill, fmt, fmtInt, isNum, uid } from "../dom.js";
import { card, showState, sortHeads, sortedIndices } from "./common.js";

// Columns: `key` of the flat row (`rowOf`), its label and tooltip; `num` right-aligned and
// sorted highest first on a first click.
const COLUMNS = [
  { key: "name", label: "Run" },
  { key: "task", label: "Task", unsorted: true },
  {
    key: "best_step",
    label: "Best epoch",
    num: true,
    firstDir: -1,
    title: "the /curves best epoch, else the latest",
  },
  { key: "accuracy", label: "Accuracy", num: true, firstDir: -1 },
  {
    key: "balanced_accuracy",
    label: "Bal. acc.",
    num: true,
    firstDir: -1,
    title: "balanced accuracy",
  },
  { key: "macro_f1", label: "Macro F1", num: true, firstDir: -1 },
  {
    key: "worst_recall",
    label: "Worst class",
    num: true,
    firstDir: -1,
    title: "the class of the lowest recall",
  },
  { key: "ece", label: "ECE", num: true, firstDir: -1, title: "expected calibration error" },
  { key: "errors", label: "Errors", num: true, firstDir: -1, title: "findings of severity error" },
  {
    key: "warnings",
    label: "Warnings",
    num: true,
    firstDir: -1,
    title: "findings of severity warning",
  },
];

/** The flat row of an /overview entry: what the table shows and sorts by. */
function rowOf(entry) {
  const worst = entry.worst_class && typeof entry.worst_class === "object" ? entry.worst_class : {};
  const findings = entry.findings && typeof entry.findings === "object" ? entry.findings : {};
  return {
    name: String(entry.run),
    error: typeof entry.error === "string" ? entry.error : null,
    task: typeof entry.task === "string" ? entry.task : "",
    best_step: entry.best_step,
    accuracy: entry.accuracy,
    balanced_accuracy: entry.balanced_accuracy,
    macro_f1: entry.macro_f1,
    worst_name: worst.name === undefined || worst.name === null ? null : String(worst.name),
    worst_recall: worst.recall,
    ece: entry.ece,
    errors: findings.error,
    warnings: findings.warning,
  };
}

/**
 * actions: selectRun(run).
 * update({overview, run}) shows an /overview answer with `run` marked as the one open;
 * update({hidden: true}) hides the panel; {loading}, {error} as every panel.
 */
export function create(container, actions) {
  const ids = { filter: uid("runfilter") };
  let rows = [];
  let current = null;
  let sort = { key: "name", dir: 1 };
  const filter = h("input", {
    id: ids.filter,
    type: "search",
    class: "run-filter",
    placeholder: "filter runs",
    "aria-label": "Filter the runs by name",
    oninput: () => render(),
  });
  const countText = h("span", { class: "muted filter-count", "aria-live": "polite" });
  const { section, body } = card({
    title: "Runs overview",
    span: "span-12",
    bodyClass: "runs-overview",
    tools: h("div", { class: "head-tools" }, filter, countText),
  });
  section.hidden = true;
  container.append(section);

  function update(data) {
    section.hidden = Boolean(data.hidden);
    if (data.hidden) return;
    if (
      showState(body, data, {
        loadingText: "Loading runs\u2026",
        errorTitle: "Could not load the runs overview.",
        keepWhileLoading: true,
      })
    )
      return;
    const entries = Array.isArray(data.overview?.runs) ? data.overview.runs : [];
    rows = entries.filter((e) => e && typeof e.run === "string").map(rowOf);
    current = data.run ?? null;
    render();
  }

  function bodyRow(row) {
    const open = h("button", {
      type: "button",
      class: "link run-name",
      text: row.name,
      title: "Open this run",
      onclick: (evt) => {
        evt.stopPropagation();
        actions.selectRun(row.name);
      },
    });
    const attrs = {
      class: `overview-row${row.error ? " unreadable" : ""}`,
      "data-run": row.name,
      "aria-current": row.name === current ? "true" : null,
      onclick: () => actions.selectRun(row.name),
    };
    if (row.error) {
      return h(
        "tr",
        attrs,
        h("th", { scope: "row" }, open),
        h("td", { class: "run-error", colspan: String(COLUMNS.length - 1), text: row.error }),
      );
    }
    const num = (key, text) => h("td", { class: "num", "data-column": key, text });
    return h(
      "tr",
      attrs,
      h("th", { scope: "row" }, open),
      h("td", { "data-column": "task", text: row.task }),
      num("best_step", isNum(row.best_step) ? String(row.best_step) : "\u2014"),
      num("accuracy", fmt(row.accuracy)),
      num("balanced_accuracy", fmt(row.balanced_accuracy)),
      num("macro_f1", fmt(row.macro_f1)),
      h(
        "td",
        { class: "num", "data-column": "worst_class" },
        row.worst_name === null ? "\u2014" : `${row.worst_name} ${fmt(row.worst_recall)}`,
      ),
      num("ece", fmt(row.ece)),
      num("errors", fmtInt(row.errors)),
      num("warnings", fmtInt(row.warnings)),
    );
  }

  function render() {
    const query = filter.value.trim().toLowerCase();
    const order = sortedIndices(rows, sort.key, sort.dir).filter(
      (i) => !query || rows[i].name.toLowerCase().includes(query),
    );
    countText.textContent =
      order.length === rows.length
        ? `${fmtInt(rows.length)} runs`
        : `${fmtInt(order.length)} of ${fmtInt(rows.length)} runs`;
    const table = h(
      "table",
      { class: "runs-table", "aria-label": "Runs and their figures at the best epoch" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          sortHeads(COLUMNS, sort, (order) => {
            sort = order;
            render();
          }),
        ),
      ),
      h(
        "tbody",
        null,
        order.map((i) => bodyRow(rows[i])),
      ),
    );
    const focused = document.activeElement?.dataset?.sort;
    fill(
      body,
      order.length ? null : h("p", { class: "muted", text: "No run matches." }),
      h("div", { class: "scroll" }, table),
    );
    if (focused) body.querySelector(`button[data-sort="${focused}"]`)?.focus();
  }

  return { element: section, update };
}
