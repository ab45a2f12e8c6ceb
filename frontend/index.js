// Metrics Diagnostics: TensorBoard loads this ES module in the tab's iframe and calls render().
// The iframe's <base href="plugin/metricsdiag/"> makes relative fetches reach the plugin routes.
//
// Security: all data from the server is inserted as text (see dom.js); never as markup.

import { h, fill, fmt, fmtPct, fmtInt, fmtEvidence, isNum, storageGet, storageSet, uid } from "./dom.js";
import { PRChart, lineChart } from "./charts.js";

const POLL_MS = 30000;
const PLAY_MS = 900;
const NORMALIZE_KEY = "metricsdiag.normalize";
const RUN_KEY = "metricsdiag.run";
const SEVERITY_RANK = { error: 0, warning: 1, info: 2 };
const SEVERITY_ICON = { error: "\u2716", warning: "\u26A0", info: "\u2139" };

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function getJSON(route, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") query.set(k, String(v));
  }
  const qs = query.toString();
  const url = `./${route}${qs ? "?" + qs : ""}`;
  let resp;
  try {
    resp = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (err) {
    throw new ApiError(`Could not reach the TensorBoard server (${err.message || err}).`, 0);
  }
  const text = await resp.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (err) {
    body = null;
  }
  if (!resp.ok) {
    const msg = body && typeof body.error === "string" ? body.error : `${resp.status} ${resp.statusText}`.trim();
    throw new ApiError(msg || `HTTP ${resp.status}`, resp.status);
  }
  if (body === null || typeof body !== "object") throw new ApiError(`The server sent no valid JSON for /${route}.`, resp.status);
  return body;
}

// ---------------------------------------------------------------------------------------------
// Theme: follow TensorBoard's dark mode when the parent page is reachable, else the OS setting.

function setupTheme() {
  const root = document.documentElement;
  const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  let parentBody = null;
  try {
    if (window.parent && window.parent !== window && window.parent.document) parentBody = window.parent.document.body;
  } catch (err) {
    parentBody = null; // cross-origin or detached: fall back to prefers-color-scheme
  }
  const apply = () => {
    let dark;
    if (parentBody) dark = parentBody.classList.contains("dark-mode");
    else dark = Boolean(media && media.matches);
    root.dataset.theme = dark ? "dark" : "light";
  };
  apply();
  if (media && media.addEventListener) media.addEventListener("change", apply);
  if (parentBody && window.MutationObserver) {
    try {
      new MutationObserver(apply).observe(parentBody, { attributes: true, attributeFilter: ["class"] });
    } catch (err) {
      // Observing the parent is best effort.
    }
  }
}

function loadStyles() {
  if (document.getElementById("metricsdiag-style")) return;
  const link = h("link", { id: "metricsdiag-style", rel: "stylesheet", href: new URL("./style.css", import.meta.url).href });
  document.head.appendChild(link);
}

// ---------------------------------------------------------------------------------------------

class App {
  constructor(root) {
    this.root = root;
    this.runs = [];
    this.runsKey = "";
    this.run = null;
    this.split = "validation";
    this.step = null;
    this.followLatest = true;
    this.normalize = ["counts", "true", "pred"].includes(storageGet(NORMALIZE_KEY, "counts")) ? storageGet(NORMALIZE_KEY, "counts") : "counts";
    this.prClass = null;
    this.threshold = null; // the threshold value the user chose; kept across epochs
    this.thrIndex = 0;
    this.minRecall = "";
    this.minPrecision = "";
    this.confusion = null;
    this.pr = null;
    this.curves = null;
    this.curvesKey = "";
    this.diagnostics = null;
    this.diagKey = "";
    this.playing = false;
    this.playTimer = null;
    this.tokens = { confusion: 0, pr: 0, run: 0 };
    this.build();
  }

  // ----- layout -------------------------------------------------------------------------------

