// The confusion counts of a /confusion answer in either of its forms (the full matrix, or the
// nonzero cells of a many-class answer), and the overview heatmap that draws them on a
// <canvas> fitted to its panel, with classes grouped into square blocks when there are more
// classes than the panel has room for.

import { h, isNum } from "./dom.js";

// A block's edge in CSS pixels is at least this: smaller blocks cannot be pointed at.
export const MIN_BLOCK_PX = 3;
// The heatmap's edge in CSS pixels is at most this, whatever the panel's width.
const MAX_SIDE_PX = 720;

/**
 * The counts of a /confusion answer: {n, rowTotals, colTotals, each(fn), block(r0, r1, c0, c1)}.
 * `each(fn)` calls fn(i, j, count) for every nonzero cell; `block` returns the dense rows
 * [r0, r1) x columns [c0, c1). Row totals are the classes' supports and column totals the
 * predicted totals: exact even when a "cells" answer left small cells out (then `truncated`).
 * Null when the answer has neither a full matrix nor cells.
 */
export function confusionCounts(c) {
  const n = Array.isArray(c.class_names) ? c.class_names.length : 0;
  const per = Array.isArray(c.per_class) ? c.per_class : [];
  if (c.matrix_form !== "cells" && Array.isArray(c.matrix)) {
    const m = c.matrix;
    const size = m.length;
    const at = (i, j) => (isNum(m[i]?.[j]) ? m[i][j] : 0);
    const rowTotals = new Float64Array(size);
    const colTotals = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        rowTotals[i] += at(i, j);
        colTotals[j] += at(i, j);
      }
    }
    return {
      n: size,
      truncated: false,
      rowTotals,
      colTotals,
      each(fn) {
        for (let i = 0; i < size; i++)
          for (let j = 0; j < size; j++) if (at(i, j) > 0) fn(i, j, at(i, j));
      },
      block: (r0, r1, c0, c1) => range(r0, r1).map((i) => range(c0, c1).map((j) => at(i, j))),
    };
  }
  const cells = c.cells;
  if (!cells || !Array.isArray(cells.rows) || !Array.isArray(cells.cols)) return null;
  const { rows, cols } = cells;
  const counts = Array.isArray(cells.counts) ? cells.counts : [];
  const length = Math.min(rows.length, cols.length, counts.length);
  const valid = (k) =>
    Number.isInteger(rows[k]) &&
    Number.isInteger(cols[k]) &&
    rows[k] >= 0 &&
    rows[k] < n &&
    cols[k] >= 0 &&
    cols[k] < n &&
    isNum(counts[k]);
  const predicted = Array.isArray(c.predicted_totals) ? c.predicted_totals : [];
  return {
    n,
    truncated: c.cells_truncated === true,
    rowTotals: Float64Array.from({ length: n }, (_, i) =>
      isNum(per[i]?.support) ? per[i].support : 0,
    ),
    colTotals: Float64Array.from({ length: n }, (_, j) => (isNum(predicted[j]) ? predicted[j] : 0)),
    each(fn) {
      for (let k = 0; k < length; k++) if (valid(k)) fn(rows[k], cols[k], counts[k]);
    },
    block(r0, r1, c0, c1) {
      const out = range(r0, r1).map(() => new Array(Math.max(0, c1 - c0)).fill(0));
      for (let k = 0; k < length; k++) {
        const i = rows[k];
        const j = cols[k];
        if (valid(k) && i >= r0 && i < r1 && j >= c0 && j < c1) out[i - r0][j - c0] = counts[k];
      }
      return out;
    },
  };
}

function range(lo, hi) {
  return Array.from({ length: Math.max(0, hi - lo) }, (_, k) => lo + k);
}

/**
 * The value of each count in `mode`: "counts" the count itself, "true" its share of the actual
 * class's examples (rows sum to 1), "pred" its share of the predicted class's (columns sum to
 * 1); null where that total is 0.
 */
export function shareOf(mode, count, rowTotal, colTotal) {
  if (mode === "counts") return count;
  const total = mode === "true" ? rowTotal : colTotal;
  return total > 0 ? count / total : null;
}

/**
 * Classes per block side so that `n` classes fit `sidePx` pixels with blocks of at least
 * MIN_BLOCK_PX: 1 while every class gets its own block.
 */
export function classesPerBlock(n, sidePx) {
  const blocks = Math.max(1, Math.floor(sidePx / MIN_BLOCK_PX));
  return Math.max(1, Math.ceil(n / blocks));
}

/**
 * The counts summed over blocks of k x k classes: {k, size (blocks per side), sums
 * (Float64Array, row-major), rowTotals, colTotals (per block band)}.
 */
export function aggregate(counts, k) {
  const size = Math.ceil(counts.n / k);
  const sums = new Float64Array(size * size);
  counts.each((i, j, v) => {
    sums[Math.floor(i / k) * size + Math.floor(j / k)] += v;
  });
  const band = (totals) => {
    const out = new Float64Array(size);
    totals.forEach((v, i) => {
      out[Math.floor(i / k)] += v;
    });
    return out;
  };
  return { k, size, sums, rowTotals: band(counts.rowTotals), colTotals: band(counts.colTotals) };
}

/**
 * The heatmap: `element` holds the canvas; draw({counts, mode, names}) draws it at the width of
 * its parent. Diagonal and off-diagonal blocks are scaled each to their own largest value, so
 * the errors stay visible beside the much larger diagonal. onHover(block | null) and
 * onPick(block) receive {rows: [r0, r1), cols: [c0, c1), count, share} (share of the rows'
 * actual examples); the arrow keys move a cursor block and Enter picks it.
 */
