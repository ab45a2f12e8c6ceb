// The tab's state (run, split, epoch, PR class and threshold), what it loads, and the wiring
// between the panels. Panels draw; this module decides what they get.

import { h, fill, isNum, storageGet, storageSet } from "./dom.js";
import { LatestRequests } from "./api.js";
import { pageHead } from "./panels/common.js";
import { followTheme } from "./theme.js";
import * as toolbarPanel from "./panels/toolbar.js";
import * as noticesPanel from "./panels/notices.js";
import * as findingsPanel from "./panels/findings.js";
import * as summaryPanel from "./panels/summary.js";
import * as confusionPanel from "./panels/confusion.js";
import * as perClassPanel from "./panels/per_class.js";
import * as pairsPanel from "./panels/pairs.js";
import * as prPanel from "./panels/pr.js";
import * as curvesPanel from "./panels/curves.js";
import * as calibrationPanel from "./panels/calibration.js";
import * as trajectoriesPanel from "./panels/trajectories.js";
import * as comparePanel from "./panels/compare.js";
import * as examplesPanel from "./panels/examples.js";
import * as labelIssuesPanel from "./panels/label_issues.js";
import * as flipsPanel from "./panels/flips.js";
import * as slicePickerPanel from "./panels/slice_picker.js";
import * as slicesPanel from "./panels/slices.js";
import * as overviewPanel from "./panels/overview.js";

const POLL_MS = 30000;
const PLAY_MS = 900;
const RELOAD_DELAY_MS = 250; // let TensorBoard's own reload reach the server first
const RUN_KEY = "metricsdiag.run";

export class App {
  constructor(root) {
    this.root = root;
    this.requests = new LatestRequests();
    // Every listener outside the tab's own elements is added with this signal.
    this.lifetime = new AbortController();
    this.stopTheme = null;
    this.pollTimer = null;
    this.reloadTimer = null;
    this.playTimer = null;

    this.runs = []; // the /runs entries
    this.run = null;
    this.split = "validation";
    this.step = null;
    this.followLatest = true; // the shown epoch moves on when training writes a new one
    this.playing = false;
    this.status = "";
    this.prClass = null;
    this.threshold = null; // the threshold the user chose, kept across epochs; null: best F1
    this.minRecall = "";
    this.minPrecision = "";
    this.epochKey = ""; // run, split and epoch of the confusion and PR answers asked for last
    this.fullMatrix = false; // the user asked for the whole matrix of a many-class run
    this.confusionDoc = null; // the /confusion answer shown last
    this.curves = null; // the run's /curves answer
    this.diagnostics = null; // the run's /diagnostics answer
    this.historyKey = ""; // both answers as JSON: unchanged answers are not drawn again
    this.costs = new Map(); // JSON [run, class] -> {fn, fp}: the cost inputs' texts
    this.compareBase = null; // {run, step}: the "before" of the comparison; null: first epoch
    this.trajectoriesKey = ""; // run, split and epoch count of the trajectories asked for last
    this.trajectoriesData = null;
    this.compareFlipsKey = ""; // both evaluations of the flips asked for last
    this.examplesCell = null; // {true, pred, class}: the confusion cell whose examples are shown
    this.slice = null; // {key, value}: the slice the scoped panels show; null: all rows
    this.sliceTables = []; // [{key, doc} | {key, error}]: the /slices answers of the epoch
    this.slicesAsked = 0; // counts /slices loads: only the latest one is shown
    this.overviewDoc = null; // the /overview answer, asked for when there are several runs
    this.build();
  }

  // ----- layout -------------------------------------------------------------------------------

