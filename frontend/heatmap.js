// The confusion counts of a /confusion answer and the change of the matrix in a /compare
// answer, each in either of its forms (full matrices, or the cells of a many-class answer), and
// the overview heatmap that draws either on a <canvas> fitted to its panel, with classes
// grouped into square blocks when there are more classes than the panel has room for.

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
  const inside = cellInside(rows, cols, n);
  const valid = (k) => inside(k) && isNum(counts[k]);
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

/** Whether cell k of a cells answer (`rows`, `cols`) is a cell of an n x n matrix. */
function cellInside(rows, cols, n) {
  const index = (x) => Number.isInteger(x) && x >= 0 && x < n;
  return (k) => index(rows[k]) && index(cols[k]);
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
 * The layer of a confusion heatmap: `counts` (see confusionCounts) valued as `mode` (see
 * shareOf), for Heatmap.draw. Diagonal and off-diagonal blocks are scaled each to their own
 * largest value, so the errors stay visible beside the much larger diagonal. A block's
 * description holds its `count` and `share` (of the rows' actual examples).
 */
export function confusionLayer(counts, mode) {
  return (k) => {
    const agg = aggregate(counts, k);
    const { size } = agg;
    const values = new Float64Array(size * size);
    let maxDiag = 0;
    let maxOff = 0;
    for (let a = 0; a < size; a++) {
      for (let b = 0; b < size; b++) {
        const v = shareOf(mode, agg.sums[a * size + b], agg.rowTotals[a], agg.colTotals[b]);
        values[a * size + b] = isNum(v) ? v : 0;
        if (a === b) maxDiag = Math.max(maxDiag, values[a * size + b]);
        else maxOff = Math.max(maxOff, values[a * size + b]);
      }
    }
    const tones = new Uint8Array(size * size);
    const strength = new Float64Array(size * size);
    values.forEach((v, x) => {
      const top = Math.floor(x / size) === x % size ? maxDiag : maxOff;
      if (v > 0 && top > 0) {
        tones[x] = Math.floor(x / size) === x % size ? 1 : 2;
        strength[x] = Math.min(1, v / top);
      }
    });
    return {
      size,
      tones,
      strength,
      about(a, b) {
        const count = agg.sums[a * size + b];
        const rowTotal = agg.rowTotals[a];
        return { count, share: rowTotal > 0 ? count / rowTotal : null };
      },
    };
  };
}

/**
 * The signed change of the confusion matrix in a /compare answer, in either of its forms
 * (`difference`, full [C][C] lists, or `difference_cells`): {n, truncated, each(fn),
 * block(r0, r1, c0, c1)}. `each(fn)` calls fn(i, j, cell) for every cell that changed and
 * `block` returns the dense rows [r0, r1) x columns [c0, c1); a cell is {counts, true,
 * improvement}: the change of the count, of the share of the actual class (null where
 * undefined), and +1 / -1 / 0 for better / worse / unchanged. Null without either form.
 */
export function differenceCells(c) {
  const n = Array.isArray(c.class_names) ? c.class_names.length : 0;
  const unchanged = { counts: 0, true: 0, improvement: 0 };
  const cellOf = (counts, share, improvement) => ({
    counts: isNum(counts) ? counts : 0,
    true: isNum(share) ? share : null,
    improvement: improvement > 0 ? 1 : improvement < 0 ? -1 : 0,
  });
  const d = c.difference;
  if (d && Array.isArray(d.counts)) {
    const at = (i, j) => cellOf(d.counts[i]?.[j], d.true?.[i]?.[j], d.improvement?.[i]?.[j]);
    const changed = (cell) => cell.counts !== 0 || cell.improvement !== 0;
    return {
      n,
      truncated: false,
      each(fn) {
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            const cell = at(i, j);
            if (changed(cell)) fn(i, j, cell);
          }
        }
      },
      block: (r0, r1, c0, c1) => range(r0, r1).map((i) => range(c0, c1).map((j) => at(i, j))),
    };
  }
  const cells = c.difference_cells;
  if (!cells || !Array.isArray(cells.rows) || !Array.isArray(cells.cols)) return null;
  const { rows, cols } = cells;
  const list = (key) => (Array.isArray(cells[key]) ? cells[key] : []);
  const [counts, shares, improvement] = ["counts", "true", "improvement"].map(list);
  const valid = cellInside(rows, cols, n);
  const length = Math.min(rows.length, cols.length);
  return {
    n,
    truncated: c.cells_truncated === true,
    each(fn) {
      for (let k = 0; k < length; k++)
        if (valid(k)) fn(rows[k], cols[k], cellOf(counts[k], shares[k], improvement[k]));
    },
    block(r0, r1, c0, c1) {
      const out = range(r0, r1).map(() => new Array(Math.max(0, c1 - c0)).fill(unchanged));
      for (let k = 0; k < length; k++) {
        const i = rows[k];
        const j = cols[k];
        if (valid(k) && i >= r0 && i < r1 && j >= c0 && j < c1)
          out[i - r0][j - c0] = cellOf(counts[k], shares[k], improvement[k]);
      }
      return out;
    },
  };
}

