// Training curves: one chart per logged quantity (loss, accuracy, then every other series the
// run logged, e.g. a Lightning run's `val_acc`), train vs validation, with the best epoch, the
// overfitting onset and the shown epoch marked; a click on a chart shows that epoch. Each
// chart keeps its drawn size (style.css), so its text does not grow with the panel.

import { h, fill, isNum } from "../dom.js";
import { lineChart } from "../charts/line_chart.js";
import { card, showState } from "./common.js";

// Keras names a validation series "val_" + the name of its training series.
const VALIDATION_PREFIX = "val_";
// The quantities shown first, in this order; the others follow by name.
const FIRST = ["loss", "accuracy"];
// Chart titles of the quantities the tab knows (the others are titled with their own name);
// the ECE is the route's, of the calibration bins.
const TITLES = { loss: "Loss", accuracy: "Accuracy", ece: "ECE" };
// A quantity whose name says accuracy is drawn on [0, 1].
const ACCURACY_NAME = /acc/i;

/**
 * The logged quantities of `keys` (the /curves keys): [{base, title, train, validation}] with
 * `train` / `validation` the key of each series or null, loss and accuracy first.
 */
function quantities(keys) {
  const bases = [];
  for (const key of keys) {
    const base = key.startsWith(VALIDATION_PREFIX) ? key.slice(VALIDATION_PREFIX.length) : key;
    if (base && !bases.includes(base)) bases.push(base);
  }
  const rank = (base) => (FIRST.includes(base) ? FIRST.indexOf(base) : FIRST.length);
  bases.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return bases.map((base) => ({
    base,
    title: Object.hasOwn(TITLES, base) ? TITLES[base] : base,
    train: keys.includes(base) ? base : null,
    validation: keys.includes(VALIDATION_PREFIX + base) ? VALIDATION_PREFIX + base : null,
  }));
}

/**
 * actions: jumpToStep(step).
 * update({loading} | {error} | {empty} | {curves, onset, step, canPick}): `curves` is the
 * /curves answer (its `best_epoch` is marked), `onset` the overfitting finding's onset epoch
 * or null, `step` the shown epoch, `canPick` whether clicking a chart may select an epoch.
 */
export function create(container, actions) {
  const { section, body } = card({ title: "Training curves", bodyClass: "curves-body" });
  container.append(section);

  function update(data) {
    if (
      showState(body, data, {
        loadingText: "Loading training curves\u2026",
        errorTitle: "Could not load the training curves.",
      })
    ) {
      return;
    }
    const { onset, step, canPick } = data;
    const curves = (data.curves && data.curves.curves) || {};
    const best = isNum(data.curves.best_epoch) ? data.curves.best_epoch : null;
    const keys = Object.keys(curves);
    if (!keys.length) {
      fill(
        body,
        h("p", { class: "muted", text: "No loss or metric curves are stored for this run." }),
      );
      return;
    }
    const markers = [];
    if (best !== null) markers.push({ x: best, label: `best epoch ${best}`, cls: "best" });
    if (isNum(onset)) markers.push({ x: onset, label: `overfitting onset ${onset}`, cls: "onset" });
    const series = (key, label, cls) =>
      curves[key] && Array.isArray(curves[key].steps)
        ? { label, cls, steps: curves[key].steps, values: curves[key].values || [] }
        : null;
    const onPick = canPick ? (x) => actions.jumpToStep(x) : null;
    const panel = (title, lines, percent) =>
      h(
        "figure",
        { class: "curve-panel" },
        h(
          "figcaption",
          null,
          h("span", { class: "panel-title", text: title }),
          h(
            "span",
            { class: "legend" },
            lines.map((x) =>
              h(
                "span",
                { class: "legend-item" },
                h("span", { class: `key line ${x.cls}` }),
                x.label,
              ),
            ),
            markers.map((mk) =>
              h(
                "span",
                { class: "legend-item" },
                h("span", { class: `key vline ${mk.cls}` }),
                mk.label,
              ),
            ),
          ),
        ),
        lineChart({
          series: lines,
          markers,
          current: step,
          yLabel: title,
          ariaLabel: `${title} per epoch, train vs validation`,
          onPick,
          percent,
        }),
      );
    const panels = quantities(keys).map((q) => {
      const lines = [
        q.train ? series(q.train, `train ${q.base}`, "train") : null,
        q.validation ? series(q.validation, `validation ${q.base}`, "val") : null,
      ].filter(Boolean);
      const figure = panel(q.title, lines, ACCURACY_NAME.test(q.base));
      figure.dataset.quantity = q.base;
      return figure;
    });
    const note = [];
    if (best !== null && !isNum(onset)) note.push(`Best epoch by validation loss: ${best}.`);
    if (best !== null && isNum(onset)) {
      note.push(
        `Validation loss was best at epoch ${best}; overfitting sets in from epoch ${onset}.`,
      );
    }
    if (onPick) note.push("Click a chart to show that epoch.");
    fill(
      body,
      h("div", { class: "curve-grid" }, panels),
      note.length ? h("p", { class: "caption", text: note.join(" ") }) : null,
    );
  }

  return { element: section, update };
}