  build() {
    const actions = {
      selectRun: (run) => this.selectRun(run),
      selectSplit: (split) => this.selectSplit(split),
      selectStepIndex: (idx) => this.selectStepIndex(idx, true),
      togglePlay: () => (this.playing ? this.stopPlay() : this.startPlay()),
      refresh: () => this.refresh(true),
      jumpToStep: (step) => this.jumpToStep(step),
      showOnPR: (classIndex, threshold, step) => this.showOnPR(classIndex, threshold, step),
      showPrClass: (classIndex) => {
        this.selectPrClass(classIndex);
        this.panels.pr.reveal();
      },
      selectPrClass: (classIndex) => this.selectPrClass(classIndex),
      setThreshold: (value) => {
        this.threshold = value;
      },
      loadCrossings: (params) =>
        this.requests.latest("crossings", "crossings", { ...params, slice: this.sliceParam }),
      setCosts: (fn, fp) => {
        this.costs.set(this.costKey, { fn, fp });
        this.loadPR();
      },
      loadFullMatrix: () => {
        this.fullMatrix = true;
        this.loadConfusion();
      },
      showExamples: (actual, predicted, label) => this.showExamples(actual, predicted, label),
      closeExamples: () => this.showExamples(null),
      selectSlice: (slice) => this.selectSlice(slice),
      setCompareBase: (run, step) => {
        this.compareBase = { run, step };
        this.loadCompare();
      },
      setTarget: (key, value) => {
        if (key === "minRecall") this.minRecall = value;
        else this.minPrecision = value;
        this.loadPR();
      },
    };
    const root = fill(
      this.root,
      pageHead(
        "Is this classifier actually good? Confusion, trade-offs and warning signs per epoch.",
      ),
    );
    this.countsArea = h("div", { class: "layout-grid" });
    // Panels appear in the order they are created.
    this.panels = {
      toolbar: toolbarPanel.create(root, actions),
      overview: overviewPanel.create(root, actions),
      notices: noticesPanel.create(root),
      findings: findingsPanel.create(root, actions),
      summary: summaryPanel.create(root),
    };
    root.append(this.countsArea);
    this.panels.slicePicker = slicePickerPanel.create(this.panels.toolbar.element, actions);
    this.panels.slices = slicesPanel.create(this.countsArea, actions);
    const confusion = confusionPanel.create(this.countsArea, actions);
    // The per-class table and the confused pairs share the column beside the matrix.
    const beside = h("div", { class: "side-column span-5" });
    this.countsArea.append(beside);
    Object.assign(this.panels, {
      confusion,
      perClass: perClassPanel.create(beside, actions),
      pairs: pairsPanel.create(beside, actions),
      examples: examplesPanel.create(this.countsArea, actions),
      labelIssues: labelIssuesPanel.create(this.countsArea),
      flips: flipsPanel.create(this.countsArea),
      pr: prPanel.create(this.countsArea, actions),
      calibration: calibrationPanel.create(this.countsArea),
      trajectories: trajectoriesPanel.create(this.countsArea, actions),
      compare: comparePanel.create(this.countsArea, actions),
      compareFlips: flipsPanel.createForComparison(this.countsArea),
      curves: curvesPanel.create(root, actions),
    });
    this.updateToolbar();
    this.panels.findings.update({ loading: true });
    this.panels.curves.update({ loading: true });
  }

  get runInfo() {
    return this.runs.find((r) => r.run === this.run) || null;
  }

  get steps() {
    const info = this.runInfo;
    return info && Array.isArray(info.steps) ? info.steps.filter(isNum) : [];
  }

  /** The group keys of the selected split (none for a run written without groups). */
  get sliceKeys() {
    const keys = this.runInfo?.slice_keys?.[this.split];
    return Array.isArray(keys) ? keys.filter((k) => typeof k === "string") : [];
  }

  /** The `slice` parameter of the scoped routes: KEY=VALUE, or null for all rows. */
  get sliceParam() {
    return this.slice ? `${this.slice.key}=${this.slice.value}` : null;
  }

  get costKey() {
    return JSON.stringify([this.run, this.prClass]);
  }

  get classNames() {
    return classNamesOf(this.runInfo);
  }

  get hasCounts() {
    const info = this.runInfo;
    return Boolean(
      info && !info.error && info.has_counts !== false && this.steps.length && info.splits?.length,
    );
  }

