// Compare two (run, epoch) pairs: the signed difference of the confusion matrices (counts or
// row shares; one colour for better, one for worse) as a table up to MANY_CLASSES classes and
// as a heatmap above (whose blocks open the classes around them as a table), per-class
// precision / recall / F1 / AP before -> after, and both PR curves of the selected class.
// "Did my change help the rare class, and what did it cost the others?"

import { h, classLabel, fill, fmt, fmtInt, isNum, uid } from "../dom.js";
import { twoCurves } from "../charts/compare_pr.js";
import {
  Heatmap,
  differenceCells,
  differenceLayer,
  heaviestRow,
  regionAround,
  regionBounds,
  regionHead,
} from "../heatmap.js";
import { MANY_CLASSES, card, errorBox, segmented, showState } from "./common.js";

const METRICS = [
  ["precision", "Precision"],
  ["recall", "Recall"],
  ["f1", "F1"],
  ["ap", "AP"],
];
// Differing class names listed by name in the warning; the rest are counted.
const NAMED_DIFFERENCES = 3;
const HOVER_HINT = "Point at the heatmap to read a block; click it (or press Enter) to open it.";

/**
 * actions: setCompareBase(run, step), selectPrClass(classIndex).
 * update({picker: {runs, run, steps, step}}) sets the "before" picker; then
 * update({loading} | {error} | {compare, prBefore, prAfter, prErrors, classIndex, names}):
 * `compare` the /compare answer, `prBefore` / `prAfter` the /pr answers of the class (null
 * where `prErrors.before` / `prErrors.after` says why not), `names` {before, after} the
 * class names of the two runs as /runs lists them (a warning says where they differ).
 */