/**
 * The layer of a difference heatmap: `diff` (see differenceCells) valued as `mode` ("counts":
 * the change of the counts, "true": of the actual classes' shares), for Heatmap.draw. A
 * block's tone is the sign of the sum of its cells' changes counted for the better (+) or the
 * worse (-) (colour 1 better, 2 worse), its strength that sum's size against the largest. A
 * block's description holds `change` (the sum of its cells' changes), `better` and `worse`
 * (how many of its cells changed for the better, for the worse).
 */
export function differenceLayer(diff, mode) {
  return (k) => {
    const size = Math.ceil(diff.n / k);
    const score = new Float64Array(size * size);
    const change = new Float64Array(size * size);
    const better = new Uint32Array(size * size);
    const worse = new Uint32Array(size * size);
    diff.each((i, j, cell) => {
      const x = Math.floor(i / k) * size + Math.floor(j / k);
      const v = mode === "counts" ? cell.counts : (cell.true ?? 0);
      score[x] += cell.improvement * Math.abs(v);
      change[x] += v;
      if (cell.improvement > 0) better[x] += 1;
      else if (cell.improvement < 0) worse[x] += 1;
    });
    let top = 0;
    for (const v of score) top = Math.max(top, Math.abs(v));
    const tones = new Uint8Array(size * size);
    const strength = new Float64Array(size * size);
    score.forEach((v, x) => {
      const sign = Math.sign(v) || Math.sign(better[x] - worse[x]);
      tones[x] = sign > 0 ? 1 : sign < 0 ? 2 : 0;
      strength[x] = top > 0 ? Math.abs(v) / top : 0;
    });
    return {
      size,
      tones,
      strength,
      about: (a, b) => ({
        change: change[a * size + b],
        better: better[a * size + b],
        worse: worse[a * size + b],
      }),
    };
  };
}

// Classes per side of the table a heatmap block opens: a table that still reads at a glance.
const REGION_CLASSES = 25;

/**
 * [first row, first column] of the REGION_CLASSES x REGION_CLASSES region of `n` classes
 * centred on the block of rows [r0, r1) x columns [c0, c1).
 */
export function regionAround(rows, cols, n) {
  const centre = ([lo, hi]) =>
    Math.max(0, Math.min(n - REGION_CLASSES, Math.floor((lo + hi - REGION_CLASSES) / 2)));
  return [centre(rows), centre(cols)];
}

/** [rows [r0, r1), columns [c0, c1)] of the region at `region` ([first row, first column]). */
export function regionBounds(region, n) {
  return [
    [region[0], Math.min(n, region[0] + REGION_CLASSES)],
    [region[1], Math.min(n, region[1] + REGION_CLASSES)],
  ];
}

/**
 * The heading of an opened region: `title` and a Close button (aria-label `closeLabel`) that
 * calls onClose().
 */
export function regionHead(title, closeLabel, onClose) {
  return h(
    "div",
    { class: "region-head" },
    h("h3", { text: title }),
    h("button", {
      type: "button",
      class: "btn small",
      text: "Close",
      "aria-label": closeLabel,
      onclick: onClose,
    }),
  );
}

/** The index of the row of `block` (rows of cells) with the largest sum of weight(cell). */
export function heaviestRow(block, weight) {
  const sum = (row) => row.reduce((total, cell) => total + weight(cell), 0);
  let best = 0;
  block.forEach((row, k) => {
    if (sum(row) > sum(block[best])) best = k;
  });
  return best;
}

/**
 * [row, column] within `block` (rows of counts) of its largest count; the first in row order
 * among equal counts.
 */
export function largestCell(block) {
  let best = [0, 0];
  block.forEach((row, a) =>
    row.forEach((count, b) => {
      if (count > block[best[0]][best[1]]) best = [a, b];
    }),
  );
  return best;
}

