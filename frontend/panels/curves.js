// Training curves (loss and accuracy, train vs validation) with the best epoch, the overfitting
// onset and the shown epoch marked; a click on a chart shows that epoch.

import { h, fill, isNum } from "../dom.js";
import { lineChart } from "../charts.js";
import { card, showState } from "./common.js";

const MAIN_KEYS = ["loss", "val_loss", "accuracy", "val_accuracy"];

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
    const panels = [];
    const loss = [
      series("loss", "train loss", "train"),
      series("val_loss", "validation loss", "val"),
    ].filter(Boolean);
    const acc = [
      series("accuracy", "train accuracy", "train"),
      series("val_accuracy", "validation accuracy", "val"),
    ].filter(Boolean);
    if (loss.length) panels.push(panel("Loss", loss, false));
    if (acc.length) panels.push(panel("Accuracy", acc, true));
    if (!panels.length) {
      // Other Keras log keys only: plot the first couple of them.
      for (const k of keys.filter((key) => !key.startsWith("val_")).slice(0, 2)) {
        const lines = [
          series(k, `train ${k}`, "train"),
          series(`val_${k}`, `validation ${k}`, "val"),
        ];
        panels.push(panel(k, lines.filter(Boolean), false));
      }
    }
    const extra = keys.filter((k) => !MAIN_KEYS.includes(k));
    const note = [];
    if (best !== null && !isNum(onset)) note.push(`Best epoch by validation loss: ${best}.`);
    if (best !== null && isNum(onset)) {
      note.push(
        `Validation loss was best at epoch ${best}; overfitting sets in from epoch ${onset}.`,
      );
    }
    if (extra.length) note.push(`Other logged series: ${extra.join(", ")}.`);
    if (onPick) note.push("Click a chart to show that epoch.");
    fill(
      body,
      h("div", { class: "curve-grid" }, panels),
      note.length ? h("p", { class: "caption", text: note.join(" ") }) : null,
    );
  }

  return { element: section, update };
}