  updateToolbar() {
    const info = this.runInfo;
    this.panels.toolbar.update({
      runs: this.runs.map((r) => r.run),
      run: this.run,
      splits: info && Array.isArray(info.splits) ? info.splits : [],
      split: this.split,
      steps: this.steps,
      step: this.step,
      playing: this.playing,
      status: this.status,
    });
  }

  setStatus(text) {
    this.status = text;
    this.updateToolbar();
  }

  // ----- life cycle ---------------------------------------------------------------------------

  start() {
    const signal = this.lifetime.signal;
    this.stopTheme = followTheme();
    this.pollTimer = setInterval(() => this.refresh(false), POLL_MS);
    document.addEventListener(
      "visibilitychange",
      () => {
        if (document.visibilityState === "visible") this.refresh(false);
      },
      { signal },
    );
    window.addEventListener("pagehide", () => this.destroy(), { signal });
    this.followTensorBoardReload(signal);
    return this.refresh(false);
  }

  /** Refreshes too when the user presses TensorBoard's own reload button (same-origin parent). */
  followTensorBoardReload(signal) {
    let parentDoc = null;
    try {
      parentDoc = window.parent && window.parent !== window ? window.parent.document : null;
    } catch (err) {
      parentDoc = null; // without the parent, the poll still keeps the tab current
    }
    if (!parentDoc) return;
    parentDoc.addEventListener(
      "click",
      (evt) => {
        if (
          evt.target &&
          typeof evt.target.closest === "function" &&
          evt.target.closest(".reload-button")
        ) {
          clearTimeout(this.reloadTimer);
          this.reloadTimer = setTimeout(() => this.refresh(false), RELOAD_DELAY_MS);
        }
      },
      { capture: true, signal },
    );
  }

  /** Removes every listener, timer, observer and request of the tab, and its elements. */
  destroy() {
    this.stopPlay();
    clearInterval(this.pollTimer);
    clearTimeout(this.reloadTimer);
    this.lifetime.abort();
    if (this.stopTheme) this.stopTheme();
    this.stopTheme = null;
    this.requests.cancel();
    for (const panel of Object.values(this.panels)) if (panel.destroy) panel.destroy();
    this.root.replaceChildren();
  }

  // ----- loading ------------------------------------------------------------------------------

  /**
   * Asks `route` (on the request channel of that name) for `panel`: the panel shows {loading}
   * meanwhile (unless `loading` is false) and, when the request fails, what `failed(err)`
   * returns ({error} by default); `state` goes with both. Resolves to the answer, or to null
   * when the request failed or a newer one of its channel (the route's name unless `channel`
   * says) superseded it; the caller shows the answer.
   */
  async load(
    panel,
    route,
    params,
    { state = {}, loading = true, failed = errorState, channel = route } = {},
  ) {
    if (loading) panel.update({ loading: true, ...state });
    try {
      return await this.requests.latest(channel, route, params);
    } catch (err) {
      panel.update({ ...failed(err), ...state });
      return null;
    }
  }

  async refresh(manual) {
    if (manual) this.setStatus("Refreshing\u2026");
    const data = await this.load(
      this.panels.notices,
      "runs",
      {},
      {
        loading: false,
        failed: (err) => {
          this.setStatus("");
          return {
            notices: [{ kind: "error", title: "Could not load runs.", detail: err.message }],
          };
        },
      },
    );
    if (!data) return; // failed, or a newer refresh is under way
    const runs = Array.isArray(data.runs)
      ? data.runs.filter((r) => r && typeof r.run === "string")
      : [];
    this.runs = runs;
    const previous = this.run;
    if (!runs.length) this.run = null;
    else if (!runs.some((r) => r.run === this.run)) {
      const remembered = storageGet(RUN_KEY, null);
      this.run = runs.some((r) => r.run === remembered) ? remembered : runs[0].run;
    }
    this.status = `Updated ${new Date().toLocaleTimeString()}`;
    const overview = this.loadOverview();
    if (this.run) await this.loadRun(previous !== this.run);
    else this.showEmpty();
    await overview;
  }

