// The one-vs-rest precision-recall trade-off of one class: the curve with a draggable
// threshold, the operating point's precision / recall / F1 and counts, and thresholds for a
// recall or precision target (answered by the /pr route); under the counts, the examples whose
// decision changes between the default threshold 0.5 and the chosen one (/crossings).

import { h, classLabel, fill, fmt, fmtInt, fmtThreshold, isNum, uid } from "../dom.js";
import { PRChart } from "../charts/pr_chart.js";
import { card, classPicker, examplesTable, showState } from "./common.js";
import { classHeadings, countsOfMatrix, labelHeadings, twoByTwo } from "../two_by_two.js";

// How the route computed an AP or a ROC AUC (its `average_precision_method`,
// `roc_auc_method`): the note after the figure, and the AP's tooltip.
const METHODS = {
  exact: { note: "exact", apTitle: "Average precision (step-wise, as scikit-learn)" },
  threshold_grid: {
    note: "from the threshold grid",
    apTitle: "Average precision (step-wise, as scikit-learn) computed from the stored thresholds",
  },
};

/** The METHODS entry of the route's method name; null for none or an unknown one. */
function methodOf(name) {
  return typeof name === "string" && Object.hasOwn(METHODS, name) ? METHODS[name] : null;
}

/** " (note)" of a method, or nothing. */
function methodNote(name) {
  const method = methodOf(name);
  return method ? ` (${method.note})` : "";
}

/**
 * actions: selectPrClass(classIndex), setThreshold(value), setTarget("minRecall" |
 * "minPrecision", text), setCosts(fnCost, fpCost) (texts, both "" for none),
 * loadCrossings(params) (the /crossings answer, null when superseded). Without setTarget,
 * setCosts and loadCrossings (the HTML report, which has no route to ask) the panel leaves out
 * the target and cost inputs and the crossing examples.
 * update(...) data may also carry {fnCost, fpCost}: the texts of the cost inputs.
 * update({loading} | {error} | {empty} | {pr, threshold, minRecall, minPrecision}), each with
 * {classNames, classIndex} for the class picker and the run's `task` (it names the 2x2's
 * rows). `pr` is the /pr answer; `threshold` the value the user chose (null: start at the
 * best-F1 point).
 */
