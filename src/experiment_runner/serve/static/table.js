/* experiment-runner serve: one run's view (progress), its results table and the experiment panel. */
"use strict";

(() => {
  const {$, api, el, formatNumber, formatStat, formatValue, formatDuration, stateBadge, fillSelect} = ER;

  /** What the run view shows: the run, the table's sort, filters and page; reset when another run opens. */
  const view = {
    run: null, info: null, version: null,
    sort: null, order: "asc", filters: {}, offset: 0, limit: 50,
    best: null, showConstant: false, experiment: null, columns: [],
  };

  ER.view = view;

  ER.showRun = (run) => {
    if (view.run !== run) {
      Object.assign(view, {run, info: null, version: null, shape: null, ticks: 0, plotsPending: false, sort: null,
                           order: "asc", filters: {}, offset: 0, best: null, experiment: null, columns: []});
      $("#filters").replaceChildren();
      $("#results-table thead").replaceChildren();
      $("#results-table tbody").replaceChildren();
      $("#experiment-panel").hidden = true;
      ER.resetPanels();
    }
    document.body.dataset.view = "run";
    $("#run-view").hidden = false;
    ER.poll(tick, 1000);
  };

  /** Every second: the run's counts; everything else only when its version changed. While the run goes,
   * its learning curves also every few seconds: an experiment's metrics.jsonl grows before its result. */
  async function tick() {
    const info = await api("run", {run: view.run});
    view.info = info;
    drawRunHeader(info);
    view.ticks = (view.ticks || 0) + 1;
    if (info.version === view.version) {
      if (info.state === "running" && view.ticks % CURVES_EVERY === 0) await ER.refreshCurves();
      return;
    }
    // the choices of the selects: again when the run gained a metric or a parameter (its first results)
    const shape = JSON.stringify([info.metrics, info.varying, info.parameters]);
    const reshaped = shape !== view.shape;
    view.shape = shape;
    if (reshaped) setUpRunControls(info);
    else if (!$("#filters").contains(document.activeElement)) drawFilters(info);  // counts, not under the mouse
    await Promise.all([refreshTable(), ER.refreshFailures(),
                       view.experiment === null ? null : openExperiment(view.experiment, true)]);
    // after the tables (drawing is what takes the browser longest), and once a big run is read whole
    if (!info.loading) await ER.refreshPlots(reshaped || view.plotsPending);
    view.plotsPending = Boolean(info.loading) && (reshaped || view.plotsPending);
    view.version = info.version;
    document.body.dataset.version = info.version;
  }

  /** Every how many ticks (seconds) a running run's learning curves are fetched again. */
  const CURVES_EVERY = 5;

  // --- 2. progress --------------------------------------------------------------------------------

  function drawRunHeader(info) {
    $("#run-title").textContent = info.run === "." ? info.out_path : info.run;
    stateBadge(info.state, $("#run-state"));
    $("#run-backend").textContent = info.backend ? `backend ${info.backend}` : "";
    $("#run-command").textContent = info.command || "";
    $("#run-out-path").textContent = info.path || info.out_path || "";
    $("#run-out-path").title = info.out_path || "";
    const counts = ["finished", "failed", "pruned", "running", "pending"];
    const progress = $("#progress");
    for (const name of counts) progress.dataset[name] = info[name];
    progress.dataset.total = info.total;
    const bar = $("#progress-bar");
    for (const name of ["finished", "failed", "pruned", "running"]) {
      $(`.${name}`, bar).style.width = info.total ? `${100 * info[name] / info.total}%` : "0";
    }
    const parts = [`${info.finished} of ${info.total} finished`];
    if (info.loading) parts.unshift(`reading the run… ${readPercent(info.loading)}%`);
    if (info.failed) parts.push(`${info.failed} failed`);
    if (info.pruned) parts.push(`${info.pruned} pruned`);
    if (info.running) parts.push(`${info.running} running`);
    if (info.pending) parts.push(`${info.pending} pending`);
    if (info.wall_time !== null && info.wall_time !== undefined) parts.push(`wall time ${formatDuration(info.wall_time)}`);
    if (info.state === "running" && info.eta_seconds !== null && info.eta_seconds !== undefined) {
      parts.push(`about ${formatDuration(info.eta_seconds)} left`);
    }
    $("#progress-text").textContent = parts.join(", ");
  }

  /** How much of a big run's record files the server has read yet, its first time. */
  function readPercent(loading) {
    return loading.total_bytes ? Math.floor(100 * loading.read_bytes / loading.total_bytes) : 0;
  }
  ER.readPercent = readPercent;

  function setUpRunControls(info) {
    const metrics = info.metrics || [];
    fillSelect($("#best-metric"), metrics.map((name) => [name, name]), info.best ? info.best.metric : metrics[0]);
    $("#best-direction").value = info.best && info.best.direction ? info.best.direction : "max";
    drawFilters(info);
  }

  // --- 3. the results table -----------------------------------------------------------------------

  async function drawFilters(info) {
    const box = $("#filters");
    const selects = await Promise.all((info.varying || []).map(async (parameter) => {
      const {values} = await api("values", {run: view.run, parameter});
      const select = el("select", {"data-parameter": parameter, onchange: (event) => {
        const value = event.target.value;
        if (value) view.filters[parameter] = value; else delete view.filters[parameter];
        view.offset = 0;
        refreshTable().catch(ER.showError);
      }}, el("option", {value: ""}, "any"),
      values.map(([value, count]) => el("option", {value: JSON.stringify(value)}, `${formatValue(value)} (${count})`)));
      select.value = view.filters[parameter] || "";
      return el("label", {class: "filter"}, `${parameter} `, select);
    }));
    box.replaceChildren(...selects);
  }

  function bestQuery() {
    const metric = $("#best-metric").value;
    return view.best && metric ? `${metric}:${$("#best-direction").value}` : null;
  }

  async function refreshTable() {
    const data = await api("results", {
      run: view.run, offset: view.offset, limit: view.limit, sort: view.sort, order: view.sort ? view.order : null,
      filter: Object.entries(view.filters).map(([name, value]) => `${name}:${value}`), best: bestQuery(),
    });
    view.columns = data.columns;
    drawTableHead(data.columns);
    drawTableBody(data);
    const last = Math.min(view.offset + data.rows.length, data.matched);
    const filtered = data.matched !== data.total ? ` (filtered from ${data.total})` : "";
    $("#page-info").textContent = data.matched
      ? `${view.offset + 1}–${last} of ${data.matched}${filtered}` : `no experiment${filtered}`;
    $("#page-prev").disabled = view.offset === 0;
    $("#page-next").disabled = last >= data.matched;
    $("#results-table").dataset.matched = data.matched;
  }

  function shownColumns(columns) {
    return columns.filter((column) => column.kind !== "parameter" || column.varying || view.showConstant);
  }

  function drawTableHead(columns) {
    const cells = shownColumns(columns).map((column) => {
      const sorted = view.sort === column.name;
      const arrow = sorted ? (view.order === "asc" ? " ▲" : " ▼") : "";
      return el("th", {
        "data-column": column.name, class: `sortable ${column.kind}${column.varying ? "" : " constant"}`,
        "aria-sort": sorted ? (view.order === "asc" ? "ascending" : "descending") : "none",
        title: `sort by ${column.name}`, onclick: () => sortBy(column),
      }, column.name, arrow);
    });
    $("#results-table thead").replaceChildren(el("tr", {}, cells));
  }

  function sortBy(column) {
    if (view.sort === column.name) {
      view.order = view.order === "asc" ? "desc" : "asc";
    } else {
      view.sort = column.name;
      const best = view.info && view.info.best;
      const higherFirst = column.kind === "metric" && best && best.metric === column.name && best.direction === "max";
      view.order = higherFirst ? "desc" : "asc";
    }
    view.offset = 0;
    refreshTable().catch(ER.showError);
  }

  function drawTableBody(data) {
    const columns = shownColumns(data.columns);
    const rows = data.rows.map((row) => {
      const best = row.experiment_id === data.best_id;
      const cells = columns.map((column) => {
        if (column.kind === "id") {
          return el("td", {class: "num"}, best ? el("span", {class: "star", title: "best"}, "★ ") : null,
                    row.experiment_id);
        }
        if (column.kind === "metric") return el("td", {class: "num"}, formatStat(row.metrics[column.name]));
        const value = row.parameters[column.name];
        return el("td", {class: typeof value === "number" ? "num" : ""}, formatValue(value));
      });
      const open = () => ER.openExperiment(row.experiment_id);
      return el("tr", {"data-experiment-id": row.experiment_id, class: best ? "best clickable" : "clickable",
                       tabindex: 0, onclick: open, onkeydown: (event) => event.key === "Enter" && open()}, cells);
    });
    $("#results-table tbody").replaceChildren(...rows);
  }

  function setUpTableControls() {
    $("#page-prev").addEventListener("click", () => {
      view.offset = Math.max(0, view.offset - view.limit);
      refreshTable().catch(ER.showError);
    });
    $("#page-next").addEventListener("click", () => {
      view.offset += view.limit;
      refreshTable().catch(ER.showError);
    });
    const rebest = () => {
      view.best = true;
      refreshTable().catch(ER.showError);
    };
    $("#best-metric").addEventListener("change", rebest);
    $("#best-direction").addEventListener("change", rebest);
    $("#show-constant").addEventListener("change", (event) => {
      view.showConstant = event.target.checked;
      refreshTable().catch(ER.showError);
    });
    $("#experiment-close").addEventListener("click", () => {
      view.experiment = null;
      $("#experiment-panel").hidden = true;
    });
  }

  // --- the experiment panel -----------------------------------------------------------------------

  async function openExperiment(id, quietly) {
    view.experiment = id;
    const data = await api("experiment", {run: view.run, id});
    const panel = $("#experiment-panel");
    panel.dataset.experimentId = id;
    $("#experiment-title").textContent = `Experiment ${id}`;
    stateBadge(data.status, $("#experiment-status"));
    $("#experiment-path").textContent = data.path;
    $("#experiment-config").textContent = JSON.stringify(data.config, null, 2);
    drawRepetitionScores(data);
    $("#experiment-failures").replaceChildren(...(data.failures || []).map(failureOfExperiment));
    drawLogs(data.logs || {});
    panel.hidden = false;
    await drawExperimentMetrics(data.metrics || []);
    if (!quietly) panel.scrollIntoView({block: "nearest"});
  }
  ER.openExperiment = (id) => openExperiment(id).catch(ER.showError);

  function drawRepetitionScores(data) {
    const repetitions = data.repetitions || [];
    const names = [];
    for (const repetition of repetitions) {
      for (const name of Object.keys(repetition.scores || {})) if (!names.includes(name)) names.push(name);
    }
    const head = el("tr", {}, el("th", {class: "num"}, "repetition"), names.map((name) => el("th", {class: "num"}, name)));
    const rows = repetitions.map((repetition) => el("tr", {},
      el("td", {class: "num"}, repetition.run_id),
      names.map((name) => el("td", {class: "num"}, formatScore((repetition.scores || {})[name])))));
    $("#experiment-scores").replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
    $("#experiment-scores").hidden = repetitions.length === 0;
  }

  function formatScore(value) {
    return typeof value === "number" ? formatNumber(value) : formatValue(value);
  }

  function failureOfExperiment(failure) {
    return el("details", {class: "experiment-failure"},
      el("summary", {}, `attempt failed: ${failure.status || "error"}: ${failure.error || ""}`),
      el("pre", {class: "traceback"}, failure.traceback || ""));
  }

  function drawLogs(logs) {
    const names = Object.keys(logs);
    const blocks = names.map((name) => el("details", {"data-log": name, open: true},
      el("summary", {class: "mono"}, name), el("pre", {class: "log"}, logs[name])));
    $("#experiment-logs").replaceChildren(...(blocks.length ? blocks : [el("p", {class: "muted"}, "nothing printed")]));
  }

  /** The experiment's intermediate metrics: one line per metric and repetition, against the step. */
  async function drawExperimentMetrics(lines) {
    const section = $("#experiment-metrics-section");
    section.hidden = lines.length === 0;
    if (!lines.length) return;
    const skip = new Set(["run_id", "step", "time", "experiment_id"]);
    const traces = {};
    for (const line of lines) {
      for (const [name, value] of Object.entries(line)) {
        if (skip.has(name) || typeof value !== "number") continue;
        const key = `${name} (repetition ${line.run_id || 0})`;
        traces[key] = traces[key] || {name: key, x: [], y: [], mode: "lines+markers", type: "scatter"};
        traces[key].x.push(line.step);
        traces[key].y.push(value);
      }
    }
    const Plotly = await ER.plotly();
    Plotly.react($("#experiment-metrics"), Object.values(traces), ER.plotLayout({xaxis: {title: {text: "step"}, zeroline: false}}),
                 ER.plotConfig);
  }

  ER.setUpRunView = () => {
    setUpTableControls();
    ER.setUpPlots();
  };
})();