// The colour of each tone, as a CSS custom property of the canvas (an "r, g, b" triple) and
// the triple used when the property is missing.
const TONE_COLOURS = {
  diag: ["--diag", "26, 115, 232"],
  off: ["--off", "217, 48, 37"],
  better: ["--better", "24, 128, 56"],
  worse: ["--worse", "217, 48, 37"],
};

/**
 * The heatmap: `element` holds the canvas; draw({n, layer}) draws the `n` classes at the width
 * of the element's parent, again whenever that width changes. `layer(k)` gives the blocks of
 * k x k classes: {size (blocks per side), tones (Uint8Array, row-major: 0 blank, 1 or 2 the
 * first or second of `tones`), strength (in [0, 1]), about(a, b) (what a block holds)}; see
 * confusionLayer and differenceLayer. onHover(block | null) and onPick(block) receive
 * {rows: [r0, r1), cols: [c0, c1), ...about(a, b)}; the arrow keys move a cursor block and
 * Enter picks it. destroy() stops following the width.
 */
export class Heatmap {
  constructor({ ariaLabel, onHover, onPick, tones = ["diag", "off"], className = "" }) {
    this.onHover = onHover;
    this.onPick = onPick;
    this.tones = tones.map((tone) => TONE_COLOURS[tone]);
    this.canvas = h("canvas", {
      class: `heatmap${className ? " " + className : ""}`,
      tabindex: "0",
      role: "img",
      "aria-label": ariaLabel,
    });
    this.element = h("div", { class: "heatmap-wrap" }, this.canvas);
    this.source = null; // {n, layer} drawn last
    this.view = null;
    this.cursor = null; // [block row, block column] under the pointer or the keyboard cursor
    this.canvas.addEventListener("mousemove", (evt) => this.pointAt(evt));
    this.canvas.addEventListener("mouseleave", () => this.setCursor(null));
    this.canvas.addEventListener("click", (evt) => {
      this.pointAt(evt);
      if (this.cursor) this.onPick(this.describe(this.cursor));
    });
    this.canvas.addEventListener("keydown", (evt) => this.key(evt));
    // The heatmap fits its panel: a new width draws it again.
    let lastWidth = 0;
    this.resize = new ResizeObserver(() => {
      const width = this.element.getBoundingClientRect().width;
      if (width === lastWidth) return;
      lastWidth = width;
      if (this.source && this.element.isConnected) this.draw(this.source);
    });
    this.resize.observe(this.element);
  }

  /** Draws the `n` classes of `layer` (see the class comment). */
  draw({ n, layer }) {
    this.source = { n, layer };
    const parent = this.element.parentElement;
    // The layout width, not clientWidth: that one rounds a fractional width up.
    const available = parent ? parent.getBoundingClientRect().width : 0;
    const side = Math.max(MIN_BLOCK_PX, Math.min(MAX_SIDE_PX, Math.floor(available || 480)));
    const k = classesPerBlock(n, side);
    const blocks = layer(k);
    this.view = { n, k, blocks, side };
    this.canvas.dataset.classes = String(n);
    this.canvas.dataset.classesPerBlock = String(k);
    if (this.cursor && (this.cursor[0] >= blocks.size || this.cursor[1] >= blocks.size))
      this.cursor = null;
    this.paint();
  }

  paint() {
    const { blocks, side } = this.view;
    const { size, tones, strength } = blocks;
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
    const colours = this.tones.map(
      ([property, fallback]) => style.getPropertyValue(property).trim() || fallback,
    );
    const edge = (b) => Math.round((b * side) / size);
    for (let a = 0; a < size; a++) {
      for (let b = 0; b < size; b++) {
        const tone = tones[a * size + b];
        if (!tone) continue;
        const alpha = 0.08 + 0.92 * Math.sqrt(strength[a * size + b]);
        ctx.fillStyle = `rgba(${colours[tone - 1]}, ${alpha.toFixed(3)})`;
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
    const { n, k, blocks } = this.view;
    const rows = [a * k, Math.min(n, (a + 1) * k)];
    const cols = [b * k, Math.min(n, (b + 1) * k)];
    return { rows, cols, ...blocks.about(a, b) };
  }

  pointAt(evt) {
    if (!this.view) return;
    const box = this.canvas.getBoundingClientRect();
    const { size } = this.view.blocks;
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
    const last = this.view.blocks.size - 1;
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

  destroy() {
    this.resize.disconnect();
  }
}