  /** The runs overview: shown, from /overview, when the logdir holds more than one run. */
  async loadOverview() {
    if (this.runs.length < 2) {
      this.overviewDoc = null;
      this.panels.overview.update({ hidden: true });
      return;
    }
    const data = await this.load(this.panels.overview, "overview", {});
    if (data) this.overviewDoc = data;
    if (data) this.panels.overview.update({ overview: data, run: this.run });
  }

  showEmpty() {
    this.step = null;
    this.updateToolbar();
    this.countsArea.hidden = true;
    this.panels.summary.update({});
    this.panels.findings.update({ empty: "No findings without a run." });
    this.panels.curves.update({ empty: "No curves without a run." });
    this.panels.notices.update({
      notices: [
        {
          kind: "info",
          title: "No metricsdiag data found in this log directory yet.",
          detail: `Add MetricsDiagCallback(log_dir, validation_data=(x_val, y_val)) to model.fit(...); this page refreshes every ${POLL_MS / 1000} seconds.`,
        },
      ],
    });
  }

  /** Loads what the selected run shows; `fresh` when the run has just been selected. */
  async loadRun(fresh) {
    const info = this.runInfo;
    if (fresh) {
      // Answers still on their way belong to the run shown before.
      this.requests.cancel("confusion", "pr", "curves", "diagnostics", "examples");
      this.epochKey = "";
      this.fullMatrix = false;
      this.prClass = null;
      this.threshold = null;
      this.followLatest = true;
      this.curves = null;
      this.diagnostics = null;
      this.historyKey = "";
      this.compareBase = null;
      this.slice = null;
      this.sliceTables = [];
      this.showExamples(null);
      this.stopPlay();
      this.panels.findings.update({ loading: true });
      this.panels.curves.update({ loading: true });
    }
    const splits = Array.isArray(info.splits) ? info.splits : [];
    if (!splits.includes(this.split))
      this.split = splits.includes("validation") ? "validation" : splits[0] || "validation";
    this.updateSteps();
    this.countsArea.hidden = !this.hasCounts;
    if (!this.hasCounts) this.panels.summary.update({});
    this.panels.notices.update({ notices: runNotices(info, this.hasCounts) });
    const jobs = [this.loadHistory()];
    if (this.hasCounts) jobs.push(this.loadEpoch(), this.loadTrajectories());
    await Promise.all(jobs);
  }

  /** Keeps the shown epoch among the run's epochs, at the latest while following it. */
  updateSteps() {
    const steps = this.steps;
    if (!steps.length) this.step = null;
    else if (this.followLatest || this.step === null) this.step = steps[steps.length - 1];
    else if (!steps.includes(this.step)) this.step = nearest(steps, this.step);
    this.updateToolbar();
  }

  /** The run's curves and findings (one answer needs the other: the overfitting onset). */
  async loadHistory() {
    const { run } = this;
    const [curves, diagnostics] = await Promise.allSettled([
      this.requests.latest("curves", "curves", { run }),
      this.requests.latest("diagnostics", "diagnostics", { run }),
    ]);
    const results = [curves, diagnostics];
    if (results.some((r) => r.status === "fulfilled" && r.value === null)) return; // superseded
    const [shown, found] = results.map((r) =>
      r.status === "fulfilled" ? { doc: r.value } : { error: r.reason.message },
    );
    const key = JSON.stringify([shown, found]);
    if (key === this.historyKey) return;
    this.historyKey = key;
    this.curves = shown.doc || null;
    this.diagnostics = found.doc || null;
    if (this.diagnostics) this.updateFindings();
    else this.panels.findings.update({ error: found.error });
    if (this.curves) this.updateCurves();
    else this.panels.curves.update({ error: shown.error });
  }

  updateFindings() {
    this.panels.findings.update({
      diagnostics: this.diagnostics,
      classNames: this.classNames,
      canJump: this.steps.length > 0,
      hasCounts: this.hasCounts,
    });
  }

