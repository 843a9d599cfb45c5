/* experiment-runner serve: the page. Plain JavaScript, no build step; Plotly from static/plotly.min.js.
 *
 * app.js holds the shared helpers, the routing and the runs list; table.js the results table and the
 * experiment panel; panels.js the failures, the plots and the comparison of runs.
 *
 * Views (the address's hash says which): ""  the runs list; "#run=R" one run (R: its path relative to
 * the served folder); "#compare=R1,R2" several runs side by side. A run's view polls /api/run every
 * second and fetches its table, failures and plots again only when the run's "version" changed.
 *
 * Stable element ids for tests and scripts:
 *   #runs-view, #runs-table tbody tr[data-run=R] (td.state[data-state]), input.compare-pick, #compare-button
 *   #run-view, #run-title, #run-state[data-state], #progress-text, #progress[data-finished][data-failed]...
 *   #results-table (th[data-column=NAME][aria-sort], tbody tr[data-experiment-id=N], tr.best),
 *   #filters select[data-parameter=P], #best-metric, #best-direction, #show-constant,
 *   #page-prev, #page-next, #page-info
 *   #experiment-panel[data-experiment-id], #experiment-status, #experiment-path, #experiment-config,
 *   #experiment-scores, #experiment-logs (details[data-log=NAME] pre), #experiment-metrics
 *   #failures-section, #failures .failure-group[data-count] (.failure-count, .failure-error, pre.traceback),
 *   #pruned (the experiments a search stopped early: apart from the failures)
 *   #plot-metric, #plot-x, #plot-hue, #metric-plot, #parallel-plot, #curves-section, #curves-plot
 *   #compare-view, #compare-metric, #compare-x, #compare-plot, #compare-table (tr[data-run])
 *   body[data-view] and body[data-version]: the view shown and the version of the run last drawn.
 */
"use strict";

