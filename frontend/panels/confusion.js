// The confusion matrix of one epoch, as counts or normalised by true or predicted class (the
// choice is remembered in localStorage). Up to MANY_CLASSES classes it is one table; above, an
// overview heatmap fitted to the panel: a click on a block opens the table of the classes around
// it and the examples of its largest cell. A multi-label run's per-label cards open the examples
// of their cells too.
// Tables keep their class names in view (sticky headers) while they scroll.

import { h, classLabel, fill, fmt, fmtInt, fmtPct, isNum, storageGet, storageSet } from "../dom.js";
import {
  Heatmap,
  confusionCounts,
  confusionLayer,
  heaviestRow,
  largestCell,
  regionAround,
  regionBounds,
  regionHead,
  shareOf,
} from "../heatmap.js";
import { MANY_CLASSES, card, segmented, showState } from "./common.js";
import { labelMatrices } from "../label_matrices.js";

const NORMALIZE_KEY = "metricsdiag.normalize";
const MODES = [
  ["counts", "Counts"],
  ["true", "Normalized by true class"],
  ["pred", "Normalized by predicted class"],
];
const LEGENDS = {
  counts: "counts; darker = more examples",
  true: "each row sums to 1 (recall on the diagonal)",
  pred: "each column sums to 1 (precision on the diagonal)",
};
// Above this many classes per side the cells are small and the column names turn vertical.
const DENSE_CLASSES = 8;
const HOVER_HINT =
  "Point at the heatmap to read a block; click it (or press Enter) to open it and the examples of its largest cell.";

/**
 * actions: selectPrClass(classIndex), loadFullMatrix(), showExamples(actual, predicted, label)
 * (a table cell, a heatmap block's largest cell, or a multi-label card's cell (`label` its
 * index; `actual` and `predicted` 0 or 1) was picked).
 * update({loading} | {error} | {confusion}): `confusion` is the /confusion answer, its matrix
 * full (`matrix`) or as nonzero cells (`matrix_form` "cells").
 */