  updateCurves() {
    if (!this.curves) return;
    const findings = (this.diagnostics && this.diagnostics.findings) || [];
    const over = findings.find((f) => f && f.rule === "overfitting" && f.evidence);
    this.panels.curves.update({
      curves: this.curves,
      onset: over && isNum(over.evidence.onset_epoch) ? over.evidence.onset_epoch : null,
      step: this.step,
      canPick: this.steps.length > 0,
    });
  }

  /** The confusion matrix and PR curve of the selected epoch, unless already asked for. */
  async loadEpoch() {
    const key = JSON.stringify([this.run, this.split, this.step, this.sliceParam]);
    if (this.step === null || key === this.epochKey) return;
    this.epochKey = key;
    // The comparison waits for the confusion matrix: at many classes it is the slower answer
    // and the matrix is what the tab shows first.
    await Promise.all([
      this.loadConfusion().then(() => this.loadCompare()),
      this.loadPR(),
      this.loadCalibration(),
      this.loadExamples(),
      this.loadLabelIssues(),
      this.loadFlips(),
      this.loadSlices(),
    ]);
  }

  /** Shows `slice` ({key, value}; null: all rows) in the panels it scopes. */
  selectSlice(slice) {
    this.slice = slice;
    this.showSlices();
    this.epochKey = JSON.stringify([this.run, this.split, this.step, this.sliceParam]);
    return Promise.all([
      this.loadConfusion(),
      this.loadPR(),
      this.loadCalibration(),
      this.loadExamples(),
    ]);
  }

  /** The slice tables of the selected epoch, one /slices answer per group key. */
  async loadSlices() {
    const keys = this.sliceKeys;
    const asked = ++this.slicesAsked;
    if (!keys.length) {
      this.sliceTables = [];
      this.showSlices();
      return;
    }
    this.panels.slices.update({ loading: true });
    const params = { run: this.run, split: this.split, step: this.step };
    const answers = await Promise.allSettled(
      keys.map((key) => this.requests.latest(`slices ${key}`, "slices", { ...params, key })),
    );
    const superseded = answers.some((a) => a.status === "fulfilled" && a.value === null);
    if (superseded || asked !== this.slicesAsked) return; // a newer load is under way
    this.sliceTables = keys.map((key, k) =>
      answers[k].status === "fulfilled"
        ? { key, doc: answers[k].value }
        : { key, error: answers[k].reason.message },
    );
    this.showSlices();
  }

  showSlices() {
    const hidden = !this.sliceTables.length && !this.slice;
    const shown = { tables: this.sliceTables, selected: this.slice };
    this.panels.slicePicker.update(shown);
    this.panels.slices.update(hidden ? { hidden } : shown);
  }

  /**
   * Opens the examples of the confusion cell (actual, predicted), of the label `label` in a
   * multi-label run; null closes them.
   */
  showExamples(actual, predicted, label = null) {
    this.examplesCell = actual === null ? null : { true: actual, pred: predicted, class: label };
    if (this.examplesCell === null) {
      this.requests.cancel("examples");
      this.panels.examples.update({ hidden: true });
      return Promise.resolve();
    }
    const shown = this.loadExamples();
    this.panels.examples.element.scrollIntoView({ block: "nearest" });
    return shown;
  }

  /** The selected epoch's examples of the open cell; the route's message where it has none. */
  async loadExamples() {
    if (!this.examplesCell) return;
    const panel = this.panels.examples;
    const doc = await this.load(panel, "examples", {
      run: this.run,
      split: this.split,
      step: this.step,
      ...this.examplesCell,
      slice: this.sliceParam,
    });
    if (doc) panel.update({ examples: doc });
  }

  /** The examples that changed between the epoch before and the selected one. */
  loadFlips() {
    return this.loadEpochRoute(this.panels.flips, "flips", (flips) => ({
      flips,
      classNames: this.classNames,
    }));
  }