export function create(container, actions) {
  const ids = {
    cls: uid("prclass"),
    thr: uid("thr"),
    minRecall: uid("minrecall"),
    minPrecision: uid("minprecision"),
    fnCost: uid("fncost"),
    fpCost: uid("fpcost"),
  };
  let mode = "pr"; // "pr" or "roc", for the tab's lifetime
  let shown = null; // the last data drawn, to redraw in the other mode
  const modeName = uid("curvemode");
  const modeGroup = h("div", {
    class: "segmented",
    role: "radiogroup",
    "aria-label": "Curve",
  });
  for (const [value, label] of [
    ["pr", "PR"],
    ["roc", "ROC"],
  ]) {
    const input = h("input", {
      type: "radio",
      name: modeName,
      value,
      "data-mode": value,
      checked: mode === value,
      onchange: () => {
        if (!input.checked) return;
        mode = value;
        if (shown) render({ ...shown, threshold: view ? view.pr.thresholds[view.index] : null });
      },
    });
    modeGroup.append(h("label", { class: "seg" }, input, h("span", { text: label })));
  }
  const rocText = h("span", { class: "pill roc-auc" });
  const classes = classPicker({
    id: ids.cls,
    ariaLabel: "Class for the PR curve",
    onSelect: (classIndex) => actions.selectPrClass(classIndex),
  });
  const apText = h("span", { class: "pill" });
  const { section, body } = card({
    title: "Precision\u2013recall trade-off",
    span: "span-12",
    bodyClass: "pr-body",
    tools: h(
      "div",
      { class: "head-tools" },
      h("label", { for: ids.cls, text: "Class" }),
      classes.element,
      modeGroup,
      apText,
      rocText,
    ),
  });
  container.append(section);
  let view = null; // the shown curve and its controls: {pr, chart, slider, ...}

  function update(data) {
    classes.update(data.classNames, data.classIndex);
    const state = showState(body, data, {
      loadingText: "Loading the precision\u2013recall data\u2026",
      errorTitle: "Could not load the precision\u2013recall data.",
      keepWhileLoading: true,
    });
    if (state) {
      if (!data.loading) {
        view = null;
        shown = null;
        apText.textContent = "";
        rocText.textContent = "";
      }
      return;
    }
    render(data);
  }

  function render(data) {
    const before = shown; // the curve drawn until now
    shown = data;
    const { pr, classNames, classIndex, threshold, minRecall, minPrecision } = data;
    const T = pr.thresholds.length;
    let idx;
    if (isNum(threshold)) idx = nearestIndex(pr.thresholds, threshold);
    else if (pr.best_f1 && isNum(pr.best_f1.index)) idx = pr.best_f1.index;
    else idx = nearestIndex(pr.thresholds, 0.5);
    idx = Math.max(0, Math.min(T - 1, idx));

    apText.textContent = `AP ${fmt(pr.average_precision)}${methodNote(pr.average_precision_method)}`;
    apText.title = (methodOf(pr.average_precision_method) ?? METHODS.exact).apTitle;
    rocText.textContent = isNum(pr.roc_auc)
      ? `ROC AUC ${fmt(pr.roc_auc)}${methodNote(pr.roc_auc_method)}`
      : "";

    const className = classLabel(pr.class_name ?? classNames[classIndex], classIndex);
    // The rest: the other class of a binary run, by its name; a label's: the rows without it.
    const restName =
      classNames.length === 2 ? String(classNames[1 - classIndex] ?? "other") : "other";
    const headings =
      data.task === "multilabel" ? labelHeadings(className) : classHeadings(className, restName);
    const choose = (i) => {
      setIndex(i);
      actions.setThreshold(pr.thresholds[view.index]);
    };
    const chart = new PRChart(pr, {
      onChange: choose,
      mode,
      ariaLabel: `${mode === "roc" ? "ROC" : "Precision-recall"} curve of class ${className}; use the arrow keys to move the threshold`,
    });
    chart.svg.setAttribute("id", ids.thr + "-chart");
    const slider = h("input", {
      id: ids.thr,
      type: "range",
      min: "0",
      max: String(T - 1),
      step: "1",
      value: String(idx),
      "aria-label": "Decision threshold",
      oninput: () => choose(Number(slider.value)),
    });
    view = {
      pr,
      chart,
      slider,
      index: idx,
      value: h("output", { class: "thr-value", for: ids.thr }),
      stats: h("div", { class: "op-stats" }),
      matrix: h("div", { class: "op-matrix" }),
      crossings: actions.loadCrossings ? h("div", { class: "crossings" }) : null,
      // The crossings are counted from the stored threshold nearest the default 0.5.
      startIndex: nearestIndex(pr.thresholds, 0.5),
      headings,
    };

    const legend = h(
      "ul",
      { class: "legend" },
      h("li", null, h("span", { class: "key best" }), "best F1"),
      pr.at_recall ? h("li", null, h("span", { class: "key at-recall" }), "recall target") : null,
      pr.at_precision
        ? h("li", null, h("span", { class: "key at-precision" }), "precision target")
        : null,
      pr.min_cost ? h("li", null, h("span", { class: "key min-cost" }), "lowest cost") : null,
      mode === "roc" ? h("li", null, h("span", { class: "key chance" }), "chance") : null,
      h("li", null, h("span", { class: "key cursor" }), "selected threshold"),
    );
    const best = pr.best_f1;
    const bestLine = best
      ? h(
          "div",
          { class: "target" },
          h("span", {
            text: `Best F1 ${fmt(best.f1)} at threshold ${fmtThreshold(best.threshold)}`,
          }),
          h("button", {
            type: "button",
            class: "btn small",
            text: "Use",
            "aria-label": "Use the best-F1 threshold",
            onclick: () => choose(best.index),
          }),
        )
      : h("div", { class: "target muted", text: "No best-F1 point (no positive examples?)" });

    const targetRow = (label, id, value, key, op) => {
      const input = h("input", {
        id,
        type: "number",
        min: "0",
        max: "1",
        step: "0.01",
        placeholder: "0.90",
        value,
        "aria-label": label,
        onchange: () => {
          const v = input.value.trim();
          if (v !== "" && !(Number(v) >= 0 && Number(v) <= 1)) {
            input.setCustomValidity("Enter a number between 0 and 1");
            input.reportValidity();
            return;
          }
          input.setCustomValidity("");
          actions.setTarget(key, v);
        },
      });
      let result;
      if (value === "") result = h("span", { class: "muted", text: "enter a target" });
      else if (op) {
        result = h(
          "span",
          { class: "target-result" },
          h("span", {
            text: `threshold ${fmtThreshold(op.threshold)} \u2192 precision ${fmt(op.precision)}, recall ${fmt(op.recall)}`,
          }),
          h("button", {
            type: "button",
            class: "btn small",
            text: "Use",
            "aria-label": `Use the threshold for ${label}`,
            onclick: () => choose(op.index),
          }),
        );
      } else
        result = h("span", { class: "warn-text", text: "not reachable at any stored threshold" });
      return h("div", { class: "target" }, h("label", { for: id, text: label }), input, result);
    };

    const side = h(
      "div",
      { class: "pr-side" },
      h(
        "div",
        { class: "thr-row" },
        h("label", { for: ids.thr, text: "Threshold" }),
        slider,
        view.value,
      ),
      h("p", {
        class: "hint",
        text: "Drag on the curve, use the slider, or focus the chart and press the arrow keys.",
      }),
      view.stats,
      view.matrix,
      view.crossings,
      h(
        "div",
        { class: "targets" },
        bestLine,
        actions.setTarget
          ? [
              targetRow(
                "Threshold for recall \u2265",
                ids.minRecall,
                minRecall,
                "minRecall",
                pr.at_recall,
              ),
              targetRow(
                "Threshold for precision \u2265",
                ids.minPrecision,
                minPrecision,
                "minPrecision",
                pr.at_precision,
              ),
            ]
          : null,
      ),
      actions.setCosts
        ? costBlock(pr.min_cost, data.fnCost ?? "", data.fpCost ?? "", choose, headings)
        : null,
    );
    const info = h("p", {
      class: "caption",
      text: `Class \u201c${className}\u201d vs rest \u00b7 ${fmtInt(pr.positives)} positives, ${fmtInt(pr.negatives)} negatives \u00b7 ${pr.split}, epoch ${pr.step} \u00b7 ${T} stored thresholds`,
    });
    // Rebuilding the panel must not drop keyboard focus (e.g. after typing a recall target),
    // nor, when the same curve is drawn again, the text being typed into a number input: the
    // answer to the cost committed before may land while the user types the next one.
    const active = document.activeElement;
    const focusedId =
      active && active !== document.body && body.contains(active) ? active.id : null;
    const sameCurve = before?.pr.run === pr.run && before?.pr.class === pr.class;
    const typed = focusedId && active.type === "number" && sameCurve ? active.value : null;
    fill(
      body,
      h(
        "div",
        { class: "pr-layout" },
        h("div", { class: "pr-plot" }, chart.svg, legend, info),
        side,
      ),
    );
    setIndex(idx);
    const focused = focusedId ? document.getElementById(focusedId) : null;
    if (focused && typed !== null) focused.value = typed;
    focused?.focus({ preventScroll: true });
  }

  /** The cost inputs and, when the route answered with costs, the lowest-cost point. */
  function costBlock(op, fnCost, fpCost, choose, headings) {
    const input = (id, label, value) =>
      h("input", {
        id,
        type: "number",
        min: "0",
        step: "any",
        placeholder: "1",
        value,
        "aria-label": label,
        onchange: apply,
      });
    const fnInput = input(ids.fnCost, "Cost of a false negative", fnCost);
    const fpInput = input(ids.fpCost, "Cost of a false positive", fpCost);
    function apply() {
      const texts = [fnInput, fpInput].map((el) => el.value.trim());
      for (const el of [fnInput, fpInput]) {
        const v = el.value.trim();
        el.setCustomValidity(v !== "" && !(Number(v) >= 0) ? "Enter a non-negative number" : "");
      }
      const bad = [fnInput, fpInput].find((el) => !el.checkValidity());
      if (bad) {
        bad.reportValidity();
        return;
      }
      if ((texts[0] === "") !== (texts[1] === "")) return; // both or neither
      actions.setCosts(texts[0], texts[1]);
    }
    let result;
    if (fnCost === "" || fpCost === "")
      result = h("p", { class: "muted", text: "Enter both costs to find the cheapest threshold." });
    else if (!op) result = h("p", { class: "muted", text: "No lowest-cost point." });
    else {
      result = h(
        "div",
        { class: "min-cost" },
        h(
          "div",
          { class: "cost-result" },
          h("span", {
            class: "min-cost-text",
            text: `Lowest cost at threshold ${fmtThreshold(op.threshold)}: ${fmt(op.cost, 4)} per example (${fmt(op.cost_at_default, 4)} at ${fmtThreshold(op.default_threshold)}, saves ${fmt(op.cost_saved, 4)})`,
          }),
          h("button", {
            type: "button",
            class: "btn small",
            text: "Move there",
            "aria-label": "Move the threshold to the lowest-cost point",
            onclick: () => choose(op.index),
          }),
        ),
        twoByTwo({
          counts: countsOfMatrix(op.matrix),
          headings,
          ariaLabel: `Counts at the lowest-cost threshold ${fmtThreshold(op.threshold)}`,
          className: "cost-matrix",
        }),
      );
    }
    return h(
      "div",
      { class: "targets costs" },
      h(
        "div",
        { class: "target" },
        h("label", { for: ids.fnCost, text: "Cost of a false negative" }),
        fnInput,
      ),
      h(
        "div",
        { class: "target" },
        h("label", { for: ids.fpCost, text: "Cost of a false positive" }),
        fpInput,
      ),
      result,
    );
  }

  function setIndex(i) {
    const { pr, chart, slider } = view;
    i = Math.max(0, Math.min(pr.thresholds.length - 1, i));
    view.index = i;
    const t = pr.thresholds[i];
    slider.value = String(i);
    slider.setAttribute("aria-valuetext", `threshold ${fmtThreshold(t)}`);
    view.value.textContent = fmtThreshold(t);
    chart.setIndex(i);
    const at = (k) => (Array.isArray(pr[k]) ? pr[k][i] : null);
    const stat = (label, metric) =>
      h(
        "div",
        { class: "op-stat" },
        h("span", { class: "stat-label", text: label }),
        h("span", { class: "stat-value", "data-metric": metric, text: fmt(at(metric)) }),
      );
    fill(view.stats, stat("Precision", "precision"), stat("Recall", "recall"), stat("F1", "f1"));
    const counts = Object.fromEntries(["tp", "fn", "fp", "tn"].map((key) => [key, at(key)]));
    fill(
      view.matrix,
      twoByTwo({
        counts,
        headings: view.headings,
        ariaLabel: `One-vs-rest confusion matrix at threshold ${fmtThreshold(t)}`,
        className: "op-table",
      }),
    );
    if (view.crossings) crossings.request(view);
  }

  const crossings = crossingExamples(actions);

  return {
    element: section,
    update,
    /** Scrolls the panel into view (after a class was picked elsewhere). */
    reveal: () => section.scrollIntoView({ behavior: "smooth", block: "start" }),
    destroy: () => crossings.cancel(),
  };
}