export class Heatmap {
  constructor({ ariaLabel, onHover, onPick }) {
    this.onHover = onHover;
    this.onPick = onPick;
    this.canvas = h("canvas", {
      class: "heatmap",
      tabindex: "0",
      role: "img",
      "aria-label": ariaLabel,
    });
    this.element = h("div", { class: "heatmap-wrap" }, this.canvas);
    this.view = null;
    this.cursor = null; // [block row, block column] under the pointer or the keyboard cursor
    this.canvas.addEventListener("mousemove", (evt) => this.pointAt(evt));
    this.canvas.addEventListener("mouseleave", () => this.setCursor(null));
    this.canvas.addEventListener("click", (evt) => {
      this.pointAt(evt);
      if (this.cursor) this.onPick(this.describe(this.cursor));
    });
    this.canvas.addEventListener("keydown", (evt) => this.key(evt));
  }

  /** Draws `counts` (see confusionCounts) valued as `mode` (see shareOf). */
  draw({ counts, mode }) {
    const parent = this.element.parentElement;
    // The layout width, not clientWidth: that one rounds a fractional width up.
    const available = parent ? parent.getBoundingClientRect().width : 0;
    const side = Math.max(MIN_BLOCK_PX, Math.min(MAX_SIDE_PX, Math.floor(available || 480)));
    const agg = aggregate(counts, classesPerBlock(counts.n, side));
    const values = new Float64Array(agg.sums.length);
    let maxDiag = 0;
    let maxOff = 0;
    for (let a = 0; a < agg.size; a++) {
      for (let b = 0; b < agg.size; b++) {
        const v = shareOf(mode, agg.sums[a * agg.size + b], agg.rowTotals[a], agg.colTotals[b]);
        values[a * agg.size + b] = isNum(v) ? v : 0;
        if (a === b) maxDiag = Math.max(maxDiag, values[a * agg.size + b]);
        else maxOff = Math.max(maxOff, values[a * agg.size + b]);
      }
    }
    this.view = { counts, mode, agg, values, maxDiag, maxOff, side };
    this.canvas.dataset.classes = String(counts.n);
    this.canvas.dataset.classesPerBlock = String(agg.k);
    if (this.cursor && (this.cursor[0] >= agg.size || this.cursor[1] >= agg.size))
      this.cursor = null;
    this.paint();
  }

  paint() {
    const { agg, values, maxDiag, maxOff, side } = this.view;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(side * ratio);
    this.canvas.height = Math.round(side * ratio);
    this.canvas.style.width = `${side}px`;
    this.canvas.style.height = `${side}px`;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, side, side);
    const style = getComputedStyle(this.canvas);
    const diag = style.getPropertyValue("--diag").trim() || "26, 115, 232";
    const off = style.getPropertyValue("--off").trim() || "217, 48, 37";
    const edge = (b) => Math.round((b * side) / agg.size);
    for (let a = 0; a < agg.size; a++) {
      for (let b = 0; b < agg.size; b++) {
        const v = values[a * agg.size + b];
        const top = a === b ? maxDiag : maxOff;
        if (!(v > 0) || !(top > 0)) continue;
        const alpha = 0.08 + 0.92 * Math.sqrt(Math.min(1, v / top));
        ctx.fillStyle = `rgba(${a === b ? diag : off}, ${alpha.toFixed(3)})`;
        ctx.fillRect(edge(b), edge(a), edge(b + 1) - edge(b), edge(a + 1) - edge(a));
      }
    }
    if (this.cursor) {
      const [a, b] = this.cursor;
      ctx.strokeStyle = style.getPropertyValue("--fg").trim() || "#000";
      ctx.lineWidth = 1.5;
      const w = Math.max(3, edge(b + 1) - edge(b));
      const hgt = Math.max(3, edge(a + 1) - edge(a));
      ctx.strokeRect(edge(b) + 0.75, edge(a) + 0.75, w - 1.5, hgt - 1.5);
    }
  }

  /** The block at (a, b) as passed to onHover / onPick. */
  describe([a, b]) {
    const { agg, counts } = this.view;
    const rows = [a * agg.k, Math.min(counts.n, (a + 1) * agg.k)];
    const cols = [b * agg.k, Math.min(counts.n, (b + 1) * agg.k)];
    const count = agg.sums[a * agg.size + b];
    const rowTotal = agg.rowTotals[a];
    return { rows, cols, count, share: rowTotal > 0 ? count / rowTotal : null };
  }

  pointAt(evt) {
    if (!this.view) return;
    const box = this.canvas.getBoundingClientRect();
    const { size } = this.view.agg;
    const x = Math.floor(((evt.clientX - box.left) / box.width) * size);
    const y = Math.floor(((evt.clientY - box.top) / box.height) * size);
    this.setCursor(x >= 0 && y >= 0 && x < size && y < size ? [y, x] : null);
  }

  setCursor(cursor) {
    const same =
      cursor === this.cursor ||
      (cursor && this.cursor && cursor[0] === this.cursor[0] && cursor[1] === this.cursor[1]);
    if (same || !this.view) return;
    this.cursor = cursor;
    this.paint();
    this.onHover(cursor ? this.describe(cursor) : null);
  }

  key(evt) {
    if (!this.view) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const last = this.view.agg.size - 1;
    if (moves[evt.key]) {
      evt.preventDefault();
      const [a, b] = this.cursor || [0, 0];
      const [da, db] = this.cursor ? moves[evt.key] : [0, 0];
      this.setCursor([Math.max(0, Math.min(last, a + da)), Math.max(0, Math.min(last, b + db))]);
    } else if ((evt.key === "Enter" || evt.key === " ") && this.cursor) {
      evt.preventDefault();
      this.onPick(this.describe(this.cursor));
    }
  }
}