export function create(container, actions) {
  let mode = "counts";
  let shown = null;
  let region = null; // [first row, first column] of the opened region, while one is open
  const ids = { run: uid("cmprun"), step: uid("cmpstep") };
  const runSelect = h("select", {
    id: ids.run,
    "aria-label": "Run to compare with",
    // The epoch stays where the other run has it too.
    onchange: () => actions.setCompareBase(runSelect.value, Number(stepSelect.value)),
  });
  const stepSelect = h("select", {
    id: ids.step,
    "aria-label": "Epoch to compare with",
    onchange: () => actions.setCompareBase(runSelect.value, Number(stepSelect.value)),
  });
  const modeGroup = segmented(
    "Values",
    [
      ["counts", "Counts"],
      ["true", "Row-normalised"],
    ],
    mode,
    (value) => {
      mode = value;
      if (shown) render(shown);
    },
  );
  const { section, body } = card({
    title: "Compare with another epoch or run",
    span: "span-12",
    bodyClass: "compare-body",
    tools: h(
      "div",
      { class: "head-tools" },
      h("label", { for: ids.run, text: "Before: run" }),
      runSelect,
      h("label", { for: ids.step, text: "epoch" }),
      stepSelect,
      modeGroup,
    ),
  });
  container.append(section);
  const readout = h("p", { class: "heatmap-readout", "aria-live": "polite", text: HOVER_HINT });
  const regionArea = h("div", { class: "region" });
  const heatmap = new Heatmap({
    ariaLabel:
      "Change of the confusion matrix, after minus before: rows are actual classes, columns predicted classes; green better, red worse; use the arrow keys and Enter to open a block",
    tones: ["better", "worse"],
    className: "diff-heatmap",
    onHover: (block) => {
      readout.textContent = block ? describeBlock(block) : HOVER_HINT;
    },
    onPick: pick,
  });

  function setPicker({ runs, run, steps, step }) {
    runSelect.replaceChildren(...runs.map((r) => h("option", { value: r, text: r })));
    runSelect.value = run;
    stepSelect.replaceChildren(
      ...steps.map((st) => h("option", { value: String(st), text: `epoch ${st}` })),
    );
    stepSelect.value = String(step);
  }

  function update(data) {
    if (data.picker) {
      setPicker(data.picker);
      return;
    }
    if (
      showState(body, data, {
        loadingText: "Loading the comparison\u2026",
        errorTitle: "Could not compare.",
        keepWhileLoading: true,
      })
    ) {
      if (!data.loading) shown = null;
      return;
    }
    const before = shown?.compare;
    const sameClasses =
      before && JSON.stringify(before.class_names) === JSON.stringify(data.compare.class_names);
    if (!sameClasses) region = null;
    shown = data;
    render(data);
  }

  const name = (i) => classLabel(shown?.compare.class_names?.[i], i);
  const span = ([lo, hi]) => (hi - lo === 1 ? name(lo) : `${name(lo)} \u2026 ${name(hi - 1)}`);
  const signed = (v, digits) =>
    isNum(v) ? (v > 0 ? "+" : "") + (digits === null ? fmtInt(v) : fmt(v, digits)) : "\u2014";
  const modeDigits = () => (mode === "counts" ? null : 3);

  function describeBlock({ rows, cols, change, better, worse }) {
    const where = `actual ${span(rows)} \u2192 predicted ${span(cols)}`;
    if (rows[1] - rows[0] === 1 && cols[1] - cols[0] === 1) {
      const verdict = better ? "better" : worse ? "worse" : "unchanged";
      return `${where}: ${signed(change, modeDigits())} (${verdict})`;
    }
    return `${where}: ${fmtInt(better)} cells better, ${fmtInt(worse)} worse`;
  }

  /** A picked block opens the classes around it and selects the actual class that moved most. */
  function pick({ rows, cols }) {
    const diff = differenceCells(shown.compare);
    const block = diff.block(rows[0], rows[1], cols[0], cols[1]);
    region = regionAround(rows, cols, diff.n);
    renderRegion(diff);
    regionArea.scrollIntoView({ block: "nearest" });
    actions.selectPrClass(rows[0] + heaviestRow(block, (cell) => Math.abs(cell.counts)));
  }

  function renderRegion(diff) {
    if (!region || !diff) {
      regionArea.replaceChildren();
      return;
    }
    const [rows, cols] = regionBounds(region, diff.n);
    fill(
      regionArea,
      regionHead(
        `Actual ${span(rows)} \u00d7 predicted ${span(cols)}`,
        "Close the table of this region of the change",
        () => {
          region = null;
          renderRegion(diff);
        },
      ),
      h("div", { class: "scroll" }, differenceTable(diff, rows, cols)),
    );
  }

  /** The change of the cells of actual classes [rows) x predicted classes [cols). */
  function differenceTable(diff, rows, cols) {
    const block = diff.block(rows[0], rows[1], cols[0], cols[1]);
    const colIds = Array.from({ length: cols[1] - cols[0] }, (_, k) => cols[0] + k);
    return h(
      "table",
      {
        class: "diff-matrix",
        "aria-label": "Confusion matrix after minus before; rows actual, columns predicted",
      },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { class: "diff-corner", text: "actual \u2193 / predicted \u2192" }),
          colIds.map((j) => h("th", { scope: "col", class: "diff-col", text: name(j) })),
        ),
      ),
      h(
        "tbody",
        null,
        block.map((row, k) =>
          h(
            "tr",
            null,
            h("th", { scope: "row", class: "diff-row", text: name(rows[0] + k) }),
            row.map((cell, m) => {
              const i = rows[0] + k;
              const j = colIds[m];
              const value = signed(mode === "counts" ? cell.counts : cell.true, modeDigits());
              const verdict =
                cell.improvement > 0 ? "better" : cell.improvement < 0 ? "worse" : "same";
              return h("td", {
                class: `diff ${verdict}`,
                "data-row": String(i),
                "data-col": String(j),
                title: `actual ${name(i)}, predicted ${name(j)}: ${value} (${verdict})`,
                text: value,
              });
            }),
          ),
        ),
      ),
    );
  }

  /** The change of the matrix: a table, a heatmap, or a note where there is none to show. */
  function matrixView(c) {
    if (c.difference_form === "labels") {
      return h("p", {
        class: "muted",
        text: "Multi-label: each label's change is in the table below.",
      });
    }
    const diff = differenceCells(c);
    if (!diff) return h("p", { class: "muted", text: "No change of the matrix in this answer." });
    if (diff.n <= MANY_CLASSES) {
      region = null;
      const all = [0, diff.n];
      return h("div", { class: "scroll" }, differenceTable(diff, all, all));
    }
    return h(
      "div",
      { class: "diff-overview" },
      diff.truncated
        ? h("p", {
            class: "muted",
            text: "This answer holds only the largest changes: the smallest are missing from the heatmap and its tables.",
          })
        : null,
      heatmap.element,
      readout,
      h("p", {
        class: "caption",
        text: `${fmtInt(diff.n)} classes \u00b7 a block's colour sums its cells' changes for the better and for the worse`,
      }),
      regionArea,
    );
  }

  function render({ compare: c, prBefore, prAfter, prErrors = {}, classIndex, names = null }) {
    const per = Array.isArray(c.per_class) ? c.per_class : [];
    const changeCell = (p, key) => {
      const change = p[`${key}_change`];
      const cls = isNum(change) ? (change > 0 ? "better" : change < 0 ? "worse" : "same") : "same";
      return h(
        "td",
        { class: `num change ${cls}`, "data-metric": key },
        h("span", { class: "before", text: fmt(p[`${key}_before`]) }),
        " \u2192 ",
        h("span", { class: "after", text: fmt(p[key]) }),
        " ",
        h("span", { class: "delta", text: `(${signed(change, 3)})` }),
      );
    };
    const table = h(
      "table",
      { class: "compare-table", "aria-label": "Per-class changes, before to after" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col", text: "Class" }),
          METRICS.map(([, label]) => h("th", { scope: "col", class: "num", text: label })),
          h("th", { scope: "col", class: "num", text: "Support" }),
        ),
      ),
      h(
        "tbody",
        null,
        per.map((p, i) =>
          h(
            "tr",
            { "data-class": String(i) },
            h("th", { scope: "row", text: classLabel(p.name, i) }),
            METRICS.map(([key]) => changeCell(p, key)),
            h("td", {
              class: "num",
              text: `${fmtInt(p.support_before)} \u2192 ${fmtInt(p.support)}`,
            }),
          ),
        ),
      ),
    );
    const b = c.before || {};
    const a = c.after || {};
    const multilabel = c.difference_form === "labels";
    const figures = multilabel
      ? [
          ["accuracy", "subset accuracy"],
          ["hamming_loss", "Hamming loss"],
          ["macro_f1", "macro F1"],
        ]
      : [
          ["accuracy", "accuracy"],
          ["balanced_accuracy", "balanced accuracy"],
          ["macro_f1", "macro F1"],
        ];
    const summary = figures
      .map(([k, label]) => `${label} ${fmt(c[k]?.before)} \u2192 ${fmt(c[k]?.after)}`)
      .join(" \u00b7 ");
    const matrix = matrixView(c);
    fill(
      body,
      names ? renamedWarning(c, names) : null,
      h(
        "p",
        { class: "caption compare-what" },
        `Before: ${b.run}, epoch ${b.step} \u00b7 after: ${a.run}, epoch ${a.step} (${a.split}) \u00b7 ${summary}`,
      ),
      h(
        "div",
        { class: "compare-layout" },
        h(
          "div",
          { class: "diff-area" },
          h("h3", { text: "Change of the confusion matrix (after \u2212 before)" }),
          matrix,
          h("p", {
            class: "caption",
            text: "green: better (more on the diagonal, less elsewhere) \u00b7 red: worse",
          }),
        ),
        h(
          "div",
          null,
          h("h3", {
            class: "compare-pr-title",
            text: `PR curves of class \u201c${name(classIndex)}\u201d`,
          }),
          twoCurves(prBefore, prAfter),
          h(
            "ul",
            { class: "legend" },
            h(
              "li",
              null,
              h("span", { class: "key line before" }),
              `before (AP ${fmt(prBefore?.average_precision)})`,
            ),
            h(
              "li",
              null,
              h("span", { class: "key line after" }),
              `after (AP ${fmt(prAfter?.average_precision)})`,
            ),
          ),
          ["before", "after"].map((when) =>
            prErrors[when] ? errorBox(`No PR curve ${when}:`, prErrors[when]) : null,
          ),
        ),
      ),
      h("div", { class: "scroll" }, table),
    );
    // Drawn once in the page: the heatmap takes the width of its place.
    if (matrix.contains(heatmap.element)) {
      const diff = differenceCells(c);
      heatmap.draw({ n: diff.n, layer: differenceLayer(diff, mode) });
      renderRegion(diff);
    }
  }

  return { element: section, update, destroy: () => heatmap.destroy() };
}