  build() {
    const ids = {
      run: uid("run"),
      split: uid("split"),
      epoch: uid("epoch"),
      prClass: uid("prclass"),
      thr: uid("thr"),
      minRecall: uid("minrecall"),
      minPrecision: uid("minprecision"),
    };
    this.ids = ids;

    this.runSelect = h("select", { id: ids.run, "aria-label": "Run", onchange: () => this.selectRun(this.runSelect.value) });
    this.splitSelect = h("select", { id: ids.split, "aria-label": "Split", onchange: () => this.selectSplit(this.splitSelect.value) });
    this.epochSlider = h("input", {
      id: ids.epoch,
      type: "range",
      min: "0",
      max: "0",
      step: "1",
      value: "0",
      "aria-label": "Epoch",
      oninput: () => this.selectStepIndex(Number(this.epochSlider.value), true),
    });
    this.epochLabel = h("output", { class: "epoch-label", for: ids.epoch, "aria-live": "polite" });
    this.playButton = h("button", {
      type: "button",
      class: "btn play",
      "aria-pressed": "false",
      "aria-label": "Play through epochs",
      onclick: () => this.togglePlay(),
    });
    this.refreshButton = h("button", { type: "button", class: "btn ghost", text: "Refresh", onclick: () => this.refresh(true) });
    this.statusText = h("span", { class: "status-text", role: "status", "aria-live": "polite" });

    const toolbar = h(
      "div",
      { class: "toolbar", role: "toolbar", "aria-label": "Selection" },
      h("div", { class: "field" }, h("label", { for: ids.run, text: "Run" }), this.runSelect),
      h("div", { class: "field" }, h("label", { for: ids.split, text: "Split" }), this.splitSelect),
      (this.epochField = h(
        "div",
        { class: "field epoch-field" },
        h("label", { for: ids.epoch, text: "Epoch" }),
        h("div", { class: "epoch-row" }, this.playButton, this.epochSlider, this.epochLabel)
      )),
      h("div", { class: "toolbar-end" }, this.statusText, this.refreshButton)
    );

    this.notice = h("div", { class: "notice-area" });
    this.findingsBody = h("div", { class: "findings" });
    this.summaryBody = h("div", { class: "summary-cards" });
    this.matrixBody = h("div", { class: "matrix-wrap" });
    this.tableBody = h("div", { class: "table-wrap" });

    this.modeGroup = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Confusion matrix values" });
    const modeName = uid("mode");
    for (const [value, label] of [
      ["counts", "Counts"],
      ["true", "Normalized by true class"],
      ["pred", "Normalized by predicted class"],
    ]) {
      const input = h("input", {
        type: "radio",
        name: modeName,
        value,
        checked: this.normalize === value,
        onchange: () => {
          if (input.checked) this.setNormalize(value);
        },
      });
      this.modeGroup.append(h("label", { class: "seg" }, input, h("span", { text: label })));
    }

    this.prClassSelect = h("select", { id: ids.prClass, "aria-label": "Class for the PR curve", onchange: () => this.selectPrClass(Number(this.prClassSelect.value)) });
    this.prBody = h("div", { class: "pr-body" });
    this.apText = h("span", { class: "pill" });

    this.curvesBody = h("div", { class: "curves-body" });

    this.confusionSection = h(
      "section",
      { class: "card span-7", "aria-labelledby": "md-cm-title" },
      h("header", { class: "card-head" }, h("h2", { id: "md-cm-title", text: "Confusion matrix" }), this.modeGroup),
      this.matrixBody
    );
    this.tableSection = h(
      "section",
      { class: "card span-5", "aria-labelledby": "md-pc-title" },
      h("header", { class: "card-head" }, h("h2", { id: "md-pc-title", text: "Per-class metrics" })),
      this.tableBody
    );
    this.prSection = h(
      "section",
      { class: "card span-12", "aria-labelledby": "md-pr-title" },
      h(
        "header",
        { class: "card-head" },
        h("h2", { id: "md-pr-title", text: "Precision\u2013recall trade-off" }),
        h("div", { class: "head-tools" }, h("label", { for: ids.prClass, text: "Class" }), this.prClassSelect, this.apText)
      ),
      this.prBody
    );

    this.countsArea = h("div", { class: "layout-grid" }, this.confusionSection, this.tableSection, this.prSection);

    fill(
      this.root,
      h(
        "header",
        { class: "page-head" },
        h("div", null, h("h1", { text: "Metrics diagnostics" }), h("p", { class: "subtitle", text: "Is this classifier actually good? Confusion, trade-offs and warning signs per epoch." })),
      ),
      toolbar,
      this.notice,
      h(
        "section",
        { class: "card", "aria-labelledby": "md-find-title" },
        h("header", { class: "card-head" }, h("h2", { id: "md-find-title", text: "Findings" })),
        this.findingsBody
      ),
      this.summaryBody,
      this.countsArea,
      h(
        "section",
        { class: "card", "aria-labelledby": "md-curves-title" },
        h("header", { class: "card-head" }, h("h2", { id: "md-curves-title", text: "Training curves" })),
        this.curvesBody
      )
    );
    this.updatePlayButton();
    this.showLoading();
  }

  showLoading() {
    fill(this.findingsBody, h("p", { class: "muted loading-text", text: "Loading findings\u2026" }));
    fill(this.curvesBody, h("p", { class: "muted loading-text", text: "Loading training curves\u2026" }));
  }

  setStatus(text) {
    this.statusText.textContent = text;
  }

