/* "Try a rule on the last N days": POST /api/alert-rules/backtest with a saved rule (unchanged)
 * or a draft (the form's fields on top of the picked rule's), then the job's progress and its
 * result. The last job's id is kept in localStorage, so a reload shows its result again. */
(function () {
  "use strict";

  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const BACKTEST_URL = "/api/alert-rules/backtest";
  const JOB_KEY = "volspike.backtest.job";
  const $ = (id) => document.getElementById(id);
  const headers = () => Object.assign(
    { "Content-Type": "application/json" }, TOKEN ? { Authorization: "Token " + TOKEN } : {});
  const rules = new Map();
  let polling = 0;

  function status(text) { $("bt-status").textContent = text; }

  async function loadRules() {
    const response = await fetch("/api/alert-rules", { headers: headers() });
    if (!response.ok) return;
    for (const rule of await response.json()) {
      rules.set(String(rule.id), rule);
      const option = document.createElement("option");
      option.value = rule.id;
      option.textContent = rule.name + (rule.enabled ? "" : " (disabled)");
      $("bt-rule").appendChild(option);
    }
  }

  function formFields() {
    const regimes = $("bt-regimes").value.split(",").map((r) => r.trim()).filter(Boolean);
    return {
      threshold_pct: (parseFloat($("bt-threshold").value) / 100).toFixed(6),
      window_sec: parseInt($("bt-window").value, 10),
      direction: $("bt-direction").value,
      regimes: regimes,
    };
  }

  function pickRule() {
    const rule = rules.get($("bt-rule").value);
    if (!rule) return;
    $("bt-threshold").value = +(parseFloat(rule.threshold_pct) * 100).toFixed(4);
    $("bt-window").value = rule.window_sec;
    $("bt-direction").value = rule.direction;
    $("bt-regimes").value = (rule.regimes || []).join(",");
  }

  function requestBody() {
    const body = { days: parseFloat($("bt-days").value) };
    const symbols = $("bt-symbols").value.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
    if (symbols.length) body.symbols = symbols;
    const fields = formFields();
    const rule = rules.get($("bt-rule").value);
    if (rule) {
      const same = (parseFloat(rule.threshold_pct) === parseFloat(fields.threshold_pct)
        && rule.window_sec === fields.window_sec && rule.direction === fields.direction
        && (rule.regimes || []).join(",") === fields.regimes.join(","));
      if (same) return Object.assign(body, { rule_id: rule.id });
      const draft = {};
      for (const key of ["kind", "baseline_from_sec", "dump_threshold_pct", "min_delta_contracts",
        "min_delta_usd", "cooldown_sec", "rearm_ratio", "step_pct", "min_samples", "scope", "symbols"]) {
        if (rule[key] !== null && rule[key] !== undefined) draft[key] = rule[key];
      }
      return Object.assign(body, { rule: Object.assign(draft, fields, { name: rule.name + " (draft)" }) });
    }
    return Object.assign(body, { rule: fields });
  }

  async function run(event) {
    event.preventDefault();
    $("bt-run").disabled = true;
    status("running…");
    try {
      const response = await fetch(BACKTEST_URL, { method: "POST", headers: headers(), body: JSON.stringify(requestBody()) });
      const body = await response.json();
      if (!response.ok) {
        const error = body.error || {};
        status("refused: " + (error.field ? error.field + ": " : "") + (error.reason || error.message || response.status));
        return;
      }
      localStorage.setItem(JOB_KEY, body.job);
      if (body.state === "done") show(body.result);
      else await follow(body.job);
    } catch (error) {
      status("failed: " + error.message);
    } finally {
      $("bt-run").disabled = false;
    }
  }

  async function follow(job) {
    const mine = ++polling;
    for (;;) {
      const response = await fetch(BACKTEST_URL + "/" + encodeURIComponent(job), { headers: headers() });
      if (response.status === 404) { localStorage.removeItem(JOB_KEY); status("no such job (expired)"); return; }
      const body = await response.json();
      if (mine !== polling) return;
      if (body.state === "done") { show(body.result); return; }
      if (body.state === "failed") { status("failed: " + (body.error || "")); return; }
      status(body.state + ": " + body.done + "/" + body.total + " symbols");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); }

  function show(result) {
    const perDay = result.alertsPerSymbolDay === null ? "–" : result.alertsPerSymbolDay.toFixed(3);
    const held = Object.entries(result.actions).filter(([k]) => k !== "fire").map(([k, v]) => k + " " + v).join(", ");
    status("done in " + result.elapsedSec + " s: " + result.samples + " samples");
    $("bt-summary").textContent = result.rule.name + ": " + result.alertsTotal + " alerts, " + perDay
      + " per symbol-day over " + result.symbols + " symbols" + (held ? "; held back / re-armed: " + held : "");
    // what followed: the forward price move per horizon (a measurement, not a verdict)
    const pct = (v) => (v >= 0 ? "+" : "") + (v * 100).toFixed(2) + "%";
    const share = (v) => Math.round(v * 100) + "%";
    $("bt-outcomes").textContent = "price after: " + Object.entries(result.outcomes || {}).map(([label, o]) =>
      o.measured ? label + " " + pct(o.priceChangeMedian) + " [" + pct(o.priceChangeQ1) + ", " + pct(o.priceChangeQ3)
        + "] ↑" + share(o.shareUp) + " →" + share(o.shareFlat) + " ↓" + share(o.shareDown) + " (n=" + o.measured + ")"
        : label + " –").join(" · ");
    const perSymbol = $("bt-per-symbol");
    perSymbol.replaceChildren();
    for (const row of result.perSymbol.filter((r) => r.alerts > 0)) {
      const tr = document.createElement("tr");
      tr.dataset.symbol = row.symbol;
      cell(tr, row.symbol); cell(tr, row.alerts); cell(tr, row.days); cell(tr, row.alertsPerDay);
      perSymbol.appendChild(tr);
    }
    const list = $("bt-alerts");
    list.replaceChildren();
    for (const alert of result.alerts) {
      const li = document.createElement("li");
      li.dataset.symbol = alert.symbol;
      const price = alert.priceChangePct === null ? "" : " price " + (alert.priceChangePct * 100).toFixed(2) + "%";
      li.textContent = alert.ts.replace("T", " ").slice(0, 19) + " " + alert.symbol + " " + alert.direction
        + " " + (alert.pctChange * 100).toFixed(2) + "%" + price + " " + alert.regime;
      list.appendChild(li);
    }
    $("bt-result").hidden = false;
  }

  $("bt-form").addEventListener("submit", run);
  $("bt-rule").addEventListener("change", pickRule);
  loadRules();
  const last = localStorage.getItem(JOB_KEY);
  if (last) follow(last).catch((error) => status("failed: " + error.message));
})();