export function create(container, actions) {
  const stored = storageGet(NORMALIZE_KEY, "counts");
  let mode = MODES.some(([value]) => value === stored) ? stored : "counts";
  let shown = null; // {c, counts}: the answer drawn
  let region = null; // [first row, first column] of the opened region, while one is open

  const modeGroup = segmented("Confusion matrix values", MODES, mode, (value) => {
    mode = value;
    storageSet(NORMALIZE_KEY, value);
    if (shown) render();
  });
  const { section, body } = card({
    title: "Confusion matrix",
    span: "span-7 matrix-card",
    bodyClass: "matrix-wrap",
    tools: modeGroup,
  });
  container.append(section);
  const readout = h("p", { class: "heatmap-readout", "aria-live": "polite", text: HOVER_HINT });
  const regionArea = h("div", { class: "region" });
  const heatmap = new Heatmap({
    ariaLabel:
      "Overview of the confusion matrix: rows are actual classes, columns predicted classes; use the arrow keys and Enter to open a block",
    onHover: (block) => {
      readout.textContent = block ? describeBlock(block) : HOVER_HINT;
    },
    onPick: pick,
  });

  const name = (i) => classLabel(shown?.c.class_names?.[i], i);
  const span = ([lo, hi]) => (hi - lo === 1 ? name(lo) : `${name(lo)} \u2026 ${name(hi - 1)}`);

  function describeBlock({ rows, cols, count, share }) {
    const whose = rows[1] - rows[0] === 1 ? `actual ${name(rows[0])}` : "those actual examples";
    return `actual ${span(rows)} \u2192 predicted ${span(cols)}: ${fmtInt(count)} (${fmtPct(share)} of ${whose})`;
  }

  function update(data) {
    const state = showState(body, data, {
      loadingText: "Loading the confusion matrix\u2026",
      errorTitle: "Could not load the confusion matrix.",
      keepWhileLoading: true,
    });
    if (state) {
      if (!data.loading) {
        shown = null;
        section.classList.remove("many-classes");
      }
      return;
    }
    const multilabel = Array.isArray(data.confusion.matrices);
    modeGroup.hidden = multilabel;
    if (multilabel) {
      shown = region = null;
      section.classList.remove("many-classes");
      fill(
        body,
        labelMatrices(data.confusion, (label, actual, predicted) =>
          actions.showExamples(actual, predicted, label),
        ),
      );
      return;
    }
    const counts = confusionCounts(data.confusion);
    if (!counts || (shown && shown.counts.n !== counts.n)) region = null;
    shown = { c: data.confusion, counts };
    // The cards beside the heatmap take its height (style.css) rather than leave a gap under it.
    section.classList.toggle("many-classes", Boolean(counts) && counts.n > MANY_CLASSES);
    render();
  }

  /**
   * A picked block opens the table of the classes around it and the examples of its largest
   * cell (the cell itself where a block is one cell), and selects its actual class with the
   * most examples in the block.
   */
  function pick({ rows, cols }) {
    const block = shown.counts.block(rows[0], rows[1], cols[0], cols[1]);
    region = regionAround(rows, cols, shown.counts.n);
    renderRegion();
    regionArea.scrollIntoView({ block: "nearest" });
    actions.selectPrClass(rows[0] + heaviestRow(block, (count) => count));
    const [a, b] = largestCell(block);
    actions.showExamples(rows[0] + a, cols[0] + b);
  }

  function render() {
    const { c, counts } = shown;
    if (!counts) {
      fill(body, h("p", { class: "muted", text: "No confusion matrix in this answer." }));
      return;
    }
    const caption = (extra) =>
      h("p", {
        class: "caption",
        text: `${c.split} split \u00b7 epoch ${c.step} \u00b7 ${extra}${LEGENDS[mode]}`,
      });
    if (counts.n <= MANY_CLASSES) {
      const all = [0, counts.n];
      fill(
        body,
        scrolled(matrixTable(c, counts, all, all, mode, actions.showExamples)),
        caption(""),
      );
      return;
    }
    const notes = [];
    if (c.matrix_form === "cells") {
      notes.push(
        h(
          "div",
          { class: "matrix-form" },
          h("span", {
            class: "muted",
            text: counts.truncated
              ? "This answer holds only the largest cells: the smallest counts are missing from the heatmap and its tables."
              : "This answer holds the nonzero cells of the matrix.",
          }),
          h("button", {
            type: "button",
            class: "btn small",
            text: "Load full matrix",
            onclick: () => actions.loadFullMatrix(),
          }),
        ),
      );
    }
    fill(
      body,
      notes,
      heatmap.element,
      readout,
      caption(
        `${fmtInt(counts.n)} classes \u00b7 diagonal and off-diagonal blocks each scaled to their largest \u00b7 `,
      ),
      regionArea,
    );
    heatmap.draw({ n: counts.n, layer: confusionLayer(counts, mode) });
    renderRegion();
  }

  function renderRegion() {
    if (!region || !shown?.counts) {
      regionArea.replaceChildren();
      return;
    }
    const [rows, cols] = regionBounds(region, shown.counts.n);
    fill(
      regionArea,
      regionHead(
        `Actual ${span(rows)} \u00d7 predicted ${span(cols)}`,
        "Close the table of this region",
        () => {
          region = null;
          renderRegion();
        },
      ),
      scrolled(matrixTable(shown.c, shown.counts, rows, cols, mode, actions.showExamples)),
    );
  }

  return {
    element: section,
    update,
    destroy: () => heatmap.destroy(),
  };
}

function scrolled(table) {
  return h("div", { class: "scroll matrix-scroll" }, table);
}

/**
 * The table of actual classes [rows) x predicted classes [cols) of `counts`, with each row's
 * total (the class's support) and each column's (its predicted total); the grand total only
 * when the table is the whole matrix. Clicking a cell (or Enter on it) calls onCell(i, j).
 */