  /** The selected epoch's label issues; the route's message where it has none (404). */
  loadLabelIssues() {
    return this.loadEpochRoute(this.panels.labelIssues, "label_issues", (issues) => ({ issues }));
  }

  /** The selected epoch's reliability diagram; a run without calibration bins gets a note. */
  loadCalibration() {
    return this.loadEpochRoute(
      this.panels.calibration,
      "calibration",
      (calibration) => ({ calibration, task: this.runInfo?.task, classNames: this.classNames }),
      () => "This run was recorded without calibration bins.",
      { slice: this.sliceParam },
    );
  }

  /**
   * Asks `route` about the selected epoch (with `params` besides) for `panel` and shows
   * `shown(answer)`; where the route has nothing for it (404), the panel says `notFound(err)`
   * (the route's message).
   */
  async loadEpochRoute(panel, route, shown, notFound = (err) => err.message, params = {}) {
    const doc = await this.load(
      panel,
      route,
      { run: this.run, split: this.split, step: this.step, ...params },
      { failed: (err) => nothingOrError(err, notFound) },
    );
    if (doc) panel.update(shown(doc));
  }

  /** Every class's figures over the epochs of the selected split, unless unchanged. */
  async loadTrajectories(force = false) {
    const key = JSON.stringify([this.run, this.split, this.steps.length]);
    if (!force && key === this.trajectoriesKey) {
      this.panels.trajectories.update({ ...this.trajectoriesData, step: this.step });
      return;
    }
    this.trajectoriesKey = key;
    const panel = this.panels.trajectories;
    const doc = await this.load(
      panel,
      "trajectories",
      { run: this.run, split: this.split },
      {
        failed: (err) => {
          this.trajectoriesKey = "";
          return errorState(err);
        },
      },
    );
    if (!doc) return;
    this.trajectoriesData = { trajectories: doc };
    panel.update({ trajectories: doc, step: this.step });
  }

  /**
   * The comparison of the "before" (run, epoch) with the selected one, and both PR curves of
   * the PR class. The route's own message says why two evaluations do not compare (other
   * classes, another task); a PR curve is asked for only of a class the run has.
   */
  async loadCompare() {
    const panel = this.panels.compare;
    const counted = this.runs.filter((r) => !r.error && r.has_counts !== false && r.steps?.length);
    let base = this.compareBase;
    const baseInfo = (base && counted.find((r) => r.run === base.run)) || null;
    if (!baseInfo) base = { run: this.run, step: null };
    const info = baseInfo || this.runInfo;
    const baseSteps = info.steps.filter(isNum);
    if (!baseSteps.includes(base.step)) base = { run: base.run, step: baseSteps[0] };
    panel.update({
      picker: { runs: counted.map((r) => r.run), run: base.run, steps: baseSteps, step: base.step },
    });
    const cls = this.prClass ?? 0;
    const names = { before: classNamesOf(info), after: this.classNames };
    const pr = (channel, run, step, classNames) =>
      cls < classNames.length
        ? this.requests.latest(channel, "pr", { run, split: this.split, step, class: cls })
        : Promise.reject(new Error(`${run} has no class ${cls}.`));
    const compared = this.load(panel, "compare", {
      run: base.run,
      split: this.split,
      step: base.step,
      other_run: this.run,
      other_step: this.step,
    });
    // A PR curve that cannot be had leaves the comparison standing; the panel says why.
    const curves = Promise.allSettled([
      pr("compare-pr-before", base.run, base.step, names.before),
      pr("compare-pr-after", this.run, this.step, names.after),
    ]);
    this.loadCompareFlips(base);
    const [compare, [prBefore, prAfter]] = await Promise.all([compared, curves]);
    const superseded = [prBefore, prAfter].some(
      (a) => a.status === "fulfilled" && a.value === null,
    );
    if (!compare || superseded) return;
    const value = (a) => (a.status === "fulfilled" ? a.value : null);
    const reason = (a) => (a.status === "rejected" ? a.reason.message : null);
    panel.update({
      compare,
      prBefore: value(prBefore),
      prAfter: value(prAfter),
      prErrors: { before: reason(prBefore), after: reason(prAfter) },
      classIndex: cls,
      names,
    });
  }

