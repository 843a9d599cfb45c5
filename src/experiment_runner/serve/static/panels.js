/* experiment-runner serve: a run's failures and plots, and the comparison of several runs. */
"use strict";

(() => {
  const {$, api, el, formatStat, formatValue, fillSelect} = ER;
  const view = ER.view;

  /** Plotly without its toolbar's links to the internet: the page works offline. */
  ER.plotConfig = {responsive: true, displaylogo: false, showLink: false, showSendToCloud: false,
                   modeBarButtonsToRemove: ["sendDataToCloud"]};

  ER.plotLayout = (extra) => Object.assign({
    margin: {l: 60, r: 20, t: 40, b: 50}, hovermode: "closest", legend: {orientation: "h", y: -0.2},
    font: {family: "system-ui, sans-serif", size: 12}, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
  }, extra);

  ER.resetPanels = () => {
    $("#failures").replaceChildren();
    $("#failures-section").hidden = true;
    $("#curves-section").hidden = true;
    if (window.Plotly) for (const id of ["metric-plot", "parallel-plot", "curves-plot"]) Plotly.purge($(`#${id}`));
  };

  // --- 4. failures, grouped by identical error ----------------------------------------------------

  ER.refreshFailures = async () => {
    const data = await api("failures", {run: view.run});
    $("#failures-section").hidden = data.groups.length === 0 && data.pruned.count === 0;
    $("#failures-total").textContent = data.total ? `(${data.total} experiment${data.total === 1 ? "" : "s"})` : "";
    const opened = new Set(Array.from(document.querySelectorAll("#failures details[open]"), (node) => node.dataset.error));
    $("#failures").replaceChildren(...data.groups.map((group, i) => failureGroup(group, opened.has(group.error) || i === 0)));
    $("#pruned").replaceChildren(...(data.pruned.count ? prunedLine(data.pruned) : []));
  };

  /** Experiments a search stopped early: no failures, so no traceback; each id opens the experiment. */
  function prunedLine(pruned) {
    const more = pruned.count > pruned.experiment_ids.length ? ` and ${pruned.count - pruned.experiment_ids.length} more` : "";
    return [`${pruned.count} pruned (stopped early by the search, on purpose: not failures): experiments `,
            ...experimentLinks(pruned.experiment_ids), more];
  }

  function experimentLinks(ids) {
    return ids.map((id) => el("a", {href: "#", class: "experiment-link", onclick: (event) => {
      event.preventDefault();
      ER.openExperiment(id);
    }}, id)).flatMap((link, i) => i ? [", ", link] : [link]);
  }

  function failureGroup(group, open) {
    const more = group.count > group.experiment_ids.length ? ` and ${group.count - group.experiment_ids.length} more` : "";
    return el("details", {class: "failure-group", "data-count": group.count, "data-error": group.error, open},
      el("summary", {},
        el("span", {class: "failure-count", title: "experiments that failed with this error"}, `${group.count}×`),
        el("span", {class: `state state-${group.status}`}, group.status),
        el("span", {class: "failure-error mono"}, group.error)),
      el("div", {class: "failure-ids"}, "experiments ", ...experimentLinks(group.experiment_ids), more),
      el("pre", {class: "traceback"}, group.traceback_tail || ""));
  }

  // --- 5. plots ------------------------------------------------------------------------------------

  ER.setUpPlots = () => {
    for (const id of ["plot-metric", "plot-x", "plot-hue"]) {
      $(`#${id}`).addEventListener("change", () => drawMetricPlots().catch(ER.showError));
    }
    $("#curves-metric").addEventListener("change", () => drawCurves().catch(ER.showError));
  };

  /** On a run's first drawing, fill the selects; every time its version changes, draw again. */
  ER.refreshPlots = async (first) => {
    const info = view.info;
    if (first) {
      const metrics = info.metrics || [];
      const preferred = info.best ? info.best.metric : metrics[0];
      fillSelect($("#plot-metric"), metrics.map((name) => [name, name]), preferred);
      const parameters = info.varying && info.varying.length ? info.varying : info.parameters || [];
      fillSelect($("#plot-x"), parameters.map((name) => [name, name]), parameters[0]);
      fillSelect($("#plot-hue"), [["", "(none)"], ...parameters.map((name) => [name, name])], "");
    }
    await Promise.all([drawMetricPlots(), drawCurves()]);
  };

  ER.refreshCurves = () => drawCurves();

  async function drawMetricPlots() {
    const metric = $("#plot-metric").value, x = $("#plot-x").value;
    const hasPlot = Boolean(metric && x && view.info.finished);
    $("#metric-plot").hidden = !hasPlot;
    $("#parallel-plot").hidden = !hasPlot || !(view.info.varying || []).length;
    if (!hasPlot) return;
    const hue = $("#plot-hue").value && $("#plot-hue").value !== x ? $("#plot-hue").value : null;
    const [plot, parallel] = await Promise.all([
      api("plot", {run: view.run, metric, x, hue}),
      $("#parallel-plot").hidden ? null : api("parallel", {run: view.run, metric}),
    ]);
    await drawLines($("#metric-plot"), plot, `${metric} by ${x}${hue ? ` and ${hue}` : ""}`);
    if (parallel) await drawParallel($("#parallel-plot"), parallel);
  }

  /** Lines of {label, x, mean, std} with error bars, as report --plot draws them (the same numbers). */
  async function drawLines(node, plot, title) {
    const traces = plot.lines.map((line) => ({
      type: "scatter", mode: "lines+markers", name: line.label || plot.metric,
      x: line.x, y: line.mean, error_y: {type: "data", array: line.std, visible: true},
    }));
    const xaxis = {title: {text: plot.x}, exponentformat: "none"};
    if (plot.log_x) xaxis.type = "log";
    if (plot.categories) Object.assign(xaxis, {type: "category", categoryorder: "array", categoryarray: plot.categories});
    const yaxis = {title: {text: `${plot.metric} (mean ± std)`}, type: plot.log_y ? "log" : "linear"};
    (await ER.plotly()).react(node, traces, ER.plotLayout({title: {text: title}, xaxis, yaxis,
                                              showlegend: traces.length > 1}), ER.plotConfig);
  }

  async function drawParallel(node, data) {
    const trace = {
      type: "parcoords",
      line: {color: data.color, colorscale: "Viridis", reversescale: data.lower_is_better, showscale: true,
             colorbar: {title: {text: data.metric}}},
      dimensions: data.dimensions,
    };
    const sampled = data.shown < data.total
      ? `: the best ${data.best_kept} and ${data.shown - data.best_kept} others of ${data.total} experiments` : "";
    (await ER.plotly()).react(node, [trace], ER.plotLayout({title: {text: `${data.metric} over every varying parameter${sampled}`},
                                               margin: {l: 80, r: 80, t: 80, b: 30}}), ER.plotConfig);
  }

  async function drawCurves() {
    const chosen = $("#curves-metric").value;
    const data = await api("curves", {run: view.run, metric: chosen || null});
    const section = $("#curves-section");
    section.hidden = !data.curves.length;
    if (!data.curves.length) return;
    fillSelect($("#curves-metric"), data.metrics.map((name) => [name, name]), data.metric);
    const traces = data.curves.map((curve) => ({
      type: "scatter", mode: "lines", x: curve.step, y: curve.mean, name: curve.label, line: {width: 2},
      error_y: curve.std.some(Boolean) ? {type: "data", array: curve.std, visible: true, thickness: 1} : undefined,
    }));
    if (data.others) {  // every other experiment: one grey trace broken by nulls, drawn below the named ones
      traces.unshift({type: "scatter", mode: "lines", x: data.others.step, y: data.others.value, name: "others",
                      hoverinfo: "skip", line: {width: 1, color: "rgba(150,150,150,0.5)"}, connectgaps: false});
    }
    const lastStep = Math.max(...data.curves.map((curve) => curve.step[curve.step.length - 1] || 0));
    (await ER.plotly()).react($("#curves-plot"), traces, ER.plotLayout({
      title: {text: data.title}, xaxis: {title: {text: "step"}, zeroline: false, dtick: lastStep <= 20 ? 1 : undefined},
      yaxis: {title: {text: data.metric}, type: data.log_y ? "log" : "linear"},
    }), ER.plotConfig);
  }

  // --- 6. comparing runs ---------------------------------------------------------------------------

  let compared = [];

  ER.setUpCompare = () => {
    for (const id of ["compare-metric", "compare-x"]) {
      $(`#${id}`).addEventListener("change", () => refreshCompare().catch(ER.showError));
    }
  };

  ER.showCompare = (runs) => {
    document.body.dataset.view = "compare";
    $("#compare-view").hidden = false;
    if (runs.join(",") !== compared.join(",")) {
      compared = runs;
      $("#compare-metric").replaceChildren();
      $("#compare-x").replaceChildren();
    }
    $("#compare-runs").textContent = runs.join(" · ");
    ER.poll(refreshCompare, 3000);
  };

  async function refreshCompare() {
    const data = await api("compare", {runs: compared.join(","), metric: $("#compare-metric").value || null,
                                       x: $("#compare-x").value || null});
    fillSelect($("#compare-metric"), data.metrics.map((name) => [name, name]), data.metric);
    fillSelect($("#compare-x"), data.parameters.map((name) => [name, name]), data.x);
    drawCompareTable(data);
    $("#compare-plot").hidden = !data.plot;
    if (data.plot) await drawLines($("#compare-plot"), data.plot, `${data.metric} by ${data.x}: one line per run`);
  }

  function drawCompareTable(data) {
    const parameters = data.columns.filter((column) => column.kind === "parameter").map((column) => column.name);
    const metrics = data.columns.filter((column) => column.kind === "metric").map((column) => column.name);
    const head = el("tr", {}, el("th", {}, "run"), el("th", {class: "num"}, "id"),
                    parameters.map((name) => el("th", {}, name)), metrics.map((name) => el("th", {class: "num"}, name)));
    const rows = data.rows.map((row) => el("tr", {"data-run": row.run},
      el("td", {class: "mono"}, el("a", {href: `#run=${encodeURIComponent(row.run)}`}, row.run)),
      el("td", {class: "num"}, row.experiment_id),
      parameters.map((name) => el("td", {}, formatValue(row.parameters[name]))),
      metrics.map((name) => el("td", {class: "num"}, formatStat(row.metrics[name])))));
    $("#compare-table thead").replaceChildren(head);
    $("#compare-table tbody").replaceChildren(...rows);
    $("#compare-note").textContent = data.matched > data.rows.length
      ? `the best ${data.rows.length} of ${data.matched} experiments by ${data.metric}` : "";
  }
})();