function matrixTable(c, counts, rows, cols, mode, onCell) {
  const names = Array.isArray(c.class_names) ? c.class_names : [];
  const name = (i) => classLabel(names[i], i);
  const whole = rows[0] === 0 && cols[0] === 0 && rows[1] === counts.n && cols[1] === counts.n;
  const block = counts.block(rows[0], rows[1], cols[0], cols[1]);
  const rowIds = block.map((_, k) => rows[0] + k);
  const colIds = Array.from({ length: cols[1] - cols[0] }, (_, k) => cols[0] + k);
  let maxCount = 0;
  for (const r of block) for (const v of r) maxCount = Math.max(maxCount, v);
  const dense = colIds.length > DENSE_CLASSES;
  const vertical = dense && colIds.some((j) => name(j).length > 4);

  const table = h("table", {
    class: `confusion mode-${mode}${dense ? " dense" : ""}${vertical ? " vertical-heads" : ""}`,
    "aria-label": `Confusion matrix, ${c.split} split, epoch ${c.step}; rows are actual classes, columns predicted classes`,
  });
  table.append(
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h(
          "th",
          { class: "corner", scope: "col" },
          h("span", { class: "axis-hint", text: "actual \u2193 / predicted \u2192" }),
        ),
        colIds.map((j) =>
          h(
            "th",
            {
              scope: "col",
              class: "col-name",
              title: `predicted ${name(j)}`,
              "data-col": String(j),
            },
            h("span", { text: name(j) }),
          ),
        ),
        h("th", { scope: "col", class: "total-head", text: "total" }),
      ),
    ),
  );
  const cell = (i, j, count) => {
    const ratio = shareOf(mode, count, counts.rowTotals[i], counts.colTotals[j]);
    let intensity = mode === "counts" ? (maxCount > 0 ? count / maxCount : 0) : ratio;
    intensity = isNum(intensity) ? Math.max(0, Math.min(1, intensity)) : 0;
    let title = `actual ${name(i)}, predicted ${name(j)}: ${fmtInt(count)}`;
    if (mode === "true") title += ` (${fmtPct(ratio)} of actual ${name(i)})`;
    if (mode === "pred") title += ` (${fmtPct(ratio)} of predicted ${name(j)})`;
    return h(
      "td",
      {
        class: `cell ${i === j ? "diag" : "off"}${intensity > 0.55 ? " strong" : ""}`,
        style: { "--a": (0.06 + 0.94 * Math.sqrt(intensity)).toFixed(3) },
        "data-row": String(i),
        "data-col": String(j),
        title: `${title}; click to list its examples`,
        tabindex: "0",
        onclick: () => onCell(i, j),
        onkeydown: (evt) => {
          if (evt.key === "Enter") onCell(i, j);
        },
      },
      mode === "counts"
        ? h("span", { class: "main count", text: fmtInt(count) })
        : [
            h("span", { class: "main ratio", text: fmt(ratio, 2) }),
            h("span", { class: "sub count", text: fmtInt(count) }),
          ],
    );
  };
  const tbody = h(
    "tbody",
    null,
    rowIds.map((i, k) =>
      h(
        "tr",
        null,
        h("th", { scope: "row", class: "row-name", title: `actual ${name(i)}`, text: name(i) }),
        colIds.map((j, m) => cell(i, j, block[k][m])),
        h("td", {
          class: "total",
          title: "Actual examples of this class",
          text: fmtInt(counts.rowTotals[i]),
        }),
      ),
    ),
    h(
      "tr",
      { class: "totals" },
      h("th", { scope: "row", class: "total-label", text: "predicted total" }),
      colIds.map((j) => h("td", { class: "total", text: fmtInt(counts.colTotals[j]) })),
      whole
        ? h("td", {
            class: "total grand",
            title: "All examples",
            text: fmtInt(c.total),
          })
        : h("td"),
    ),
  );
  table.append(tbody);
  return table;
}