  /**
   * The examples that changed between the comparison's "before" (run, step) and the selection,
   * unless already asked for.
   */
  async loadCompareFlips(base) {
    const key = JSON.stringify([this.run, this.split, this.step, base.run, base.step]);
    if (key === this.compareFlipsKey) return;
    this.compareFlipsKey = key;
    const panel = this.panels.compareFlips;
    const doc = await this.load(
      panel,
      "flips",
      {
        run: this.run,
        split: this.split,
        step: this.step,
        other_run: base.run,
        other_step: base.step,
      },
      {
        channel: "compare-flips",
        failed: (err) => {
          if (err.status !== 404) this.compareFlipsKey = ""; // asked again with the comparison
          return nothingOrError(err);
        },
      },
    );
    if (doc) panel.update({ flips: doc, classNames: this.classNames });
  }

  async loadConfusion() {
    const { confusion, summary, perClass, pairs } = this.panels;
    const doc = await this.load(
      confusion,
      "confusion",
      {
        run: this.run,
        split: this.split,
        step: this.step,
        matrix: this.fullMatrix ? "full" : null,
        slice: this.sliceParam,
      },
      {
        failed: (err) => {
          this.epochKey = ""; // the next refresh tries again
          summary.update({});
          perClass.update({});
          pairs.update({});
          return errorState(err);
        },
      },
    );
    if (!doc) return;
    this.confusionDoc = doc;
    summary.update({ confusion: doc });
    confusion.update({ confusion: doc });
    // The matrix is painted before the per-class table of many classes is built.
    await nextFrame();
    if (this.confusionDoc !== doc) return; // a newer answer was shown meanwhile
    perClass.update({ confusion: doc });
    pairs.update({ confusion: doc });
  }

  async loadPR() {
    const names = this.classNames;
    if (this.prClass === null || this.prClass >= Math.max(names.length, 1)) {
      const fallback = this.runInfo?.default_class;
      this.prClass = Number.isInteger(fallback) && fallback < names.length ? fallback : 0;
    }
    const costs = this.costs.get(this.costKey) || { fn: "", fp: "" };
    const picker = { classNames: names, classIndex: this.prClass, task: this.runInfo?.task };
    const doc = await this.load(
      this.panels.pr,
      "pr",
      {
        run: this.run,
        split: this.split,
        step: this.step,
        class: this.prClass,
        min_recall: this.minRecall,
        min_precision: this.minPrecision,
        fn_cost: costs.fn,
        fp_cost: costs.fp,
        slice: this.sliceParam,
      },
      {
        state: picker,
        failed: (err) => {
          this.epochKey = "";
          return errorState(err);
        },
      },
    );
    if (!doc) return;
    if (!Array.isArray(doc.thresholds) || !doc.thresholds.length) {
      this.panels.pr.update({
        empty: "No threshold counts are stored for this class at this epoch.",
        ...picker,
      });
      return;
    }
    this.panels.pr.update({
      pr: doc,
      threshold: this.threshold,
      minRecall: this.minRecall,
      minPrecision: this.minPrecision,
      fnCost: costs.fn,
      fpCost: costs.fp,
      ...picker,
    });
  }

  // ----- selection ----------------------------------------------------------------------------

  selectRun(run) {
    if (run === this.run) return;
    this.run = run;
    storageSet(RUN_KEY, run);
    if (this.overviewDoc) this.panels.overview.update({ overview: this.overviewDoc, run });
    this.loadRun(true);
  }

  selectSplit(split) {
    this.split = split;
    if (this.slice && !this.sliceKeys.includes(this.slice.key)) this.slice = null;
    this.updateToolbar();
    this.loadEpoch();
    this.loadTrajectories();
  }