/**
 * A warning when the runs of `c` (a /compare answer) name their classes differently
 * (`names.before`, `names.after`: the runs' class names): classes are compared by index, so
 * "class 2" may be another class in each run. Null when the names agree.
 */
function renamedWarning(c, names) {
  const before = Array.isArray(names.before) ? names.before.map(String) : [];
  const after = Array.isArray(names.after) ? names.after.map(String) : [];
  const differ = before
    .map((x, i) => [i, x, after[i]])
    .filter(([i, x, y]) => i < after.length && x !== y);
  if (!differ.length) return null;
  const runs = [c.before?.run, c.after?.run].map((run) => String(run ?? ""));
  const listed = differ
    .slice(0, NAMED_DIFFERENCES)
    .map(
      ([i, x, y]) =>
        `class ${i} is \u201c${x}\u201d in ${runs[0]} and \u201c${y}\u201d in ${runs[1]}`,
    )
    .join("; ");
  const more =
    differ.length > NAMED_DIFFERENCES
      ? `; ${fmtInt(differ.length - NAMED_DIFFERENCES)} more differ`
      : "";
  return h(
    "div",
    { class: "notice warning compare-renamed", role: "status" },
    h("strong", { text: "The two runs name their classes differently." }),
    h("span", { text: `Classes are compared by index: ${listed}${more}.` }),
  );
}