  showNotice(kind, title, detail) {
    fill(
      this.notice,
      h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "note" }, h("strong", { text: title }), detail ? h("span", { text: detail }) : null)
    );
  }

  clearNotice() {
    this.notice.replaceChildren();
  }

  // ----- data loading ----------------------------------------------------------------------

  async start() {
    await this.refresh(false);
    this.poll = setInterval(() => this.refresh(false), POLL_MS);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.refresh(false);
    });
    this.followTensorBoardReload();
  }

  /** Refresh too when the user presses TensorBoard's own reload button (same-origin parent). */
  followTensorBoardReload() {
    let parentDoc = null;
    try {
      parentDoc = window.parent && window.parent !== window ? window.parent.document : null;
    } catch (err) {
      parentDoc = null;
    }
    if (!parentDoc) return;
    const onClick = (evt) => {
      const target = evt.target;
      if (target && typeof target.closest === "function" && target.closest(".reload-button")) {
        setTimeout(() => this.refresh(false), 250);
      }
    };
    try {
      parentDoc.addEventListener("click", onClick, true);
      window.addEventListener("pagehide", () => parentDoc.removeEventListener("click", onClick, true));
    } catch (err) {
      // Without access to the parent, the 30-second poll still keeps the tab current.
    }
  }

  async refresh(manual) {
    if (this.refreshing) return;
    this.refreshing = true;
    if (manual) this.setStatus("Refreshing\u2026");
    try {
      let data;
      try {
        data = await getJSON("runs");
      } catch (err) {
        this.showNotice("error", "Could not load runs.", err.message);
        this.setStatus("");
        return;
      }
      const runs = Array.isArray(data.runs) ? data.runs.filter((r) => r && typeof r.run === "string") : [];
      const key = JSON.stringify(runs);
      const changed = key !== this.runsKey;
      this.runsKey = key;
      this.runs = runs;
      if (!runs.length) {
        this.run = null;
        this.updateRunPicker();
        this.showEmpty();
        this.setStatus(`Updated ${new Date().toLocaleTimeString()}`);
        return;
      }
      const previous = this.run;
      if (!this.run || !runs.some((r) => r.run === this.run)) {
        const remembered = storageGet(RUN_KEY, null);
        this.run = runs.some((r) => r.run === remembered) ? remembered : runs[0].run;
      }
      if (changed || previous !== this.run) this.updateRunPicker();
      const runChanged = previous !== this.run;
      await this.loadRun(runChanged || !previous, runChanged);
      this.setStatus(`Updated ${new Date().toLocaleTimeString()}`);
    } finally {
      this.refreshing = false;
    }
  }

  get runInfo() {
    return this.runs.find((r) => r.run === this.run) || null;
  }

  get steps() {
    const info = this.runInfo;
    return info && Array.isArray(info.steps) ? info.steps.filter(isNum) : [];
  }

  showEmpty() {
    this.countsArea.hidden = true;
    this.summaryBody.replaceChildren();
    this.epochField.hidden = true;
    fill(this.findingsBody, h("p", { class: "muted", text: "No findings without a run." }));
    fill(this.curvesBody, h("p", { class: "muted", text: "No curves without a run." }));
    this.showNotice(
      "info",
      "No metricsdiag data found in this log directory yet.",
      "Add MetricsDiagCallback(log_dir, validation_data=(x_val, y_val)) to model.fit(...); this page refreshes every 30 seconds."
    );
  }

  updateRunPicker() {
    const sel = this.runSelect;
    sel.replaceChildren();
    for (const r of this.runs) sel.append(h("option", { value: r.run, text: r.run }));
    sel.disabled = this.runs.length === 0;
    if (this.run !== null) sel.value = this.run;
  }

  updateSplitPicker() {
    const info = this.runInfo;
    const splits = info && Array.isArray(info.splits) ? info.splits : [];
    const current = [...this.splitSelect.options].map((o) => o.value);
    if (current.join("\n") !== splits.join("\n")) {
      this.splitSelect.replaceChildren();
      for (const sp of splits) this.splitSelect.append(h("option", { value: sp, text: sp }));
    }
    if (!splits.includes(this.split)) this.split = splits.includes("validation") ? "validation" : splits[0] || "validation";
    this.splitSelect.value = this.split;
    this.splitSelect.disabled = splits.length < 2;
  }

  updateEpochControls() {
    const steps = this.steps;
    this.epochField.hidden = steps.length === 0;
    if (!steps.length) {
      this.step = null;
      return;
    }
    if (this.step === null || !steps.includes(this.step) || this.followLatest) {
      if (this.step !== null && !steps.includes(this.step) && !this.followLatest) this.step = nearest(steps, this.step);
      else this.step = steps[steps.length - 1];
    }
    const idx = steps.indexOf(this.step);
    this.epochSlider.max = String(steps.length - 1);
    this.epochSlider.value = String(idx);
    this.epochSlider.disabled = steps.length < 2;
    this.playButton.disabled = steps.length < 2;
    this.epochSlider.setAttribute("aria-valuetext", `epoch ${this.step}`);
    this.epochLabel.textContent = `${this.step}  (${idx + 1} of ${steps.length})`;
  }

  async loadRun(reloadAll, runChanged) {
    const info = this.runInfo;
    if (!info) return;
    const token = ++this.tokens.run;
    if (runChanged) {
      this.confusion = null;
      this.pr = null;
      this.curvesKey = "";
      this.diagKey = "";
      this.prClass = null;
      this.threshold = null;
      this.followLatest = true;
      this.stopPlay();
      this.showLoading();
    }
    this.updateSplitPicker();
    const prevStep = this.step;
    this.updateEpochControls();
    const hasCounts = !info.error && info.has_counts !== false && this.steps.length > 0 && (info.splits || []).length > 0;
    this.countsArea.hidden = !hasCounts;
    if (info.error) {
      this.summaryBody.replaceChildren();
      this.countsArea.hidden = true;
      this.showNotice("error", "This run's metricsdiag data cannot be read.", String(info.error));
    } else if (!hasCounts) {
      this.summaryBody.replaceChildren();
      this.showNotice(
        "info",
        "This run has no confusion counts.",
        "It has training curves only (for example from keras.callbacks.TensorBoard). Add MetricsDiagCallback with validation_data to see confusion matrices and PR curves."
      );
    } else if (!(info.splits || []).includes("validation")) {
      this.showNotice("warning", "This run has no validation data.", "Only the training split is shown; training metrics say little about generalisation.");
    } else {
      this.clearNotice();
    }
    const jobs = [this.loadCurvesAndFindings(token)];
    if (hasCounts && (reloadAll || prevStep !== this.step || !this.confusion)) jobs.push(this.loadEpoch());
    await Promise.all(jobs);
  }

  async loadCurvesAndFindings(token) {
    const run = this.run;
    const [curves, diag] = await Promise.allSettled([getJSON("curves", { run }), getJSON("diagnostics", { run })]);
    if (token !== this.tokens.run || run !== this.run) return;
    if (diag.status === "fulfilled") {
      const key = JSON.stringify(diag.value);
      if (key !== this.diagKey) {
        this.diagKey = key;
        this.diagnostics = diag.value;
        this.renderFindings();
      }
    } else {
      this.diagKey = "";
      this.diagnostics = null;
      fill(this.findingsBody, errorBox("Could not load the findings.", diag.reason.message));
    }
    if (curves.status === "fulfilled") {
      const key = JSON.stringify(curves.value);
      if (key !== this.curvesKey) {
        this.curvesKey = key;
        this.curves = curves.value;
        this.renderCurves();
      }
    } else {
      this.curvesKey = "";
      this.curves = null;
      fill(this.curvesBody, errorBox("Could not load the training curves.", curves.reason.message));
    }
  }

  async loadEpoch() {
    await Promise.all([this.loadConfusion(), this.loadPR()]);
  }

  async loadConfusion() {
    if (this.step === null) return;
    const token = ++this.tokens.confusion;
    this.matrixBody.classList.add("loading");
    try {
      const data = await getJSON("confusion", { run: this.run, split: this.split, step: this.step });
      if (token !== this.tokens.confusion) return;
      this.confusion = data;
      this.renderConfusion();
    } catch (err) {
      if (token !== this.tokens.confusion) return;
      this.confusion = null;
      this.summaryBody.replaceChildren();
      fill(this.matrixBody, errorBox("Could not load the confusion matrix.", err.message));
      this.tableBody.replaceChildren();
    } finally {
      if (token === this.tokens.confusion) this.matrixBody.classList.remove("loading");
    }
  }

  async loadPR() {
    if (this.step === null) return;
    const info = this.runInfo;
    const names = (info && info.class_names) || [];
    if (this.prClass === null || this.prClass >= Math.max(names.length, 1)) this.prClass = names.length === 2 ? 1 : 0;
    this.updatePrClassPicker(names);
    const token = ++this.tokens.pr;
    this.prBody.classList.add("loading");
    try {
      const data = await getJSON("pr", {
        run: this.run,
        split: this.split,
        step: this.step,
        class: this.prClass,
        min_recall: this.minRecall,
        min_precision: this.minPrecision,
      });
      if (token !== this.tokens.pr) return;
      if (!Array.isArray(data.thresholds) || !data.thresholds.length) {
        this.pr = null;
        fill(this.prBody, h("p", { class: "muted", text: "No threshold counts are stored for this class at this epoch." }));
        this.apText.textContent = "";
        return;
      }
      this.pr = data;
      this.renderPR();
    } catch (err) {
      if (token !== this.tokens.pr) return;
      this.pr = null;
      this.apText.textContent = "";
      fill(this.prBody, errorBox("Could not load the precision\u2013recall data.", err.message));
    } finally {
      if (token === this.tokens.pr) this.prBody.classList.remove("loading");
    }
  }

  // ----- selection ------------------------------------------------------------------------

  selectRun(run) {
    if (run === this.run) return;
    this.run = run;
    storageSet(RUN_KEY, run);
    this.loadRun(true, true);
  }

  selectSplit(split) {
    this.split = split;
    this.loadEpoch();
  }

  selectStepIndex(idx, byUser) {
    const steps = this.steps;
    if (!steps.length) return;
    idx = Math.max(0, Math.min(steps.length - 1, idx));
    if (byUser) this.stopPlay();
    this.followLatest = idx === steps.length - 1;
    if (steps[idx] === this.step) return;
    this.step = steps[idx];
    this.updateEpochControls();
    this.markCurrentEpoch();
    return this.loadEpoch();
  }

  jumpToStep(step) {
    const steps = this.steps;
    if (!steps.length || !isNum(step)) return;
    this.stopPlay();
    this.selectStepIndex(steps.indexOf(nearest(steps, step)), false);
    this.epochSlider.focus({ preventScroll: true });
  }

  setNormalize(mode) {
    this.normalize = mode;
    storageSet(NORMALIZE_KEY, mode);
    this.renderConfusion();
  }

  selectPrClass(idx) {
    this.prClass = idx;
    this.threshold = null;
    this.loadPR();
  }

  updatePrClassPicker(names) {
    const sel = this.prClassSelect;
    if (sel.options.length !== names.length || [...sel.options].some((o, i) => o.textContent !== names[i])) {
      sel.replaceChildren();
      names.forEach((name, i) => sel.append(h("option", { value: String(i), text: name })));
    }
    sel.value = String(this.prClass);
  }

  togglePlay() {
    if (this.playing) this.stopPlay();
    else this.startPlay();
  }

  startPlay() {
    const steps = this.steps;
    if (steps.length < 2) return;
    this.playing = true;
    this.updatePlayButton();
    let idx = steps.indexOf(this.step);
    if (idx >= steps.length - 1) idx = -1;
    const tick = async () => {
      if (!this.playing) return;
      idx += 1;
      const current = this.steps;
      if (idx >= current.length) {
        this.stopPlay();
        return;
      }
      await this.selectStepIndex(idx, false);
      if (this.playing) this.playTimer = setTimeout(tick, PLAY_MS);
    };
    tick();
  }

  stopPlay() {
    this.playing = false;
    clearTimeout(this.playTimer);
    this.updatePlayButton();
  }

  updatePlayButton() {
    this.playButton.textContent = this.playing ? "\u275A\u275A" : "\u25B6";
    this.playButton.setAttribute("aria-pressed", this.playing ? "true" : "false");
    this.playButton.setAttribute("aria-label", this.playing ? "Pause" : "Play through epochs");
    this.playButton.title = this.playing ? "Pause" : "Play through epochs";
  }

  // ----- rendering: findings ----------------------------------------------------------------

  renderFindings() {
    const findings = (this.diagnostics && Array.isArray(this.diagnostics.findings) ? this.diagnostics.findings : []).slice();
    findings.sort((a, b) => (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3));
    if (!findings.length) {
      fill(this.findingsBody, h("p", { class: "all-good", text: "\u2714 No problems detected for this run." }));
      return;
    }
    const counts = {};
    for (const f of findings) counts[f.severity] = (counts[f.severity] || 0) + 1;
    const summary = h(
      "p",
      { class: "findings-summary" },
      ["error", "warning", "info"]
        .filter((sev) => counts[sev])
        .map((sev) => h("span", { class: `badge ${sev}`, text: `${counts[sev]} ${sev}${counts[sev] > 1 && sev !== "info" ? "s" : ""}` }))
    );
    const list = h("ol", { class: "finding-list" });
    for (const f of findings) list.append(this.findingItem(f));
    fill(this.findingsBody, summary, list);
  }

  findingItem(f) {
    const sev = SEVERITY_RANK[f.severity] !== undefined ? f.severity : "info";
    const hasStep = isNum(f.step) && this.steps.length > 0;
    const item = h("li", { class: `finding ${sev}${hasStep ? " clickable" : ""}` });
    const evidence = f.evidence && typeof f.evidence === "object" ? Object.entries(f.evidence) : [];
    const head = h(
      "div",
      { class: "finding-head" },
      h("span", { class: `badge ${sev}`, text: `${SEVERITY_ICON[sev]} ${String(f.severity || "info")}` }),
      h("h3", { text: f.title || f.rule || "Finding" }),
      f.rule ? h("code", { class: "rule", text: f.rule }) : null,
      isNum(f.step) ? h("span", { class: "finding-step", text: `epoch ${f.step}` }) : null
    );
    item.append(head);
    if (f.detail) item.append(h("p", { class: "detail", text: f.detail }));
    if (evidence.length) {
      const dl = h("dl", { class: "evidence" });
      for (const [k, v] of evidence) dl.append(h("div", null, h("dt", { text: k }), h("dd", { text: fmtEvidence(v) })));
      item.append(dl);
    }
    if (f.suggestion) item.append(h("p", { class: "suggestion" }, h("strong", { text: "Suggestion: " }), f.suggestion));
    const prLink = this.findingClass(evidence);
    if (prLink !== null && this.runInfo && this.runInfo.has_counts !== false && this.steps.length) {
      const thr = f.evidence.best_threshold;
      item.append(
        h("button", {
          type: "button",
          class: "btn small",
          text: isNum(thr) ? `Show threshold ${fmt(thr)} on the PR curve` : "Show this class on the PR curve",
          onclick: (evt) => {
            evt.stopPropagation();
            this.showOnPR(prLink, thr, f.step);
          },
        }),
        " "
      );
    }
    if (hasStep) {
      const btn = h("button", {
        type: "button",
        class: "btn small",
        text: `Show epoch ${f.step}`,
        "aria-label": `Show epoch ${f.step} for finding: ${f.title || f.rule || ""}`,
        onclick: (evt) => {
          evt.stopPropagation();
          this.jumpToStep(f.step);
        },
      });
      item.append(btn);
      item.addEventListener("click", (evt) => {
        if (evt.target.closest("button, a, input, select")) return;
        this.jumpToStep(f.step);
      });
    }
    return item;
  }

  /** The class index a finding's evidence names, if any. */
  findingClass(evidence) {
    const names = (this.runInfo && this.runInfo.class_names) || [];
    const ev = Object.fromEntries(evidence);
    for (const key of ["class_index", "worst_class_index"]) {
      if (Number.isInteger(ev[key]) && ev[key] >= 0 && ev[key] < names.length) return ev[key];
    }
    for (const key of ["positive_class", "worst_class", "class"]) {
      if (typeof ev[key] === "string" && names.includes(ev[key])) return names.indexOf(ev[key]);
    }
    return null;
  }

  async showOnPR(classIdx, threshold, step) {
    this.stopPlay();
    this.prClass = classIdx;
    this.threshold = isNum(threshold) ? threshold : null;
    const steps = this.steps;
    if (isNum(step) && steps.length && nearest(steps, step) !== this.step) {
      this.step = nearest(steps, step);
      this.followLatest = this.step === steps[steps.length - 1];
      this.updateEpochControls();
      this.markCurrentEpoch();
      await Promise.all([this.loadConfusion(), this.loadPR()]);
    } else {
      await this.loadPR();
    }
    this.prSection.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // ----- rendering: confusion -------------------------------------------------------------

  renderConfusion() {
    const c = this.confusion;
    if (!c) return;
    const names = Array.isArray(c.class_names) ? c.class_names : [];
    const matrix = Array.isArray(c.matrix) ? c.matrix : [];
    const n = matrix.length;
    this.renderSummary(c);

    const mode = this.normalize;
    const norm = mode === "counts" ? null : c.normalized && c.normalized[mode];
    let maxCount = 0;
    for (const row of matrix) for (const v of row) if (isNum(v)) maxCount = Math.max(maxCount, v);
    const rowSums = matrix.map((row) => row.reduce((a, b) => a + (isNum(b) ? b : 0), 0));
    const colSums = matrix.length ? matrix[0].map((_, j) => matrix.reduce((a, row) => a + (isNum(row[j]) ? row[j] : 0), 0)) : [];

    const table = h("table", {
      class: `confusion mode-${mode}${n > 8 ? " dense" : ""}${n > 8 && names.some((x) => String(x).length > 4) ? " vertical-heads" : ""}`,
      "aria-label": `Confusion matrix, ${this.split} split, epoch ${c.step}; rows are actual classes, columns predicted classes`,
    });
    const thead = h("thead");
    thead.append(
      h(
        "tr",
        null,
        h("th", { class: "corner", rowspan: "2", colspan: "2", scope: "col" }, h("span", { class: "axis-hint", text: "actual \u2193 / predicted \u2192" })),
        h("th", { class: "axis-name", colspan: String(n), scope: "colgroup", text: "Predicted class" })
      )
    );
    const colRow = h("tr");
    names.slice(0, n).forEach((name) => colRow.append(h("th", { scope: "col", class: "col-name", title: name }, h("span", { text: name }))));
    thead.append(colRow);
    table.append(thead);
    const tbody = h("tbody");
    for (let i = 0; i < n; i++) {
      const tr = h("tr");
      if (i === 0) tr.append(h("th", { class: "axis-name vertical", rowspan: String(n), scope: "rowgroup" }, h("span", { text: "Actual class" })));
      tr.append(h("th", { scope: "row", class: "row-name", title: names[i] ?? String(i), text: names[i] ?? String(i) }));
      for (let j = 0; j < n; j++) {
        const count = matrix[i][j];
        const ratio = norm && norm[i] ? norm[i][j] : null;
        let intensity;
        if (mode === "counts") intensity = maxCount > 0 && isNum(count) ? count / maxCount : 0;
        else intensity = isNum(ratio) ? ratio : 0;
        const diag = i === j;
        const td = h("td", {
          class: `cell ${diag ? "diag" : "off"}${intensity > 0.55 ? " strong" : ""}`,
          style: { "--a": (0.06 + 0.94 * Math.sqrt(Math.max(0, Math.min(1, intensity)))).toFixed(3) },
          "data-row": String(i),
          "data-col": String(j),
          title: `actual ${names[i] ?? i}, predicted ${names[j] ?? j}: ${fmtInt(count)}` +
            (mode === "true" ? ` (${fmtPct(ratio)} of actual ${names[i] ?? i})` : mode === "pred" ? ` (${fmtPct(ratio)} of predicted ${names[j] ?? j})` : ""),
        });
        if (mode === "counts") {
          td.append(h("span", { class: "main count", text: fmtInt(count) }));
        } else {
          td.append(h("span", { class: "main ratio", text: fmt(ratio, 2) }), h("span", { class: "sub count", text: fmtInt(count) }));
        }
        tr.append(td);
      }
      tr.append(h("td", { class: "total", title: "Actual examples of this class", text: fmtInt(rowSums[i]) }));
      tbody.append(tr);
    }
    const foot = h("tr", { class: "totals" }, h("td", { colspan: "2", class: "total-label", text: "predicted total" }));
    colSums.forEach((v) => foot.append(h("td", { class: "total", text: fmtInt(v) })));
    foot.append(h("td", { class: "total grand", title: "All examples", text: fmtInt(c.total ?? rowSums.reduce((a, b) => a + b, 0)) }));
    tbody.append(foot);
    table.append(tbody);

    const caption = h(
      "p",
      { class: "caption" },
      `${this.split} split \u00b7 epoch ${c.step} \u00b7 `,
      mode === "counts" ? "counts; darker = more examples" : mode === "true" ? "each row sums to 1 (recall on the diagonal)" : "each column sums to 1 (precision on the diagonal)"
    );
    fill(this.matrixBody, h("div", { class: "scroll" }, table), caption);
    this.renderPerClass(c);
  }

  renderSummary(c) {
    const per = Array.isArray(c.per_class) ? c.per_class : [];
    const supports = per.map((p) => p.support).filter(isNum);
    const total = isNum(c.total) ? c.total : supports.reduce((a, b) => a + b, 0);
    const majority = supports.length && total > 0 ? Math.max(...supports) / total : null;
    const f1s = per.map((p) => p.f1).filter(isNum);
    const macroF1 = f1s.length ? f1s.reduce((a, b) => a + b, 0) / f1s.length : null;
    const card = (label, value, cls, hint) =>
      h("div", { class: `stat ${cls || ""}`, title: hint || "" }, h("span", { class: "stat-label", text: label }), h("span", { class: "stat-value", text: value }), hint ? h("span", { class: "stat-hint", text: hint }) : null);
    const accWarn = isNum(c.accuracy) && isNum(majority) && c.accuracy <= majority + 1e-9;
    fill(
      this.summaryBody,
      card("Accuracy", fmt(c.accuracy), accWarn ? "warn" : "", accWarn ? "no better than always predicting the majority class" : null),
      card("Balanced accuracy", fmt(c.balanced_accuracy), "", "mean per-class recall"),
      card("Macro F1", fmt(macroF1), "", "mean of the per-class F1 shown below"),
      card("Majority baseline", fmt(majority), "", "accuracy of always predicting the largest class"),
      card("Examples", fmtInt(total), "", `${this.split}, epoch ${c.step}`)
    );
    const get = (el) => el.querySelector(".stat-value");
    get(this.summaryBody.children[0]).dataset.metric = "accuracy";
    get(this.summaryBody.children[1]).dataset.metric = "balanced_accuracy";
    get(this.summaryBody.children[4]).dataset.metric = "total";
  }

  renderPerClass(c) {
    const per = Array.isArray(c.per_class) ? c.per_class : [];
    const table = h("table", { class: "per-class", "aria-label": "Per-class precision, recall, F1 and support" });
    table.append(
      h(
        "thead",
        null,
        h("tr", null, ...["Class", "Precision", "Recall", "F1", "Support"].map((t, k) => h("th", { scope: "col", class: k ? "num" : "", text: t })))
      )
    );
    const tbody = h("tbody");
    const supports = per.map((p) => p.support).filter(isNum);
    const maxSupport = supports.length ? Math.max(...supports) : 0;
    per.forEach((p, i) => {
      const low = isNum(p.recall) && p.recall < 0.5;
      const nameBtn = h("button", {
        type: "button",
        class: "link",
        text: p.name ?? String(i),
        title: "Show the PR curve of this class",
        onclick: () => {
          this.selectPrClass(i);
          this.prSection.scrollIntoView({ behavior: "smooth", block: "start" });
        },
      });
      const bar = h("span", { class: "support-bar", style: { "--w": maxSupport ? ((p.support / maxSupport) * 100).toFixed(1) + "%" : "0%" } });
      tbody.append(
        h(
          "tr",
          { class: low ? "low" : "", "data-class": String(i) },
          h("th", { scope: "row" }, nameBtn, low ? h("span", { class: "flag", title: "Recall below 0.5", text: "low recall" }) : null),
          h("td", { class: "num", "data-metric": "precision", text: fmt(p.precision) }),
          h("td", { class: "num", "data-metric": "recall", text: fmt(p.recall) }),
          h("td", { class: "num", "data-metric": "f1", text: fmt(p.f1) }),
          h("td", { class: "num support", "data-metric": "support" }, bar, h("span", { text: fmtInt(p.support) }))
        )
      );
    });
    table.append(tbody);
    fill(this.tableBody, h("div", { class: "scroll" }, table));
  }

  // ----- rendering: PR ----------------------------------------------------------------------

  renderPR() {
    const pr = this.pr;
    const T = pr.thresholds.length;
    // Keep the user's threshold across epochs; start at the best-F1 point, else near 0.5.
    let idx;
    if (isNum(this.threshold)) idx = nearestIndex(pr.thresholds, this.threshold);
    else if (pr.best_f1 && isNum(pr.best_f1.index)) idx = pr.best_f1.index;
    else idx = nearestIndex(pr.thresholds, 0.5);
    idx = Math.max(0, Math.min(T - 1, idx));
    this.apText.textContent = `AP ${fmt(pr.average_precision)}`;
    this.apText.title = "Average precision (step-wise, as scikit-learn)";

    const className = pr.class_name ?? (this.runInfo && this.runInfo.class_names ? this.runInfo.class_names[this.prClass] : String(this.prClass));
    this.chart = new PRChart(pr, {
      onChange: (i) => this.setThresholdIndex(i, true),
      ariaLabel: `Precision-recall curve of class ${className}; use the arrow keys to move the threshold`,
    });

    const thrSlider = h("input", {
      id: this.ids.thr,
      type: "range",
      min: "0",
      max: String(T - 1),
      step: "1",
      value: String(idx),
      "aria-label": "Decision threshold",
      oninput: () => this.setThresholdIndex(Number(thrSlider.value), true),
    });
    this.thrSlider = thrSlider;
    this.thrValue = h("output", { class: "thr-value", for: this.ids.thr });
    this.opStats = h("div", { class: "op-stats" });
    this.opMatrix = h("div", { class: "op-matrix" });

    const legend = h(
      "ul",
      { class: "legend" },
      h("li", null, h("span", { class: "key best" }), "best F1"),
      pr.at_recall ? h("li", null, h("span", { class: "key at-recall" }), "recall target") : null,
      pr.at_precision ? h("li", null, h("span", { class: "key at-precision" }), "precision target") : null,
      h("li", null, h("span", { class: "key cursor" }), "selected threshold")
    );

    const best = pr.best_f1;
    const bestLine = best
      ? h(
          "div",
          { class: "target" },
          h("span", { text: `Best F1 ${fmt(best.f1)} at threshold ${fmt(best.threshold)}` }),
          h("button", { type: "button", class: "btn small", text: "Use", "aria-label": "Use the best-F1 threshold", onclick: () => this.setThresholdIndex(best.index, true) })
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
      });
      input.addEventListener("change", () => {
        const v = input.value.trim();
        if (v !== "" && !(Number(v) >= 0 && Number(v) <= 1)) {
          input.setCustomValidity("Enter a number between 0 and 1");
          input.reportValidity();
          return;
        }
        input.setCustomValidity("");
        this[key] = v;
        this.loadPR();
      });
      let result;
      if (value === "") result = h("span", { class: "muted", text: "enter a target" });
      else if (op) {
        result = h(
          "span",
          { class: "target-result" },
          h("span", { text: `threshold ${fmt(op.threshold)} \u2192 precision ${fmt(op.precision)}, recall ${fmt(op.recall)}` }),
          h("button", { type: "button", class: "btn small", text: "Use", "aria-label": `Use the threshold for ${label}`, onclick: () => this.setThresholdIndex(op.index, true) })
        );
      } else result = h("span", { class: "warn-text", text: "not reachable at any stored threshold" });
      return h("div", { class: "target" }, h("label", { for: id, text: label }), input, result);
    };

    const side = h(
      "div",
      { class: "pr-side" },
      h("div", { class: "thr-row" }, h("label", { for: this.ids.thr, text: "Threshold" }), thrSlider, this.thrValue),
      h("p", { class: "hint", text: "Drag on the curve, use the slider, or focus the chart and press the arrow keys." }),
      this.opStats,
      this.opMatrix,
      h(
        "div",
        { class: "targets" },
        bestLine,
        targetRow("Threshold for recall \u2265", this.ids.minRecall, this.minRecall, "minRecall", pr.at_recall),
        targetRow("Threshold for precision \u2265", this.ids.minPrecision, this.minPrecision, "minPrecision", pr.at_precision)
      )
    );
    const info = h("p", {
      class: "caption",
      text: `Class \u201c${className}\u201d vs rest \u00b7 ${fmtInt(pr.positives)} positives, ${fmtInt(pr.negatives)} negatives \u00b7 ${this.split}, epoch ${pr.step ?? this.step} \u00b7 ${T} stored thresholds`,
    });
    // Rebuilding the panel must not drop keyboard focus (e.g. after typing a recall target).
    const active = document.activeElement;
    const focusedId = active && active !== document.body && this.prBody.contains(active) ? active.id : null;
    this.chart.svg.setAttribute("id", this.ids.thr + "-chart");
    fill(this.prBody, h("div", { class: "pr-layout" }, h("div", { class: "pr-plot" }, this.chart.svg, legend, info), side));
    this.setThresholdIndex(idx, false);
    if (focusedId) {
      const again = document.getElementById(focusedId);
      if (again) again.focus({ preventScroll: true });
    }
  }

  setThresholdIndex(i, byUser) {
    const pr = this.pr;
    if (!pr) return;
    i = Math.max(0, Math.min(pr.thresholds.length - 1, i));
    this.thrIndex = i;
    if (byUser) this.threshold = pr.thresholds[i];
    this.thrSlider.value = String(i);
    const t = pr.thresholds[i];
    this.thrSlider.setAttribute("aria-valuetext", `threshold ${fmt(t)}`);
    this.thrValue.textContent = fmt(t);
    this.chart.setIndex(i);
    const at = (k) => (Array.isArray(pr[k]) ? pr[k][i] : null);
    const stat = (label, value, metric) => h("div", { class: "op-stat" }, h("span", { class: "stat-label", text: label }), h("span", { class: "stat-value", "data-metric": metric, text: value }));
    fill(this.opStats, stat("Precision", fmt(at("precision")), "precision"), stat("Recall", fmt(at("recall")), "recall"), stat("F1", fmt(at("f1")), "f1"));
    const cell = (cls, label, value, metric) => h("td", { class: `op-cell ${cls}`, "data-metric": metric }, h("span", { class: "op-label", text: label }), h("span", { class: "op-count", text: fmtInt(value) }));
    const name = pr.class_name ?? String(pr.class ?? "");
    const table = h(
      "table",
      { class: "op-table", "aria-label": `One-vs-rest confusion matrix at threshold ${fmt(t)}` },
      h(
        "thead",
        null,
        h("tr", null, h("td"), h("th", { scope: "col", text: `predicted ${name}` }), h("th", { scope: "col", text: "predicted other" }))
      ),
      h(
        "tbody",
        null,
        h("tr", null, h("th", { scope: "row", text: `actual ${name}` }), cell("good", "TP", at("tp"), "tp"), cell("bad", "FN", at("fn"), "fn")),
        h("tr", null, h("th", { scope: "row", text: "actual other" }), cell("bad", "FP", at("fp"), "fp"), cell("good", "TN", at("tn"), "tn"))
      )
    );
    fill(this.opMatrix, table);
  }

  // ----- rendering: curves --------------------------------------------------------------

  bestAndOnset() {
    const findings = (this.diagnostics && this.diagnostics.findings) || [];
    const over = findings.find((f) => f && f.rule === "overfitting" && f.evidence);
    let best = over && isNum(over.evidence.best_epoch) ? over.evidence.best_epoch : null;
    const onset = over && isNum(over.evidence.onset_epoch) ? over.evidence.onset_epoch : null;
    if (best === null) {
      const vl = this.curves && this.curves.curves && this.curves.curves.val_loss;
      if (vl && Array.isArray(vl.values)) {
        let bv = Infinity;
        vl.values.forEach((v, k) => {
          if (isNum(v) && v < bv) {
            bv = v;
            best = vl.steps[k];
          }
        });
      }
    }
    return { best, onset };
  }

  renderCurves() {
    const curves = (this.curves && this.curves.curves) || {};
    const keys = Object.keys(curves);
    if (!keys.length) {
      fill(this.curvesBody, h("p", { class: "muted", text: "No loss or metric curves are stored for this run." }));
      return;
    }
    const { best, onset } = this.bestAndOnset();
    const markers = [];
    if (isNum(best)) markers.push({ x: best, label: `best epoch ${best}`, cls: "best" });
    if (isNum(onset)) markers.push({ x: onset, label: `overfitting onset ${onset}`, cls: "onset", row: 1 });
    const ser = (key, label, cls) => (curves[key] && Array.isArray(curves[key].steps) ? { label, cls, steps: curves[key].steps, values: curves[key].values || [] } : null);
    const onPick = this.steps.length ? (x) => this.jumpToStep(x) : null;
    const panels = [];
    const lossSeries = [ser("loss", "train loss", "train"), ser("val_loss", "validation loss", "val")].filter(Boolean);
    const accSeries = [ser("accuracy", "train accuracy", "train"), ser("val_accuracy", "validation accuracy", "val")].filter(Boolean);
    const panel = (title, series, percent) =>
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
            series.map((x) => h("span", { class: "legend-item" }, h("span", { class: `key line ${x.cls}` }), x.label)),
            markers.map((mk) => h("span", { class: "legend-item" }, h("span", { class: `key vline ${mk.cls}` }), mk.label))
          )
        ),
        lineChart({ series, markers, current: this.step, yLabel: title, ariaLabel: `${title} per epoch, train vs validation`, onPick, percent })
      );
    if (lossSeries.length) panels.push(panel("Loss", lossSeries, false));
    if (accSeries.length) panels.push(panel("Accuracy", accSeries, true));
    if (!panels.length) {
      // Other Keras log keys only: plot the first couple of them.
      const other = keys.filter((k) => !k.startsWith("val_")).slice(0, 2);
      for (const k of other) panels.push(panel(k, [ser(k, `train ${k}`, "train"), ser(`val_${k}`, `validation ${k}`, "val")].filter(Boolean), false));
    }
    const extra = keys.filter((k) => !["loss", "val_loss", "accuracy", "val_accuracy"].includes(k));
    const note = [];
    if (isNum(best) && !isNum(onset)) note.push(`Best epoch by validation loss: ${best}.`);
    if (isNum(best) && isNum(onset)) note.push(`Validation loss was lowest at epoch ${best}; overfitting sets in from epoch ${onset}.`);
    if (extra.length) note.push(`Other logged series: ${extra.join(", ")}.`);
    if (onPick) note.push("Click a chart to show that epoch.");
    fill(this.curvesBody, h("div", { class: "curve-grid" }, panels), note.length ? h("p", { class: "caption", text: note.join(" ") }) : null);
  }

  markCurrentEpoch() {
    if (this.curves) this.renderCurves();
  }
}

function nearest(list, value) {
  let best = list[0];
  for (const v of list) if (Math.abs(v - value) < Math.abs(best - value)) best = v;
  return best;
}

function nearestIndex(list, value) {
  let bi = 0;
  for (let i = 0; i < list.length; i++) if (Math.abs(list[i] - value) < Math.abs(list[bi] - value)) bi = i;
  return bi;
}

function errorBox(title, message) {
  return h("div", { class: "notice error", role: "alert" }, h("strong", { text: title }), message ? h("span", { text: message }) : null);
}

let app = null;

/** Entry point called by TensorBoard's plugin iframe. */
export function render() {
  loadStyles();
  setupTheme();
  document.title = "Metrics diagnostics";
  let root = document.getElementById("metricsdiag-root");
  if (!root) {
    root = h("main", { id: "metricsdiag-root", class: "md-app" });
    document.body.appendChild(root);
  }
  if (app && app.poll) clearInterval(app.poll);
  app = new App(root);
  app.start();
  return app;
}