  /** Shows the epoch at `idx` of the run's epochs; a user's choice stops playing. */
  selectStepIndex(idx, byUser) {
    const steps = this.steps;
    if (!steps.length) return Promise.resolve();
    if (byUser) this.stopPlay();
    return this.showStep(steps[Math.max(0, Math.min(steps.length - 1, idx))]);
  }

  /** Shows `step`, one of the run's epochs, in every panel. */
  showStep(step) {
    const steps = this.steps;
    this.followLatest = step === steps[steps.length - 1];
    if (step === this.step) return Promise.resolve();
    this.step = step;
    this.updateToolbar();
    this.updateCurves();
    this.loadTrajectories();
    return this.loadEpoch();
  }

  jumpToStep(step) {
    const steps = this.steps;
    if (!steps.length || !isNum(step)) return;
    this.stopPlay();
    this.showStep(nearest(steps, step));
    this.panels.toolbar.focusEpoch();
  }

  selectPrClass(classIndex) {
    this.prClass = classIndex;
    this.threshold = null;
    this.loadPR();
    this.loadCompare();
  }

  async showOnPR(classIndex, threshold, step) {
    this.stopPlay();
    this.prClass = classIndex;
    this.threshold = isNum(threshold) ? threshold : null;
    const steps = this.steps;
    const target = isNum(step) && steps.length ? nearest(steps, step) : this.step;
    await (target === this.step ? this.loadPR() : this.showStep(target));
    this.panels.pr.reveal();
  }

  startPlay() {
    const steps = this.steps;
    if (steps.length < 2) return;
    this.playing = true;
    this.updateToolbar();
    let idx = steps.indexOf(this.step);
    if (idx >= steps.length - 1) idx = -1;
    const tick = async () => {
      if (!this.playing) return;
      idx += 1;
      if (idx >= this.steps.length) {
        this.stopPlay();
        return;
      }
      await this.selectStepIndex(idx, false);
      if (this.playing) this.playTimer = setTimeout(tick, PLAY_MS);
    };
    tick();
  }

  stopPlay() {
    clearTimeout(this.playTimer);
    if (!this.playing) return;
    this.playing = false;
    this.updateToolbar();
  }
}

/** The notices the selected run needs. */
function runNotices(info, hasCounts) {
  const notices = [];
  if (info.error) {
    notices.push({
      kind: "error",
      title: "This run's metricsdiag data cannot be read.",
      detail: String(info.error),
    });
  } else if (!hasCounts) {
    notices.push({
      kind: "info",
      title: "This run has no confusion counts.",
      detail:
        "It has training curves only (for example from keras.callbacks.TensorBoard). Add MetricsDiagCallback with validation_data to see confusion matrices and PR curves.",
    });
  } else if (!(info.splits || []).includes("validation")) {
    notices.push({
      kind: "warning",
      title: "This run has no validation data.",
      detail: "Only the training split is shown; training metrics say little about generalisation.",
    });
  }
  if (Number.isInteger(info.trainings) && info.trainings > 1) {
    notices.push({
      kind: "warning",
      title: `This log directory holds ${info.trainings} trainings.`,
      detail: "The tab shows the latest one. Give each training its own log_dir to compare them.",
    });
  }
  return notices;
}

/** A panel's state after a failed request: the server's message. */
function errorState(err) {
  return { error: err.message };
}

/**
 * A panel's state after a failed request: where the route has nothing for it (404), a note
 * saying `notFound(err)` (the route's message by default); else the error.
 */
function nothingOrError(err, notFound = (e) => e.message) {
  return err.status === 404 ? { empty: notFound(err) } : errorState(err);
}

/** The class names of a /runs entry (none when it has none). */
function classNamesOf(info) {
  return info && Array.isArray(info.class_names) ? info.class_names : [];
}

/** Resolves after the browser has painted the current frame (or at once when hidden). */
function nextFrame() {
  if (document.visibilityState === "hidden") return Promise.resolve();
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

function nearest(list, value) {
  let best = list[0];
  for (const v of list) if (Math.abs(v - value) < Math.abs(best - value)) best = v;
  return best;
}
