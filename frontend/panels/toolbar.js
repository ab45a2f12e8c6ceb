// Toolbar: run, split and epoch pickers, play, refresh and the status line.
//
// Every panel module exports create(container, actions): it appends its own element to
// `container`, calls `actions` (functions of the app) on user input, and returns
// {element, update(data)}, plus destroy() when it holds listeners outside its element.

import { h, uid } from "../dom.js";

/**
 * actions: selectRun(run), selectSplit(split), selectStepIndex(index), togglePlay(), refresh().
 * update({runs, run, splits, split, steps, step, playing, status}): `runs` and `splits` are
 * lists of names, `steps` the run's epochs; `step` the shown one (or null).
 */
export function create(container, actions) {
  const ids = { run: uid("run"), split: uid("split"), epoch: uid("epoch") };
  const runSelect = h("select", {
    id: ids.run,
    "aria-label": "Run",
    onchange: () => actions.selectRun(runSelect.value),
  });
  const splitSelect = h("select", {
    id: ids.split,
    "aria-label": "Split",
    onchange: () => actions.selectSplit(splitSelect.value),
  });
  const epochSlider = h("input", {
    id: ids.epoch,
    type: "range",
    min: "0",
    max: "0",
    step: "1",
    value: "0",
    "aria-label": "Epoch",
    oninput: () => actions.selectStepIndex(Number(epochSlider.value)),
  });
  const epochLabel = h("output", { class: "epoch-label", for: ids.epoch, "aria-live": "polite" });
  const playButton = h("button", {
    type: "button",
    class: "btn play",
    onclick: () => actions.togglePlay(),
  });
  const statusText = h("span", { class: "status-text", role: "status", "aria-live": "polite" });
  const epochField = h(
    "div",
    { class: "field epoch-field" },
    h("label", { for: ids.epoch, text: "Epoch" }),
    h("div", { class: "epoch-row" }, playButton, epochSlider, epochLabel),
  );
  const element = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Selection" },
    h("div", { class: "field" }, h("label", { for: ids.run, text: "Run" }), runSelect),
    h("div", { class: "field" }, h("label", { for: ids.split, text: "Split" }), splitSelect),
    epochField,
    h(
      "div",
      { class: "toolbar-end" },
      statusText,
      h("button", {
        type: "button",
        class: "btn ghost",
        text: "Refresh",
        onclick: () => actions.refresh(),
      }),
    ),
  );
  container.append(element);

  function setOptions(select, names) {
    const current = [...select.options].map((o) => o.value);
    if (current.join("\n") === names.join("\n")) return;
    select.replaceChildren(...names.map((name) => h("option", { value: name, text: name })));
  }

  function update({ runs, run, splits, split, steps, step, playing, status }) {
    setOptions(runSelect, runs);
    runSelect.disabled = runs.length === 0;
    if (run !== null) runSelect.value = run;
    setOptions(splitSelect, splits);
    splitSelect.value = split;
    splitSelect.disabled = splits.length < 2;

    epochField.hidden = steps.length === 0 || step === null;
    if (!epochField.hidden) {
      const idx = steps.indexOf(step);
      epochSlider.max = String(steps.length - 1);
      epochSlider.value = String(idx);
      epochSlider.disabled = steps.length < 2;
      epochSlider.setAttribute("aria-valuetext", `epoch ${step}`);
      epochLabel.textContent = `${step}  (${idx + 1} of ${steps.length})`;
    }
    playButton.disabled = steps.length < 2;
    playButton.textContent = playing ? "\u275A\u275A" : "\u25B6";
    playButton.setAttribute("aria-pressed", playing ? "true" : "false");
    playButton.setAttribute("aria-label", playing ? "Pause" : "Play through epochs");
    playButton.title = playing ? "Pause" : "Play through epochs";
    statusText.textContent = status;
  }

  return {
    element,
    update,
    /** Moves keyboard focus to the epoch slider (after a jump from a chart or a finding). */
    focusEpoch: () => epochSlider.focus({ preventScroll: true }),
  };
}
