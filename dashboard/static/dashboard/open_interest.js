/* VolSpike OI debug page: screener, chart, live alerts and status, from the public API and the
 * WebSocket feed. Plain JS; the only library is uPlot (vendored). */
(function () {
  "use strict";

  const CONFIG = JSON.parse(document.getElementById("oi-config").textContent);
  const RULE = CONFIG.alertRule;
  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const MAX_ALERTS = 200;
  const $ = (id) => document.getElementById(id);

  // --- helpers -------------------------------------------------------------------------------

  async function api(url) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10000);
    try {
      const response = await fetch(url, {
        headers: TOKEN ? { Authorization: "Token " + TOKEN } : {},
        signal: controller.signal,
      });
      if (!response.ok) throw new Error("HTTP " + response.status + " from " + url);
      return await response.json();
    } finally {
      clearTimeout(timer);
    }
  }

  function num(value) {
    if (value === null || value === undefined || value === "") return null;
    const n = typeof value === "number" ? value : parseFloat(value);
    return Number.isFinite(n) ? n : null;
  }

  function compact(n, digits) {
    if (n === null) return "–";
    const abs = Math.abs(n);
    const units = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
    for (const [size, suffix] of units) {
      if (abs >= size) return (n / size).toFixed(digits === undefined ? 2 : digits) + suffix;
    }
    return n.toLocaleString("en-US", { maximumFractionDigits: 3 });
  }

  function fmtOi(n) {
    if (n === null) return "–";
    if (Math.abs(n) >= 1e6) return compact(n, 3);
    return n.toLocaleString("en-US", { maximumFractionDigits: 3 });
  }

  function fmtUsd(n) {
    return n === null ? "–" : "$" + compact(n, 2);
  }

  function fmtDuration(seconds) {
    if (seconds % 3600 === 0) return seconds / 3600 + " h";
    if (seconds % 60 === 0) return seconds / 60 + " min";
    return seconds + " s";
  }

  function fmtPct(fraction, digits) {
    if (fraction === null) return "–";
    const d = digits === undefined ? 2 : digits;
    const pct = Number((fraction * 100).toFixed(d)); // no "−0.00%"
    return (pct > 0 ? "+" : pct < 0 ? "−" : "") + Math.abs(pct).toFixed(digits === undefined ? 2 : digits) + "%";
  }

  function pctClass(fraction) {
    if (fraction === null) return "na";
    return fraction > 0 ? "up" : fraction < 0 ? "down" : "";
  }

  function fmtAge(seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 60) return Math.floor(seconds) + " s ago";
    if (seconds < 3600) {
      const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
      return m + " min" + (m < 10 ? " " + s + " s" : "") + " ago";
    }
    if (seconds < 86400) {
      const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
      return h + " h " + m + " min ago";
    }
    return Math.floor(seconds / 86400) + " d " + Math.floor((seconds % 86400) / 3600) + " h ago";
  }

  function isoUtc(ms) {
    return new Date(ms).toISOString().replace(".000Z", "Z").replace("T", " ");
  }

  /* An element showing a relative age, refreshed every second by tick(); past data-stale-after
   * seconds it gets the "stale" class (red, with a warning sign). */
  function setAge(el, ms, staleAfterSec) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) {
      delete el.dataset.ts;
      el.textContent = "never";
      el.classList.add("stale");
      el.title = "";
      return;
    }
    el.dataset.ts = String(ms);
    if (staleAfterSec !== undefined) el.dataset.staleAfter = String(staleAfterSec);
    el.title = isoUtc(ms);
    renderAge(el, Date.now());
  }

  function fmtAgeShort(seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 60) return Math.floor(seconds) + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m" + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
    if (seconds < 86400) return Math.floor(seconds / 3600) + "h" + String(Math.floor((seconds % 3600) / 60)).padStart(2, "0") + "m";
    return Math.floor(seconds / 86400) + "d";
  }

  function renderAge(el, now) {
    const ms = Number(el.dataset.ts);
    const age = (now - ms) / 1000;
    const text = el.dataset.short ? fmtAgeShort(age) : fmtAge(age);
    if (el.textContent !== text) el.textContent = text;
    const staleAfter = Number(el.dataset.staleAfter);
    el.classList.toggle("stale", staleAfter > 0 && age > staleAfter);
  }

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll("[data-ts]")) renderAge(el, now);
    $("clock").textContent = isoUtc(now - (now % 1000)) + " UTC";
  }

  /* "updated 3 s ago" next to a panel title; flags a failed refresh and an old one. */
  function fetched(id, error) {
    const el = $(id);
    if (error) {
      el.classList.add("error");
      el.dataset.error = String(error);
      el.title = "last refresh failed: " + error;
      return;
    }
    el.classList.remove("error");
    delete el.dataset.error;
    setAge(el, Date.now());
  }

  function every(seconds, fn) {
    fn();
    setInterval(fn, seconds * 1000);
  }

  // --- status panels -------------------------------------------------------------------------

  let intervalSec = CONFIG.maxIntervalSec;

  function sampleStaleAfter() {
    return Math.max(3 * intervalSec, 10);
  }

  async function loadPoller() {
    let status;
    try {
      status = await api(CONFIG.urls.poller);
    } catch (error) {
      fetched("poller-fetched", error.message);
      return;
    }
    if (status.intervalSec) intervalSec = status.intervalSec;
    $("poller-n").textContent = status.nSymbols.toLocaleString("en-US");
    $("poller-interval").textContent =
      status.intervalSec === null ? "not running yet" : status.intervalSec.toFixed(1) + " s per symbol";
    if (status.overloaded) {
      // stated, not silent: the budgets cannot poll every symbol within the maximum interval
      $("poller-interval").textContent += " (overloaded: stretched past " + status.maxIntervalSec + " s)";
    }
    $("poller-interval").classList.toggle("bad", status.intervalSec === null || status.overloaded);
    groupsInto($("poller-groups"), status.groups || []);
    const pct = status.budgetUsedPct;
    $("poller-budget").textContent =
      status.weightLastMinute.toLocaleString("en-US") + " / " + status.budgetPerMin.toLocaleString("en-US") +
      " weight/min (" + pct.toFixed(1) + "%)";
    const bar = $("poller-budget-bar");
    bar.style.width = Math.min(100, pct) + "%";
    bar.className = "bar-fill" + (pct > 95 ? " bad" : pct > 80 ? " warn" : "");
    setAge($("poller-dispatched"), status.dispatchedAt ? Date.parse(status.dispatchedAt) : null,
      Math.max(10, 3 * (status.intervalSec || CONFIG.maxIntervalSec)));
    setAge($("poller-mark-age"),
      status.markPricesAgeSec === null ? null : Date.now() - status.markPricesAgeSec * 1000,
      sampleStaleAfter());
    renderMarketStreams(status.marketStreams);
    listInto($("poller-stale"), status.staleSymbols, "none");
    listInto($("poller-failing"), Object.keys(status.failing || {}), "none");
    const counters = $("poller-counters");
    counters.textContent = "";
    for (const [name, value] of Object.entries(status.counters).sort()) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = value.toLocaleString("en-US");
      counters.append(dt, dd);
    }
    fetched("poller-fetched");
  }

  function groupsInto(el, groups) {
    el.textContent = "";
    for (const group of groups) {
      const li = document.createElement("li");
      li.dataset.egress = group.egressId;
      li.textContent =
        group.egressId + (group.host ? " (" + group.host + ")" : "") + ": " +
        (group.live ? "" : "no heartbeat, ") + group.nSymbols + " symbols, " +
        group.weightLastMinute.toLocaleString("en-US") + " / " +
        Math.round(group.budgetPerMin).toLocaleString("en-US") + " weight/min";
      li.classList.toggle("bad", !group.live);
      el.append(li);
    }
    if (!groups.length) el.textContent = "none yet";
  }

  function listInto(el, symbols, emptyText) {
    el.textContent = "";
    el.classList.toggle("bad", symbols.length > 0);
    if (!symbols.length) {
      el.textContent = emptyText;
      return;
    }
    const shown = symbols.slice(0, 8);
    el.append(symbols.length + ": ");
    shown.forEach((symbol, i) => {
      const link = document.createElement("a");
      link.href = "#symbol=" + symbol;
      link.textContent = symbol;
      el.append(link, i < shown.length - 1 ? ", " : "");
    });
    if (symbols.length > shown.length) el.append(" …");
  }

  async function loadUniverse() {
    let universe;
    try {
      universe = await api(CONFIG.urls.universe);
    } catch (error) {
      fetched("universe-fetched", error.message);
      return;
    }
    $("universe-members").textContent =
      universe.counts.members.toLocaleString("en-US") +
      (universe.counts.missingFromTicker ? " (" + universe.counts.missingFromTicker + " missing from ticker)" : "");
    setAge($("universe-refreshed"), universe.lastSuccessAt ? Date.parse(universe.lastSuccessAt) : null);
    const state = $("universe-state");
    state.textContent = "";
    if (universe.stale) {
      state.className = "bad";
      const since = document.createElement("span");
      setAge(since, Date.parse(universe.staleSince));
      state.append("⚠ STALE: refreshes failing since ", since);
      if (universe.lastFailureReason) state.title = universe.lastFailureReason;
    } else {
      state.className = "good";
      state.textContent = universe.lastSuccessAt ? "fresh" : "no refresh yet";
      if (!universe.lastSuccessAt) state.className = "bad";
    }
    $("universe-thresholds").textContent =
      "enter ≥ $" + compact(num(universe.thresholds.enterQuoteVolume), 1) +
      ", exit < $" + compact(num(universe.thresholds.exitQuoteVolume), 1);
    $("universe-last-run").textContent =
      universe.counts.eligibleLastRun + " eligible, +" + universe.counts.enteredLastRun +
      " / −" + universe.counts.exitedLastRun;
    fetched("universe-fetched");
  }

  // --- the market as a whole ------------------------------------------------------------------

  function breadthText(b) {
    if (!b || !b.measured) return "–";
    return Math.round(b.rising * 100) + "% rising · " + Math.round(b.falling * 100) + "% falling (of " +
      b.measured + ")";
  }

  function moversInto(el, movers) {
    el.textContent = "";
    if (!movers || !movers.length) {
      el.textContent = "none";
      return;
    }
    movers.slice(0, 3).forEach((mover, i) => {
      const link = document.createElement("a");
      link.href = "#symbol=" + mover.symbol;
      link.textContent = mover.symbol;
      const pct = document.createElement("span");
      pct.className = pctClass(mover.pctChange);
      pct.textContent = " " + fmtPct(mover.pctChange, 1);
      el.append(link, pct, i < Math.min(3, movers.length) - 1 ? ", " : "");
    });
  }

  async function loadMarket() {
    let market;
    try {
      market = await api(CONFIG.urls.market);
    } catch (error) {
      fetched("market-fetched", error.message);
      return;
    }
    const totals = market.totalOpenInterestUsd;
    const now = totals[totals.length - 1];
    $("market-total").textContent = now && now.symbols
      ? fmtUsd(num(now.openInterestUsd)) + " (" + now.symbols + " symbols)" : "–";
    const change = $("market-total-change");
    const hour = market.totalChange1h;
    change.textContent = hour.pctChange === null ? "–"
      : fmtPct(hour.pctChange) + " (the " + hour.symbols + " symbols priced then and now)";
    change.className = pctClass(hour.pctChange);
    $("market-breadth-5m").textContent = breadthText(market.breadth["5m"]);
    $("market-breadth-1h").textContent = breadthText(market.breadth["1h"]);
    moversInto($("market-gainers"), market.gainers["5m"]);
    moversInto($("market-losers"), market.losers["5m"]);
    fetched("market-fetched");
  }

  // --- market streams (the poller panel) ------------------------------------------------------

  const STREAM_LABELS = {
    "!markPrice@arr@1s": "mark price",
    "!miniTicker@arr": "mini tickers",
    "!forceOrder@arr": "liquidations",
  };

  function renderMarketStreams(market) {
    const source = $("poller-mark-source");
    const list = $("poller-streams");
    if (!market) {
      setText(source, "–");
      list.textContent = "";
      return;
    }
    const rest = market.markPriceSource === "rest";
    setText(source, market.markPriceSource === "stream" ? "stream" : rest ? "REST (premiumIndex)" : "–");
    source.dataset.source = market.markPriceSource || "";
    source.className = rest ? "stale" : "";
    list.textContent = "";
    for (const [name, stream] of Object.entries(market.streams || {})) {
      const li = document.createElement("li");
      li.dataset.stream = name;
      li.dataset.state = stream.state;
      const age = stream.lastFrameAgeSec === null ? "no frame yet" : fmtAgeShort(stream.lastFrameAgeSec) + " ago";
      li.textContent = (STREAM_LABELS[name] || name) + ": " + stream.state + " · " + age;
      li.title = name + ": stale after " + stream.staleAfterSec + " s without a frame; " + (stream.frames || 0).toLocaleString("en-US") + " frames";
      if (stream.state === "stale" || stream.state === "never") li.className = "stale";
      list.append(li);
    }
  }

  // --- screener ------------------------------------------------------------------------------

  const COLUMNS = [
    "symbol", "quoteVolume24h", "enteredAt", "openInterest", "openInterestUsd",
    "pctChange5m", "pctChange15m", "pctChange1h", "pctChange4h", "pctChange24h", "regime5m",
    "liq5m", "openInterestTime",
  ];
  // oi.regimes: the label shown, its meaning (the cell's title) and its colour class.
  const REGIMES = {
    long_build: ["long build", "OI up, price up: new longs", "up"],
    short_build: ["short build", "OI up, price down: new shorts", "down"],
    short_cover: ["short cover", "OI down, price up: shorts covering or squeezed", "up"],
    long_flush: ["long flush", "OI down, price down: longs closing or liquidated", "down"],
    build_price_flat: ["OI ↑ · price flat", "OI up while the price held", ""],
    unwind_price_flat: ["OI ↓ · price flat", "OI down while the price held", ""],
    oi_flat: ["OI flat", "OI barely moved", "muted"],
    unknown: ["–", "no price for the window, or not covered yet", "muted"],
  };
  const rows = new Map(); // symbol -> {data, tr, cells}
  let sortKey = "quoteVolume24h";
  let sortDir = -1; // -1 descending, 1 ascending
  let filterText = "";
  let selectedSymbol = null;
  const body = $("screener-body");

  function sortValue(data, key) {
    switch (key) {
      case "symbol": return data.symbol;
      case "regime5m": return data.regime5m || "";
      case "liq5m": return data.liqLongUsd5m == null ? null : num(data.liqLongUsd5m) + num(data.liqShortUsd5m);
      case "enteredAt":
      case "openInterestTime": return data[key] ? Date.parse(data[key]) : null;
      default: return num(data[key]);
    }
  }

  function setText(cell, text) {
    if (cell.textContent !== text) cell.textContent = text;
  }

  function renderRow(row) {
    const d = row.data, c = row.cells;
    setText(c.symbol, d.symbol);
    setText(c.quoteVolume24h, fmtUsd(num(d.quoteVolume24h)));
    const entered = Date.parse(d.enteredAt);
    setText(c.enteredAt, fmtAgeShort((Date.now() - entered) / 1000));
    c.enteredAt.title = "entered " + isoUtc(entered);
    setText(c.openInterest, fmtOi(num(d.openInterest)));
    setText(c.openInterestUsd, fmtUsd(num(d.openInterestUsd)));
    for (const key of ["pctChange5m", "pctChange15m", "pctChange1h", "pctChange4h", "pctChange24h"]) {
      const value = num(d[key]);
      setText(c[key], fmtPct(value));
      c[key].className = "num " + pctClass(value);
      c[key].title = value === null ? "not covered by the ring buffer yet" : "";
    }
    const [regimeText, regimeMeaning, regimeClass] = REGIMES[d.regime5m] || REGIMES.unknown;
    setText(c.regime5m, regimeText);
    c.regime5m.className = "regime " + regimeClass;
    c.regime5m.title = regimeMeaning;
    c.regime5m.dataset.regime = d.regime5m || "unknown";
    if (d.liqLongUsd5m == null) {
      setText(c.liq5m, "–");
      c.liq5m.title = "the liquidation stream has not run";
    } else {
      const long = num(d.liqLongUsd5m), short = num(d.liqShortUsd5m);
      setText(c.liq5m, long + short === 0 ? "0" : fmtUsd(long) + " / " + fmtUsd(short));
      c.liq5m.title = "≥ " + fmtUsd(long) + " longs, ≥ " + fmtUsd(short) + " shorts liquidated in 5 min (lower bounds)";
    }
    if (d.openInterestTime) setAge(c.openInterestTime, Date.parse(d.openInterestTime), sampleStaleAfter());
    else setAge(c.openInterestTime, null);
  }

  function makeRow(data) {
    const tr = document.createElement("tr");
    tr.dataset.symbol = data.symbol;
    const cells = {};
    for (const key of COLUMNS) {
      const td = document.createElement(key === "symbol" ? "th" : "td");
      if (key === "symbol") td.scope = "row";
      else td.className = "num";
      if (key === "openInterestTime") td.dataset.short = "1";
      cells[key] = td;
      tr.append(td);
    }
    return { data, tr, cells };
  }

  function compareRows(a, b) {
    const va = sortValue(a.data, sortKey), vb = sortValue(b.data, sortKey);
    if (va === null && vb === null) return a.data.symbol < b.data.symbol ? -1 : 1;
    if (va === null) return 1; // missing values last, whatever the direction
    if (vb === null) return -1;
    if (va < vb) return -sortDir;
    if (va > vb) return sortDir;
    return a.data.symbol < b.data.symbol ? -1 : 1;
  }

  /* Sort and filter by moving the existing rows: no row is rebuilt. */
  function applyView() {
    const ordered = Array.from(rows.values()).sort(compareRows);
    let visible = 0;
    let changed = body.children.length !== ordered.length;
    if (!changed) {
      for (let i = 0; i < ordered.length; i++) {
        if (body.children[i] !== ordered[i].tr) { changed = true; break; }
      }
    }
    if (changed) {
      const fragment = document.createDocumentFragment();
      for (const row of ordered) fragment.append(row.tr);
      body.append(fragment);
    }
    for (const row of ordered) {
      const show = !filterText || row.data.symbol.includes(filterText);
      if (row.tr.hidden === show) row.tr.hidden = !show;
      if (show) visible++;
    }
    $("row-count").textContent = filterText
      ? visible + " of " + rows.size + " symbols"
      : rows.size + " symbols";
    $("row-count").dataset.total = String(rows.size);
    $("row-count").dataset.visible = String(visible);
    for (const th of document.querySelectorAll("#screener thead th")) {
      const active = th.dataset.key === sortKey;
      th.setAttribute("aria-sort", active ? (sortDir > 0 ? "ascending" : "descending") : "none");
    }
  }

  async function loadScreener() {
    let screener;
    try {
      screener = await api(CONFIG.urls.screener);
    } catch (error) {
      fetched("screener-fetched", error.message);
      return;
    }
    const seen = new Set();
    for (const data of screener.symbols) {
      seen.add(data.symbol);
      let row = rows.get(data.symbol);
      if (!row) {
        row = makeRow(data);
        rows.set(data.symbol, row);
      }
      row.data = data;
      renderRow(row);
    }
    for (const [symbol, row] of rows) {
      if (!seen.has(symbol)) {
        row.tr.remove();
        rows.delete(symbol);
      }
    }
    applyView();
    document.body.dataset.screenerLoaded = "true";
    fetched("screener-fetched");
    if (!selectedSymbol && screener.symbols.length) {
      const wanted = symbolFromHash();
      selectSymbol(wanted && rows.has(wanted) ? wanted : screener.symbols[0].symbol);
    }
  }

  /* open_interest_update frames: refresh the latest OI of the rows they name (no re-sort). */
  function applyUpdates(updates) {
    for (const update of updates) {
      const row = rows.get(update.symbol);
      if (row) {
        const d = row.data;
        d.openInterest = String(update.openInterest);
        d.openInterestTime = update.timestamp;
        const mark = num(update.markPrice) ?? num(d.markPrice);
        const oi = num(update.openInterest);
        d.openInterestUsd = num(update.openInterestUsd) ?? (mark !== null && oi !== null ? oi * mark : null);
        renderRow(row);
      }
      if (update.symbol === chart.symbol) chartAppend(update);
    }
  }

  for (const th of document.querySelectorAll("#screener thead th")) {
    th.tabIndex = 0;
    const sortBy = () => {
      const key = th.dataset.key;
      if (key === sortKey) sortDir = -sortDir;
      else {
        sortKey = key;
        sortDir = th.dataset.type === "text" ? 1 : -1;
      }
      applyView();
    };
    th.addEventListener("click", sortBy);
    th.addEventListener("keydown", (event) => { if (event.key === "Enter") sortBy(); });
  }

  $("filter").addEventListener("input", (event) => {
    filterText = event.target.value.trim().toUpperCase();
    applyView();
  });

  body.addEventListener("click", (event) => {
    const tr = event.target.closest("tr");
    if (tr) selectSymbol(tr.dataset.symbol);
  });

  // --- chart ---------------------------------------------------------------------------------

  const chart = { symbol: null, plot: null, xs: [], ys: [], alerts: [], levels: null, baseline: null, loading: 0 };
  const COLORS = { oi: "#2563eb", up: "#059669", down: "#dc2626", baseline: "rgba(245, 158, 11, 0.16)", median: "#b45309" };

  function symbolFromHash() {
    const match = /symbol=([A-Z0-9]+)/.exec(location.hash);
    return match ? match[1] : null;
  }

  function selectSymbol(symbol) {
    if (!symbol) return;
    if (selectedSymbol) rows.get(selectedSymbol)?.tr.classList.remove("selected");
    selectedSymbol = symbol;
    rows.get(symbol)?.tr.classList.add("selected");
    if (symbolFromHash() !== symbol) history.replaceState(null, "", "#symbol=" + symbol);
    if (chart.symbol !== symbol) {
      chart.symbol = symbol;
      chart.xs = []; chart.ys = []; chart.alerts = [];
      $("chart-symbol").textContent = symbol;
      loadChart();
    }
  }

  window.addEventListener("hashchange", () => {
    const symbol = symbolFromHash();
    if (symbol && symbol !== selectedSymbol) selectSymbol(symbol);
  });

  /* The baseline of the alert rule at the latest sample: median of the samples aged W_low..W_high. */
  function computeBaseline() {
    chart.baseline = null;
    chart.levels = null;
    const n = chart.xs.length;
    if (!n || !RULE) return;
    const latest = chart.xs[n - 1];
    const inWindow = [];
    for (let i = 0; i < n; i++) {
      const age = latest - chart.xs[i];
      if (age >= RULE.wLowSec && age <= RULE.wHighSec) inWindow.push(chart.ys[i]);
    }
    chart.baseline = { from: latest - RULE.wHighSec, to: latest - RULE.wLowSec, samples: inWindow.length };
    if (inWindow.length < RULE.minBaselineSamples) return;
    inWindow.sort((a, b) => a - b);
    const mid = inWindow.length >> 1;
    const median = inWindow.length % 2 ? inWindow[mid] : (inWindow[mid - 1] + inWindow[mid]) / 2;
    chart.levels = {
      median,
      up: median * (1 + RULE.spikeThresholdPct),
      down: median * (1 - RULE.dumpThresholdPct),
    };
  }

  function drawBaselineWindow(u) {
    if (!chart.baseline) return;
    const ctx = u.ctx;
    const left = Math.max(u.bbox.left, u.valToPos(chart.baseline.from, "x", true));
    const right = Math.min(u.bbox.left + u.bbox.width, u.valToPos(chart.baseline.to, "x", true));
    if (right <= left) return;
    ctx.save();
    ctx.fillStyle = COLORS.baseline;
    ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
    ctx.restore();
  }

  function hLine(u, value, color, dash, label) {
    const ctx = u.ctx;
    const y = Math.round(u.valToPos(value, "y", true)) + 0.5;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = devicePixelRatio;
    ctx.setLineDash(dash.map((d) => d * devicePixelRatio));
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.font = (11 * devicePixelRatio) + "px system-ui, sans-serif";
    ctx.textAlign = "left";
    ctx.fillText(label, u.bbox.left + 4 * devicePixelRatio, y - 3 * devicePixelRatio);
    ctx.restore();
  }

  function drawOverlays(u) {
    if (chart.levels) {
      hLine(u, chart.levels.up, COLORS.up, [6, 4], "spike ≥ " + fmtOi(chart.levels.up) + " (+" + +(RULE.spikeThresholdPct * 100).toFixed(4) + "%)");
      hLine(u, chart.levels.median, COLORS.median, [2, 3], "baseline median " + fmtOi(chart.levels.median));
      hLine(u, chart.levels.down, COLORS.down, [6, 4], "dump ≤ " + fmtOi(chart.levels.down) + " (−" + +(RULE.dumpThresholdPct * 100).toFixed(4) + "%)");
    }
    const ctx = u.ctx;
    const xMin = u.scales.x.min, xMax = u.scales.x.max;
    for (const alert of chart.alerts) {
      const t = Date.parse(alert.timestamp) / 1000;
      if (t < xMin || t > xMax) continue;
      const color = alert.direction === "UP" ? COLORS.up : COLORS.down;
      const x = Math.round(u.valToPos(t, "x", true)) + 0.5;
      ctx.save();
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = devicePixelRatio;
      ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.setLineDash([]);
      const size = 6 * devicePixelRatio;
      const yVal = Math.min(Math.max(alert.current, u.scales.y.min), u.scales.y.max);
      const y = u.valToPos(yVal, "y", true);
      ctx.beginPath();
      if (alert.direction === "UP") {
        ctx.moveTo(x, y - size); ctx.lineTo(x - size, y + size); ctx.lineTo(x + size, y + size);
      } else {
        ctx.moveTo(x, y + size); ctx.lineTo(x - size, y - size); ctx.lineTo(x + size, y - size);
      }
      ctx.closePath();
      ctx.fill();
      ctx.restore();
    }
  }

  function yRange(u, dataMin, dataMax) {
    let low = dataMin, high = dataMax;
    if (chart.levels) {
      low = Math.min(low, chart.levels.down);
      high = Math.max(high, chart.levels.up);
    }
    // Alert markers do not widen the range (an alert may come from another producer's numbers);
    // they are clamped to its edges instead.
    if (low === null || high === null || !Number.isFinite(low) || !Number.isFinite(high)) return [0, 1];
    const pad = (high - low) * 0.06 || Math.abs(high) * 0.01 || 1;
    return [low - pad, high + pad];
  }

  function xRange() {
    const now = Date.now() / 1000;
    return [now - CONFIG.ringWindowSec, now + CONFIG.ringWindowSec * 0.015];
  }

  function chartWidth() {
    return Math.max(300, $("chart").clientWidth);
  }

  function ensurePlot() {
    if (chart.plot) return chart.plot;
    const options = {
      width: chartWidth(),
      height: 300,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
      // A fixed window ending now: a feed that stopped shows as a gap at the right edge.
      scales: { x: { time: true, range: xRange }, y: { range: yRange } },
      series: [
        { value: (u, v) => (v === null ? "–" : isoUtc(v * 1000).slice(11) + " UTC") },
        { label: "open interest", stroke: COLORS.oi, width: 2, value: (u, v) => fmtOi(v), points: { show: false } },
      ],
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" },
          values: (u, splits) => splits.map((v) => isoUtc(v * 1000).slice(11, 16)) },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" }, size: 70,
          values: (u, splits) => splits.map((v) => compact(v, 2)) },
      ],
      hooks: { drawClear: [drawBaselineWindow], draw: [drawOverlays] },
    };
    chart.plot = new uPlot(options, [[], []], $("chart"));
    return chart.plot;
  }

  function chartRender() {
    const plot = ensurePlot();
    // Only the ring window (3 h) is shown, whatever the API returned.
    const cutoff = Date.now() / 1000 - CONFIG.ringWindowSec;
    let start = 0;
    while (start < chart.xs.length && chart.xs[start] < cutoff) start++;
    if (start) { chart.xs.splice(0, start); chart.ys.splice(0, start); }
    computeBaseline();
    plot.setData([chart.xs, chart.ys]);
    const el = $("chart");
    el.dataset.points = String(chart.xs.length);
    el.dataset.alerts = String(chart.alerts.length);
    el.dataset.symbol = chart.symbol || "";
    const info = [];
    info.push(chart.xs.length + " samples");
    if (chart.baseline) {
      info.push(chart.baseline.samples + " in baseline window" +
        (chart.levels ? "" : " (needs " + RULE.minBaselineSamples + ": no levels)"));
    }
    info.push(chart.alerts.length + " alerts");
    $("chart-info").textContent = info.join(" · ");
  }

  async function loadChart() {
    const symbol = chart.symbol;
    if (!symbol) return;
    const token = ++chart.loading;
    // The samples API serves the ring buffer (with the backfilled history) only when it holds at
    // least `limit` samples, so ask for what the ring holds; Postgres otherwise.
    const ringSamples = rows.get(symbol)?.data.ringSamples || 0;
    const limit = ringSamples > 10 ? Math.min(ringSamples - 2, CONFIG.maxSamplesLimit) : CONFIG.maxSamplesLimit;
    let samples, alerts;
    try {
      [samples, alerts] = await Promise.all([
        api(CONFIG.urls.samples + "?symbol=" + encodeURIComponent(symbol) + "&limit=" + limit),
        api(CONFIG.urls.alerts + "?symbol=" + encodeURIComponent(symbol) + "&limit=200"),
      ]);
    } catch (error) {
      if (token === chart.loading) fetched("chart-fetched", error.message);
      return;
    }
    if (token !== chart.loading || symbol !== chart.symbol) return; // a newer request won
    const points = samples.samples
      .map((s) => [Date.parse(s.ts) / 1000, num(s.openInterest)])
      .filter((p) => p[1] !== null)
      .sort((a, b) => a[0] - b[0]);
    chart.xs = points.map((p) => p[0]);
    chart.ys = points.map((p) => p[1]);
    chart.alerts = alerts.results;
    chart.servedFrom = samples.servedFrom;
    chartRender();
    fetched("chart-fetched");
    $("chart-fetched").dataset.servedFrom = samples.servedFrom;
  }

  function chartAppend(update) {
    const t = Date.parse(update.timestamp) / 1000;
    const oi = num(update.openInterest);
    if (oi === null || !chart.plot) return;
    const last = chart.xs.length ? chart.xs[chart.xs.length - 1] : -Infinity;
    if (t <= last) return;
    chart.xs.push(t);
    chart.ys.push(oi);
    chartRender();
  }

  window.addEventListener("resize", () => {
    if (chart.plot) chart.plot.setSize({ width: chartWidth(), height: 300 });
  });

  // --- live alerts ---------------------------------------------------------------------------

  /* One list of alerts on the page (open interest, liquidation bursts, volume): newest (largest
   * id) first, at most MAX_ALERTS; backlog and catch-up frames arrive oldest first. Returns
   * add(alert, live), true when the alert was not shown yet. */
  function alertLane(listId, emptyId, countId, makeItem) {
    const byId = new Map();
    const list = $(listId);
    return function add(alert, live) {
      if (byId.has(alert.id)) return false;
      const li = makeItem(alert, live);
      byId.set(alert.id, li);
      let before = list.firstElementChild;
      while (before && Number(before.dataset.alertId) > alert.id) before = before.nextElementSibling;
      list.insertBefore(li, before);
      while (list.children.length > MAX_ALERTS) {
        const oldest = list.lastElementChild;
        byId.delete(Number(oldest.dataset.alertId));
        oldest.remove();
      }
      $(emptyId).hidden = true;
      $(countId).textContent = "(" + list.children.length + " shown, newest first)";
      return true;
    };
  }

  let lastAlertId = 0;

  // What every alert row starts with: the item (its id, symbol and colour), its badge and the
  // symbol's link; and its regime and age spans.
  function alertRowStart(alert, up, live, badgeText) {
    const li = document.createElement("li");
    li.dataset.alertId = String(alert.id);
    li.dataset.symbol = alert.symbol;
    li.className = "alert " + (up ? "alert-up" : "alert-down") + (live ? " fresh" : "");
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = badgeText;
    const symbol = document.createElement("a");
    symbol.href = "#symbol=" + alert.symbol;
    symbol.className = "alert-symbol";
    symbol.textContent = alert.symbol;
    return [li, badge, symbol];
  }

  function regimeSpan(name) {
    const regime = document.createElement("span");
    const [regimeText, regimeMeaning, regimeClass] = REGIMES[name] || REGIMES.unknown;
    regime.className = "alert-regime small " + regimeClass;
    regime.dataset.regime = name || "unknown";
    regime.textContent = name && name !== "unknown" ? regimeText : "";
    regime.title = regimeMeaning;
    return regime;
  }

  function ageSpan(timestamp) {
    const age = document.createElement("span");
    age.className = "alert-age small";
    setAge(age, Date.parse(timestamp));
    return age;
  }

  function alertItem(alert, live) {
    const up = alert.direction === "UP";
    const [li, badge, symbol] = alertRowStart(alert, up, live, up ? "▲ SPIKE" : "▼ DUMP");
    const pct = document.createElement("span");
    pct.className = "alert-pct " + pctClass(alert.pctChange);
    pct.textContent = fmtPct(alert.pctChange);
    const regime = regimeSpan(alert.regime);
    const detail = document.createElement("span");
    detail.className = "muted small";
    const context = [fmtOi(alert.baseline) + " → " + fmtOi(alert.current)];
    if (alert.rule) context.push(alert.rule);
    else if (alert.windowSec) context.push("within " + (alert.windowSec % 3600 ? alert.windowSec / 60 + " min" : alert.windowSec / 3600 + " h"));
    if (alert.priceChangePct != null) context.push("price " + fmtPct(alert.priceChangePct));
    if (alert.fundingRate != null) context.push("funding " + (alert.fundingRate * 100).toFixed(4) + "%");
    // lower bounds: Binance sends at most one liquidation per symbol per second
    if (alert.liquidationsLongUsd != null) context.push("liq ≥ " + fmtUsd(alert.liquidationsLongUsd) + " long, ≥ " + fmtUsd(alert.liquidationsShortUsd) + " short");
    if (alert.alerts24h != null) context.push(alert.alerts24h + " in 24 h");
    context.push(alert.source + " · #" + alert.id);
    detail.textContent = context.join(" · ");
    const links = document.createElement("span");
    links.className = "alert-links small";
    if (alert.links) {
      for (const [label, href] of [["Binance", alert.links.binance], ["TradingView", alert.links.tradingview]]) {
        const a = document.createElement("a");
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener";
        a.textContent = label;
        links.append(a, " ");
      }
    }
    li.append(badge, symbol, pct, regime, ageSpan(alert.timestamp), detail, links);
    return li;
  }

  const showAlert = alertLane("alerts", "alerts-empty", "alert-count", alertItem);

  function addAlert(alert, live) {
    if (!showAlert(alert, live)) return;
    lastAlertId = Math.max(lastAlertId, alert.id);
    if (alert.symbol === chart.symbol && chart.plot && !chart.alerts.some((a) => a.id === alert.id)) {
      chart.alerts.push(alert);
      chartRender();
    }
  }

  // --- live volume alerts (the hourly script's, through the same feed) --------------------------

  let lastVolumeAlertId = 0;
  const VOLUME_BADGES = { SPIKE: "VOLUME SPIKE", HALF_UPDATE: "HALF-UPDATE", FULL_UPDATE: "UPDATE" };

  function volumeAlertItem(alert, live) {
    const up = alert.candleDirection !== "bearish";
    const [li, badge, symbol] = alertRowStart(
      alert, up, live, VOLUME_BADGES[alert.alertType] || alert.alertType);
    li.dataset.alertType = alert.alertType;
    const ratio = document.createElement("span");
    ratio.className = "alert-pct";
    ratio.textContent = "×" + Number(alert.volumeRatio).toFixed(2);
    const age = ageSpan(alert.detectionTime || alert.timestamp);
    const detail = document.createElement("span");
    detail.className = "muted small";
    const context = [fmtUsd(alert.currentVolume) + " vs " + fmtUsd(alert.previousVolume) + " (1 h)"];
    if (alert.priceChange != null) context.push("price " + fmtPct(alert.priceChange));
    if (alert.oiChange != null) context.push("OI " + fmtPct(alert.oiChange));
    if (alert.fundingRate != null) context.push("funding " + (alert.fundingRate * 100).toFixed(4) + "%");
    context.push("hour " + alert.hourTimestamp.slice(11, 16) + " UTC · #" + alert.id);
    detail.textContent = context.join(" · ");
    li.append(badge, symbol, ratio, age, detail);
    return li;
  }

  const showVolumeAlert = alertLane(
    "volume-alerts", "volume-alerts-empty", "volume-alert-count", volumeAlertItem);

  function addVolumeAlert(alert, live) {
    if (showVolumeAlert(alert, live)) lastVolumeAlertId = Math.max(lastVolumeAlertId, alert.id);
  }

  // --- liquidation bursts (liquidation_burst rules, from the streams process) -----------------

  function liquidationAlertItem(alert, live) {
    // longs liquidated: forced selling (red); shorts liquidated: forced buying (green)
    const shorts = alert.side === "short";
    const [li, badge, symbol] = alertRowStart(
      alert, shorts, live, (shorts ? "SHORTS" : "LONGS") + " LIQUIDATED");
    li.dataset.side = alert.side;
    const amount = document.createElement("span");
    amount.className = "alert-pct";
    amount.textContent = "≥ " + fmtUsd(alert.usd);
    const age = ageSpan(alert.timestamp);
    const detail = document.createElement("span");
    detail.className = "muted small";
    const context = [alert.count + " orders in " + fmtDuration(alert.windowSec), "threshold " + fmtUsd(alert.thresholdUsd)];
    if (alert.volumeShare != null) context.push((alert.volumeShare * 100).toPrecision(3) + "% of 24 h volume");
    context.push("other side ≥ " + fmtUsd(alert.otherSideUsd), alert.rule + " · #" + alert.id);
    detail.textContent = context.join(" · ");
    li.append(badge, symbol, amount, age, detail);
    return li;
  }

  const addLiquidationAlert = alertLane(
    "liquidation-alerts", "liquidation-alerts-empty", "liquidation-alert-count", liquidationAlertItem);

  async function loadLiquidationAlerts() {
    // the feed carries new ones; this fills the list at start and after a reconnect
    try {
      const page = await api(CONFIG.urls.liquidationAlerts + "?limit=" + MAX_ALERTS);
      page.results.slice().reverse().forEach((alert) => addLiquidationAlert(alert, false));
    } catch (error) {
      console.warn("liquidation alerts", error);
    }
  }

  // --- WebSocket feed ------------------------------------------------------------------------

  const feed = { ws: null, urls: [], backoff: 1, lastFrameAt: 0, state: "connecting", retryTimer: null };
  const feedPill = $("feed-status");

  function feedStatus(state, text) {
    feed.state = state;
    feedPill.className = "pill " + (state === "live" ? "pill-good" : "pill-bad");
    feedPill.dataset.state = state;
    feedPill.textContent = "";
    feedPill.append(text);
    if (state === "live") {
      const age = document.createElement("span");
      age.id = "feed-last-frame";
      feedPill.append(" · last frame ", age);
      setAge(age, feed.lastFrameAt || Date.now(), Math.max(30, 3 * intervalSec));
    } else if (feed.downSince) {
      const since = document.createElement("span");
      feedPill.append(" · down since ", since);
      setAge(since, feed.downSince);
    }
  }

  function feedConnect() {
    clearTimeout(feed.retryTimer);
    const params = new URLSearchParams();
    if (lastAlertId) params.set("after_id", String(lastAlertId));
    if (lastVolumeAlertId) params.set("volume_after_id", String(lastVolumeAlertId));
    const query = params.toString();
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + CONFIG.urls.feed + (query ? "?" + query : "");
    feed.urls.push(url);
    // The token rides in Sec-WebSocket-Protocol, never in the URL (which servers and proxies log).
    const ws = TOKEN ? new WebSocket(url, ["volspike.feed", "volspike.token." + TOKEN]) : new WebSocket(url);
    feed.ws = ws;
    ws.onopen = () => {
      loadLiquidationAlerts();
      feed.backoff = 1;
      feed.lastFrameAt = Date.now();
      feed.downSince = null;
      feedStatus("live", "feed: live");
    };
    ws.onmessage = (event) => {
      feed.lastFrameAt = Date.now();
      const lastFrame = $("feed-last-frame");
      if (lastFrame) setAge(lastFrame, feed.lastFrameAt);
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === "open_interest_alert") addAlert(frame.data, true);
      else if (frame.type === "open_interest_update") applyUpdates(frame.data);
      else if (frame.type === "volume_alert") addVolumeAlert(frame.data, true);
      else if (frame.type === "liquidation_alert") addLiquidationAlert(frame.data, true);
      else if (frame.type === "error") console.warn("feed error", frame);
    };
    ws.onclose = (event) => {
      if (feed.ws !== ws) return;
      feed.ws = null;
      feed.downSince = feed.downSince || Date.now();
      const delay = feed.backoff;
      feed.backoff = Math.min(feed.backoff * 2, 15);
      feedStatus("down", "feed: disconnected (code " + event.code + "), retrying in " + delay + " s");
      feed.retryTimer = setTimeout(feedConnect, delay * 1000);
    };
  }

  // A silent socket (no update for a minute while the poller runs) is treated as dropped.
  setInterval(() => {
    if (!feed.ws || feed.ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - feed.lastFrameAt > 60000) feed.ws.close(4000, "silent");
    else feed.ws.send(JSON.stringify({ action: "ping" }));
  }, 25000);

  // --- outcomes: what followed each rule's alerts ---------------------------------------------

  function regimeWords(regime) {
    if (regime === null) return "every regime";
    if (regime === "") return "none (older alerts)";
    if (regime === "unknown") return "unknown";
    return (REGIMES[regime] || [regime])[0];
  }

  function movesCell(cell, moves, horizon) {
    cell.className = "num moves";
    cell.title = horizon.measured + " measured, " + horizon.noData + " no data, " +
      horizon.pending + " not due yet";
    if (!moves.n) {
      cell.textContent = horizon.noData ? "no data" : "–";
      return;
    }
    const median = document.createElement("span");
    median.className = "median " + pctClass(moves.median);
    median.textContent = fmtPct(moves.median);
    const quartiles = document.createElement("span");
    quartiles.className = "muted";
    quartiles.textContent = " [" + fmtPct(moves.q1) + ", " + fmtPct(moves.q3) + "]";
    const shares = document.createElement("div");
    shares.className = "shares small muted";
    shares.textContent = Math.round(moves.up * 100) + "% ↑ · " + Math.round(moves.flat * 100) +
      "% → · " + Math.round(moves.down * 100) + "% ↓ (n=" + moves.n + ")";
    cell.append(median, quartiles, shares);
  }

  function outcomeRow(rule, stats) {
    const tr = document.createElement("tr");
    tr.dataset.rule = rule.rule;
    tr.dataset.regime = stats.regime === null ? "all" : stats.regime;
    if (stats.regime !== null) tr.className = "regime-row";
    const cells = [
      stats.regime === null ? rule.rule || "(no rule)" : "",
      regimeWords(stats.regime),
      String(stats.alerts),
      stats.alertsPerSymbolDay === null ? "–" : stats.alertsPerSymbolDay.toFixed(3),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i >= 2) td.className = "num";
      td.textContent = text;
      tr.append(td);
    });
    for (const key of ["priceChange", "oiChange"]) {
      for (const horizon of stats.horizons) {
        const td = document.createElement("td");
        td.dataset.horizon = horizon.horizon;
        td.dataset.measure = key;
        movesCell(td, horizon[key], horizon);
        tr.append(td);
      }
    }
    return tr;
  }

  async function loadOutcomes() {
    let report;
    try {
      report = await api(CONFIG.urls.outcomes);
    } catch (error) {
      fetched("outcomes-fetched", error.message);
      return;
    }
    const body = $("outcomes-body");
    const rowsOut = [];
    for (const rule of report.rules) {
      rowsOut.push(outcomeRow(rule, rule));
      for (const stats of rule.byRegime) rowsOut.push(outcomeRow(rule, stats));
    }
    if (!rowsOut.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 10;
      td.className = "muted";
      td.textContent = "No rule is enabled and no alert was raised in the period.";
      tr.append(td);
      rowsOut.push(tr);
    }
    body.replaceChildren(...rowsOut);
    fetched("outcomes-fetched");
  }

  // For tests and for poking at the page from the console.
  window.oiDebug = {
    feed,
    dropFeed() { if (feed.ws) feed.ws.close(4001, "dropped by oiDebug"); },
    chart,
    rows,
  };

  // --- start ---------------------------------------------------------------------------------

  tick();
  setInterval(tick, 1000);
  every(15, loadScreener);
  every(5, loadPoller);
  every(30, loadUniverse);
  every(15, loadMarket);
  every(60, loadOutcomes);
  setInterval(loadChart, 60000);
  feedStatus("connecting", "feed: connecting…");
  feedConnect();
})();