const ER = (() => {
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  /** The access token the printed address carried, if any: sent along with every API call. */
  const token = new URLSearchParams(location.search).get("token");

  /** GET /api/<path> with the given query; resolves with the JSON, rejects with the server's one-line error. */
  async function api(path, query) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query || {})) {
      if (value === null || value === undefined || value === "") continue;
      for (const one of Array.isArray(value) ? value : [value]) params.append(name, one);
    }
    if (token) params.set("token", token);
    const response = await fetch(`api/${path}?${params}`, {cache: "no-store"});
    let body;
    try {
      body = await response.json();
    } catch (error) {
      throw new Error(`${path}: HTTP ${response.status}`);
    }
    if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
    return body;
  }

  function showError(error) {
    const banner = $("#error-banner");
    if (error) {
      banner.textContent = String(error.message || error);
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // --- numbers, as the report command writes them ------------------------------------------------

  /** A number with 4 significant digits and at least one after the point; an int in full (report's format_stat). */
  function formatNumber(value, digitsOf) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "number") return String(value);
    if (!Number.isFinite(value)) return String(value);
    const reference = digitsOf === undefined ? value : digitsOf;
    if (Number.isInteger(reference) && Number.isInteger(value) && digitsOf === undefined) return String(value);
    if (reference === 0) return value.toFixed(1);
    const exponent = Number(reference.toExponential(3).split("e")[1]);
    if (exponent < -4 || exponent >= 15) return value.toExponential(3);
    return value.toFixed(Math.max(1, 3 - exponent));
  }

  /** ``mean ± std`` of a metric cell {mean, std, n}. */
  function formatStat(stat) {
    if (!stat) return "";
    const mean = formatNumber(stat.mean);
    if (stat.std === null || stat.std === undefined) return mean;
    return `${mean} ± ${Number.isInteger(stat.mean) ? formatNumber(stat.std) : formatNumber(stat.std, stat.mean)}`;
  }

  /** A parameter's value as a cell, as given (0.001, not 0.001000): null as "null", lists and dicts as JSON. */
  function formatValue(value) {
    if (value === undefined) return "";
    if (value === null) return "null";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    seconds = Math.round(seconds);
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
    if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
    return `${s} s`;
  }

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function stateBadge(state, node) {
    node = node || el("span");
    node.className = `state state-${state}`;
    node.dataset.state = state;
    node.textContent = state;
    return node;
  }

  /** Replace a select's options, keeping the chosen value when it is still offered. */
  function fillSelect(select, options, preferred) {
    const previous = select.value || preferred;
    select.replaceChildren(...options.map(([value, label]) => el("option", {value}, label)));
    const values = options.map(([value]) => value);
    select.value = values.includes(previous) ? previous : (values.includes(preferred) ? preferred : values[0] || "");
  }

  // --- Plotly, loaded once a plot is to be drawn: its 4.8 MB script does not delay the tables ----------

  let plotlyLoading = null;

  function plotly() {
    if (!plotlyLoading) {
      plotlyLoading = new Promise((resolve, reject) => {
        const script = el("script", {src: `static/plotly.min.js${token ? `?token=${encodeURIComponent(token)}` : ""}`});
        script.addEventListener("load", () => resolve(window.Plotly));
        script.addEventListener("error", () => {
          plotlyLoading = null;
          reject(new Error("could not load static/plotly.min.js: is the serve extra installed?"));
        });
        document.head.append(script);
      });
    }
    return plotlyLoading;
  }

  // --- polling: one timer per view, never two requests of it at once ----------------------------

  let poller = null;

  /** Call ``tick`` now and then every ``interval`` ms until the view changes; errors show in the banner. */
  function poll(tick, interval) {
    const mine = {stopped: false};
    poller = mine;
    const loop = async () => {
      if (mine.stopped) return;
      try {
        await tick();
        showError(null);
        $("#live-indicator").textContent = `updated ${new Date().toLocaleTimeString()}`;
      } catch (error) {
        showError(error);
      }
      if (!mine.stopped) mine.timer = setTimeout(loop, interval);
    };
    loop();
  }

  function stopPolling() {
    if (poller) {
      poller.stopped = true;
      clearTimeout(poller.timer);
      poller = null;
    }
  }

  // --- routing ------------------------------------------------------------------------------------

  function route() {
    stopPolling();
    const [name, value] = splitOnce(location.hash.slice(1), "=");
    for (const view of ["runs-view", "run-view", "compare-view"]) $(`#${view}`).hidden = true;
    if (name === "run" && value) {
      ER.showRun(decodeURIComponent(value));
    } else if (name === "compare" && value) {
      ER.showCompare(value.split(",").filter(Boolean).map(decodeURIComponent));
    } else {
      showRuns();
    }
  }

  function splitOnce(text, separator) {
    const at = text.indexOf(separator);
    return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + separator.length)];
  }

  function go(hash) {
    location.hash = hash;
  }

  // --- 1. the runs list ---------------------------------------------------------------------------

  const picked = new Set();
  let autoOpened = false;

  function showRuns() {
    document.body.dataset.view = "runs";
    $("#runs-view").hidden = false;
    poll(refreshRuns, 2000);
  }

  async function refreshRuns() {
    const data = await api("runs");
    $("#root-path").textContent = data.root;
    if (!autoOpened && data.runs.length === 1 && data.runs[0].run === ".") {
      autoOpened = true;  // PATH is one run: show it at once
      go(`run=${encodeURIComponent(".")}`);
      return;
    }
    autoOpened = true;
    const rows = data.runs.map(runRow);
    $("#runs-table tbody").replaceChildren(...rows);
    $("#runs-empty").hidden = rows.length > 0;
    updateCompareButton();
  }

  function runRow(run) {
    const pick = el("input", {type: "checkbox", class: "compare-pick", title: "compare this run",
                              onchange: (event) => {
                                if (event.target.checked) picked.add(run.run); else picked.delete(run.run);
                                updateCompareButton();
                              }});
    pick.checked = picked.has(run.run);
    const open = () => go(`run=${encodeURIComponent(run.run)}`);
    const row = el("tr", {"data-run": run.run, class: "clickable"},
      el("td", {}, pick),
      el("td", {class: "mono"}, el("a", {href: `#run=${encodeURIComponent(run.run)}`}, run.run)),
      el("td", {}, stateBadge(run.state), run.loading ? el("span", {class: "muted"}, ` reading… ${ER.readPercent(run.loading)}%`) : null),
      el("td", {}, run.backend || ""),
      el("td", {class: "num"}, `${run.finished} / ${run.total}`),
      el("td", {class: run.failed ? "num bad" : "num"}, run.failed),
      el("td", {class: "num"}, run.pruned),
      el("td", {class: "num"}, run.pending),
      el("td", {}, formatTime(run.started)),
      el("td", {class: "num"}, formatDuration(run.wall_time)),
      el("td", {class: "mono command", title: run.command || ""}, run.command || ""));
    row.addEventListener("click", (event) => {
      if (event.target.tagName !== "INPUT" && event.target.tagName !== "A") open();
    });
    return row;
  }

  function updateCompareButton() {
    const button = $("#compare-button");
    button.disabled = picked.size < 2;
    button.textContent = picked.size >= 2 ? `Compare ${picked.size} runs` : "Compare selected runs";
  }

  function start() {
    $("#compare-button").addEventListener("click", () =>
      go(`compare=${Array.from(picked).map(encodeURIComponent).join(",")}`));
    window.addEventListener("hashchange", route);
    ER.setUpRunView();
    ER.setUpCompare();
    route();
  }

  return {$, $$, api, el, showError, formatNumber, formatStat, formatValue, formatDuration, formatTime,
          stateBadge, fillSelect, plotly, poll, go, splitOnce, start};
})();