// The two groups of examples whose decision a moved threshold changes, by direction: the
// heading of each and the word of its count.
const CROSSING_GROUPS = {
  down: {
    positives: ["Missed positives now found (FN \u2192 TP)", "found"],
    negatives: ["New false alarms (TN \u2192 FP)", "new"],
  },
  up: {
    positives: ["Positives now missed (TP \u2192 FN)", "missed"],
    negatives: ["False alarms removed (FP \u2192 TN)", "removed"],
  },
};

// The threshold must rest this long before the examples crossing it are asked for.
const CROSSINGS_DELAY_MS = 250;

/**
 * The "Examples crossing from T0 to T" section: asks actions.loadCrossings once the threshold
 * settles (debounced), and draws only the answer of the latest request.
 */
function crossingExamples(actions) {
  let timer = null;
  let latest = 0; // the number of the latest request: older answers are dropped

  function request(view) {
    const { pr, startIndex, crossings: box } = view;
    const index = view.index;
    const t0 = pr.thresholds[startIndex];
    const t = pr.thresholds[index];
    const title = h("h4", {
      class: "crossings-title",
      text: `Examples crossing from ${fmtThreshold(t0)} to ${fmtThreshold(t)}`,
    });
    clearTimeout(timer);
    const number = ++latest;
    if (index === startIndex) {
      fill(
        box,
        title,
        h("p", {
          class: "muted crossings-note",
          text: `Move the threshold away from ${fmtThreshold(t0)} to list the examples whose decision changes.`,
        }),
      );
      return;
    }
    fill(box, title, h("p", { class: "muted crossings-note", text: "Loading the examples\u2026" }));
    box.classList.add("loading");
    timer = setTimeout(async () => {
      let doc = null;
      let problem = null;
      try {
        doc = await actions.loadCrossings({
          run: pr.run,
          split: pr.split,
          step: pr.step,
          class: pr.class,
          from: t0,
          to: t,
        });
      } catch (err) {
        problem = err.message || String(err);
      }
      if (number !== latest || (doc === null && problem === null)) return; // superseded
      box.classList.remove("loading");
      if (problem !== null) {
        fill(box, title, h("p", { class: "muted crossings-note", text: problem }));
        return;
      }
      fill(box, title, ...crossingGroups(doc));
    }, CROSSINGS_DELAY_MS);
  }

  /** Forgets the pending request and any answer still to come. */
  function cancel() {
    clearTimeout(timer);
    latest += 1;
  }

  return { request, cancel };
}

