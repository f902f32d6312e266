// The status page: polls GET /api/v2/status with the operator token and redraws in place.
// No framework, no external asset; every text from the API is set with textContent.
"use strict";
(function () {
  const TOKEN_KEY = "smpp-bridge.operator-token";
  const STATUS_URL = "/api/v2/status";
  const INTERVAL_MS = 2000; // poll period while the API answers
  const MAX_BACKOFF_MS = 30000; // longest wait between tries while it does not
  const REQUEST_TIMEOUT_MS = 5000; // a poll that takes longer counts as no answer
  const STALE_AFTER_MS = 6000; // the board is marked stale when the last answer is this old
  const OK_STATES = new Set(["bound"]);
  const BAD_STATES = new Set(["down", "bind_refused"]);
  const SIGN = { ok: "▲", warn: "◆", bad: "▼", unknown: "?" };

  const $ = (id) => document.getElementById(id);
  let timer = null;
  let failures = 0;
  let lastOk = 0; // Date.now() of the last document shown
  let lastError = "";

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function badge(node, level, label) {
    node.className = node.className.replace(/\b(ok|warn|bad|unknown)\b/g, "").trim();
    node.classList.add(level);
    node.textContent = SIGN[level] + " " + label;
  }

  function fmtNum(n, digits) {
    if (n === null || n === undefined) return "–";
    return Number(n).toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
  }

  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0) return "–";
    if (seconds < 90) return Math.round(seconds) + "s";
    if (seconds < 5400) return Math.round(seconds / 60) + "m";
    if (seconds < 172800) return Math.round(seconds / 3600) + "h";
    return Math.round(seconds / 86400) + "d";
  }

  function bindLevel(b) {
    if (b.stale || BAD_STATES.has(b.state)) return "bad";
    if (OK_STATES.has(b.state)) return "ok";
    return "warn"; // connecting, starting, unbinding, no_lease: on its way, not serving
  }

  // ------------------------------------------------------------------ login and polling

  function showLogin(message) {
    clearTimeout(timer);
    $("board").hidden = true;
    $("logout").hidden = true;
    $("stale").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    badge($("overall"), "unknown", "LOGGED OUT");
    $("token").focus();
  }

  function showBoard() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
  }

  async function poll() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return showLogin("");
    const abort = new AbortController();
    const giveUp = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let answer;
    try {
      answer = await fetch(STATUS_URL, {
        headers: { Authorization: "Bearer " + token, Accept: "application/json" },
        cache: "no-store",
        signal: abort.signal,
      });
    } catch (err) {
      return failed(abort.signal.aborted ? "no answer within 5 s" : "API not reachable");
    } finally {
      clearTimeout(giveUp);
    }
    let body = null;
    try { body = await answer.json(); } catch (err) { body = null; }
    if (answer.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin((body && body.error) || "The operator token was refused.");
    }
    if (answer.status === 503 && body && /operator token/i.test(body.error || "")) {
      sessionStorage.removeItem(TOKEN_KEY);
      return showLogin(body.error);
    }
    if (!answer.ok || !body) {
      return failed("HTTP " + answer.status + ((body && body.error) ? ": " + body.error : ""));
    }
    failures = 0;
    lastOk = Date.now();
    lastError = "";
    showBoard();
    render(body);
    tick();
    timer = setTimeout(poll, INTERVAL_MS);
  }

  function failed(why) {
    failures += 1;
    lastError = why;
    tick();
    const wait = Math.min(MAX_BACKOFF_MS, INTERVAL_MS * 2 ** failures);
    timer = setTimeout(poll, wait);
  }

  // Once a second: the "updated" line, and the stale badge when answers stop coming.
  function tick() {
    if ($("board").hidden) return;
    const age = lastOk ? (Date.now() - lastOk) / 1000 : null;
    const stale = !lastOk || Date.now() - lastOk > STALE_AFTER_MS || (lastError && failures > 1);
    $("stale").hidden = !stale;
    document.body.classList.toggle("is-stale", Boolean(stale));
    if (stale) {
      badge($("overall"), "unknown", "UNKNOWN"); // the last answer's ALL OK may no longer hold
      $("stale").textContent = "⚠ STALE: " + (lastError || "no answer") +
        (age === null ? "" : " (last update " + fmtAge(age) + " ago)");
    }
    $("updated").textContent = lastOk
      ? "updated " + new Date(lastOk).toLocaleTimeString("en-GB") + " (" + fmtAge(age) + " ago)"
      : "";
  }

  // ------------------------------------------------------------------ rendering

  function render(doc) {
    badge($("overall"), doc.ok ? "ok" : "bad", doc.ok ? "ALL OK" : "PROBLEMS");
    const problems = $("problems");
    problems.replaceChildren(...(doc.problems || []).map((p) => el("li", null, p)));
    renderConnections(doc.connections || []);
    renderBinds(doc.binds, doc.at);
    renderCharts(doc.history);
    renderQueue(doc);
    renderOutcomes(doc.messages);
    renderWebhooks(doc.webhooks);
  }

  function row(cells) {
    const tr = el("tr");
    for (const c of cells) tr.append(c instanceof Node ? c : el("td", null, c));
    return tr;
  }

  function renderConnections(connections) {
    const rows = connections.map((c) => {
      const state = el("span", "state conn-state");
      if (c.bound === null) badge(state, "unknown", "UNKNOWN");
      else if (c.ok) badge(state, "ok", "UP");
      else badge(state, "bad", "DOWN");
      const cell = el("td");
      cell.append(state);
      const bound = c.bound === null ? "–" : c.bound + " of " + (c.reported || 0) + " reported";
      const tr = row([
        c.name + (c.configured ? "" : " (not configured here)"),
        cell, bound, c.smsc || "–", c.system_id || "–", c.bind_mode || "–",
      ]);
      tr.dataset.connection = c.name;
      return tr;
    });
    $("connections").tBodies[0].replaceChildren(...rows);
  }

  function renderBinds(binds, at) {
    const body = $("binds").tBodies[0];
    if (binds === null || binds === undefined) {
      body.replaceChildren(row([el("td", "bad", "unknown while Redis does not answer")]));
      return;
    }
    const rows = binds.map((b) => {
      const level = bindLevel(b);
      const state = el("span", "state bind-state");
      badge(state, level, (b.stale ? "STALE " : "") + String(b.state).toUpperCase());
      const cell = el("td");
      cell.append(state);
      const rates = b.rates || {};
      const win = b.window || {};
      const rtt = b.enquire_link && b.enquire_link.rtt_ms;
      // A bound bind shows only an error of this bind (one from before it bound is history);
      // a bind that is not bound counts FOR from when it went down, not from its latest attempt.
      const bound = b.state === "bound" && !b.stale;
      const ownError = !bound || (b.last_error_at && b.since && b.last_error_at >= b.since);
      const error = b.last_error && ownError
        ? b.last_error + (b.last_error_at ? " (" + fmtAge(at - b.last_error_at) + " ago)" : "")
        : "";
      const since = !bound && b.down_since ? b.down_since : b.since;
      const tr = row([
        b.bind_id, cell, since ? fmtAge(at - since) : "–",
        (win.in_use ?? 0) + "/" + (win.size ?? "–"), fmtNum(b.queued),
        fmtNum(rates.submits, 1), fmtNum(rates.receipts, 1),
        rtt === null || rtt === undefined ? "–" : fmtNum(rtt, 1) + " ms",
        (b.hostname || "?") + ":" + (b.pid || "?"), el("td", "error-text", error),
      ]);
      tr.dataset.bind = b.bind_id;
      tr.dataset.connection = b.connection;
      tr.dataset.state = b.stale ? "down" : b.state;
      return tr;
    });
    if (!rows.length) rows.push(row([el("td", "bad", "no bind reports: is a worker running?")]));
    body.replaceChildren(...rows);
  }

  // A hand-drawn sparkline: a polyline per run of known values (gaps where none), area under.
  function sparkline(svg, values) {
    const W = 300, H = 60, PAD = 3;
    const known = values.filter((v) => v !== null && v !== undefined);
    const max = Math.max(1, ...known);
    const step = values.length > 1 ? W / (values.length - 1) : W;
    const y = (v) => (H - PAD - (v / max) * (H - 2 * PAD)).toFixed(1);
    const ns = "http://www.w3.org/2000/svg";
    const parts = [];
    let run = [];
    values.forEach((v, i) => {
      if (v === null || v === undefined) { if (run.length) parts.push(run); run = []; return; }
      run.push([(i * step).toFixed(1), y(v)]);
    });
    if (run.length) parts.push(run);
    const nodes = [];
    for (const pts of parts) {
      const line = pts.map((p) => p.join(",")).join(" ");
      const area = document.createElementNS(ns, "polygon");
      area.setAttribute("class", "area");
      area.setAttribute("points", pts[0][0] + "," + H + " " + line + " " + pts[pts.length - 1][0] + "," + H);
      const poly = document.createElementNS(ns, "polyline");
      poly.setAttribute("class", "line");
      poly.setAttribute("points", pts.length === 1 ? line + " " + (Number(pts[0][0]) + 2) + "," + pts[0][1] : line);
      nodes.push(area, poly);
    }
    svg.replaceChildren(...nodes);
    return max;
  }

  function renderCharts(history) {
    if (!history) return;
    const secs = history.bucket_seconds || 10;
    const settled = history.submitted.map((_, i) =>
      Object.values(history.settled).reduce((sum, series) => sum + (series[i] || 0), 0));
    const charts = [
      ["submitted", history.submitted.map((n) => n / secs), "/s", 1],
      ["settled", settled.map((n) => n / secs), "/s", 1],
      ["queue", history.queue_length, "", 0],
    ];
    for (const [name, values, unit, digits] of charts) {
      const max = sparkline($("chart-" + name), values);
      const last = [...values].reverse().find((v) => v !== null && v !== undefined);
      $("now-" + name).textContent = last === undefined ? "–" : fmtNum(last, digits) + unit;
      $("max-" + name).textContent = "max " + fmtNum(max, digits) + unit;
    }
  }

  function pairs(node, items) {
    const out = [];
    for (const [label, value, bad] of items) {
      out.push(el("dt", null, label), el("dd", bad ? "bad" : null, value));
    }
    node.replaceChildren(...out);
  }

  function renderQueue(doc) {
    const q = doc.queue;
    if (!q) return pairs($("queue"), [["outbound stream", "unknown", true]]);
    $("now-queue").textContent = fmtNum(q.length);
    pairs($("queue"), [
      ["entries", fmtNum(q.length)],
      ["being submitted", fmtNum(q.pending)],
      ["not yet read", fmtNum(q.lag)],
      ["oldest", fmtAge(q.oldest_age), q.oldest_age > 60],
      ["scheduled", fmtNum(doc.scheduled)],
      ["unrouted MO", fmtNum(doc.inbound && doc.inbound.unrouted)],
      ["possible duplicates", fmtNum(doc.possible_duplicates), doc.possible_duplicates > 0],
    ]);
  }

  function renderOutcomes(messages) {
    const node = $("outcomes");
    if (!messages) return pairs(node, [["messages", "unknown", true]]);
    const minute = messages.last_minute || {}, hour = messages.last_hour || {};
    const states = ["submitted", "delivered", "undelivered", "expired", "rejected", "failed"];
    for (const s of Object.keys(hour)) if (!states.includes(s)) states.push(s);
    const out = [el("dt", "muted", "state"), el("dd", "muted", "1 min · 1 h")];
    for (const s of states) {
      const bad = s !== "submitted" && s !== "delivered" && (minute[s] || 0) > 0;
      out.push(el("dt", null, s),
        el("dd", bad ? "bad" : null, fmtNum(minute[s] || 0) + " · " + fmtNum(hour[s] || 0)));
    }
    node.replaceChildren(...out);
  }

  function renderWebhooks(w) {
    if (!w) return pairs($("webhooks"), [["webhooks", "unknown", true]]);
    pairs($("webhooks"), [
      ["queued", fmtNum(w.queued), w.queued > 1000],
      ["being sent", fmtNum(w.sending)],
      ["waiting to retry", fmtNum(w.retrying), w.retrying > 0],
      ["dead-lettered", fmtNum(w.dead), w.dead > 0],
    ]);
  }

  // ------------------------------------------------------------------ start

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return showLogin("Enter the operator token.");
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    $("login-error").textContent = "";
    failures = 0;
    clearTimeout(timer);
    poll();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    lastOk = 0;
    showLogin("");
  });
  setInterval(tick, 1000);
  poll();
})();