/** The two groups of a /crossings answer, and a note where part of the span is not sampled. */
function crossingGroups(doc) {
  const groups = CROSSING_GROUPS[doc.direction] ?? CROSSING_GROUPS.up;
  const parts = ["positives", "negatives"].map((key) => {
    const group = doc[key] ?? {};
    const [heading, word] = groups[key];
    const listed = Array.isArray(group.examples) ? group.examples : [];
    return h(
      "div",
      { class: `crossing-group crossing-${key}` },
      h(
        "p",
        { class: "crossing-head" },
        h("strong", { text: heading }),
        h("span", { text: ": " }),
        h("span", {
          class: "crossing-count",
          text: `${fmtInt(group.count)} ${word}, ${fmtInt(listed.length)} listed`,
        }),
      ),
      examplesTable({
        className: "examples crossing-examples",
        ariaLabel: heading,
        headings: ["Score"],
        examples: listed,
        cells: (e) => [h("td", { class: "num", "data-metric": "score", text: fmt(e.score, 4) })],
        emptyText: group.count ? "None of them was sampled." : "No example crosses here.",
      }),
    );
  });
  const range = Array.isArray(doc.stored_range) ? doc.stored_range : null;
  const note = h("p", {
    class: "caption",
    text:
      `Listed: the first ${fmtInt(doc.per_bin)} examples by position per threshold step among the first ${fmtInt(doc.sampled_rows)}` +
      (doc.complete || !range
        ? "."
        : `; only the steps between ${fmtThreshold(range[0])} and ${fmtThreshold(range[1])} are sampled.`),
  });
  return [...parts, note];
}

function nearestIndex(list, value) {
  let best = 0;
  for (let i = 1; i < list.length; i++)
    if (Math.abs(list[i] - value) < Math.abs(list[best] - value)) best = i;
  return best;
}
