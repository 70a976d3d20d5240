// Live dashboard of the load balancer: polls the admin JSON API and draws
// what it says. Plain JavaScript, no dependencies, nothing fetched from
// anywhere but this admin listener.
"use strict";

(() => {
  const POLL_MS = Number(document.body.dataset.pollMs) || 1000;
  const POINTS = 120; // sparkline history, one point per poll
  const MIN_SPAN = 20; // a short history is stretched over this many points
  const TOKEN_KEY = "load_balancer.admin_token";

  const series = new Map(); // backend id → {last: {t, req, err}, rps: [], eps: []}
  const total = { last: null, rps: [], errLast: null, eps: [] };
  const cards = new Map(); // backend id → card elements

  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  async function getJSON(path) {
    const res = await fetch(path, { cache: "no-store" });
    if (!res.ok) throw new Error(path + ": HTTP " + res.status);
    return res.json();
  }

  // --- formatting -------------------------------------------------------
  const nf = new Intl.NumberFormat("en-US");
  function fmtCount(n) { return nf.format(n); }
  function fmtRate(r) {
    if (r === null || r === undefined || !isFinite(r)) return "–";
    if (r >= 1000) return (r / 1000).toFixed(1) + "k";
    if (r >= 100) return r.toFixed(0);
    if (r >= 10) return r.toFixed(1);
    return r.toFixed(2);
  }
  function fmtSeconds(s, samples) {
    if (!samples) return "–";
    if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms";
    return s.toFixed(2) + " s";
  }
  function fmtPercent(p) {
    if (p === null || !isFinite(p)) return "–";
    if (p === 0) return "0%";
    if (p < 0.001) return "<0.1%";
    return (p * 100).toFixed(p < 0.1 ? 1 : 0) + "%";
  }
  function fmtTime(ts) {
    const d = new Date(ts);
    if (isNaN(d) || d.getFullYear() < 2000) return "–";
    return d.toLocaleTimeString("en-GB", { hour12: false });
  }
  function fmtDuration(sec) {
    sec = Math.floor(sec);
    const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }
  function push(arr, v) {
    arr.push(v);
    if (arr.length > POINTS) arr.shift();
  }

  // --- sparklines -------------------------------------------------------
  function sparkline(canvas, main, errs, color) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
      canvas.width = Math.round(w * ratio);
      canvas.height = Math.round(h * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const max = Math.max(1, ...main, ...(errs || [])) * 1.15;
    // A fixed window once it is full; until then the history is stretched
    // so that the first seconds are not a sliver at the right edge.
    const span = Math.min(POINTS, Math.max(MIN_SPAN, main.length));
    const step = w / (span - 1);
    const x = (i, n) => w - (n - 1 - i) * step;
    const y = (v) => h - 2 - (v / max) * (h - 6);

    ctx.strokeStyle = "rgba(139,152,165,.15)";
    ctx.lineWidth = 1;
    for (const f of [0.33, 0.66]) {
      ctx.beginPath();
      ctx.moveTo(0, Math.round(h * f) + 0.5);
      ctx.lineTo(w, Math.round(h * f) + 0.5);
      ctx.stroke();
    }
    if (main.length < 2) return;
    const n = main.length;
    const grad = ctx.createLinearGradient(0, 0, 0, h);
    grad.addColorStop(0, color + "66");
    grad.addColorStop(1, color + "05");
    ctx.beginPath();
    ctx.moveTo(x(0, n), h);
    main.forEach((v, i) => ctx.lineTo(x(i, n), y(v)));
    ctx.lineTo(x(n - 1, n), h);
    ctx.closePath();
    ctx.fillStyle = grad;
    ctx.fill();
    ctx.beginPath();
    main.forEach((v, i) => (i ? ctx.lineTo(x(i, n), y(v)) : ctx.moveTo(x(i, n), y(v))));
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.6;
    ctx.stroke();
    if (errs && errs.some((v) => v > 0)) {
      ctx.beginPath();
      errs.forEach((v, i) => (i ? ctx.lineTo(x(i, errs.length), y(v)) : ctx.moveTo(x(i, errs.length), y(v))));
      ctx.strokeStyle = "#f0524f";
      ctx.lineWidth = 1.4;
      ctx.stroke();
    }
    const lx = x(n - 1, n), ly = y(main[n - 1]);
    ctx.beginPath();
    ctx.arc(lx - 2, ly, 2.5, 0, Math.PI * 2);
    ctx.fillStyle = color;
    ctx.fill();
  }

  // --- backends ---------------------------------------------------------
  function stat(label) {
    const s = el("div", "stat");
    s.append(el("div", "k", label));
    const v = el("div", "v", "–");
    s.append(v);
    return [s, v];
  }

  function newCard(b) {
    const card = el("article", "card");
    card.dataset.backend = b.address;
    card.dataset.id = b.id;
    const head = el("div", "head");
    const pill = el("span", "pill");
    const addr = el("span", "addr", b.address);
    addr.title = b.address;
    const weight = el("span", "badge");
    head.append(pill, addr, weight);

    const stats = el("div", "stats");
    const [s1, rps] = stat("req/s");
    const [s2, err] = stat("errors");
    const [s3, p50] = stat("p50");
    const [s4, p99] = stat("p99");
    const [s5, inflight] = stat("in flight");
    stats.append(s1, s2, s3, s4, s5);

    const canvas = el("canvas", "spark");
    const foot = el("div", "foot");
    const why = el("span", "why");
    const right = el("span");
    const totals = el("span", "totals");
    const button = el("button");
    button.addEventListener("click", () => toggleDrain(card.dataset.id, button.dataset.action));
    right.append(totals, document.createTextNode("  "), button);
    foot.append(why, right);
    const foot2 = el("div", "foot");
    const conns = el("span", "conns");
    const reqTotal = el("span", "requests-total");
    foot2.append(conns, reqTotal);

    card.append(head, stats, canvas, foot, foot2);
    return { card, pill, weight, rps, err, p50, p99, inflight, canvas, why, totals, button, conns, reqTotal };
  }

  function renderBackends(data) {
    const root = $("backends");
    const t = Date.parse(data.time) / 1000;
    const present = new Set();
    if (!data.backends.length) {
      root.replaceChildren(el("div", "empty", "no backends in service"));
      cards.clear();
      return;
    }
    root.querySelector(".empty")?.remove();
    for (const b of data.backends) {
      present.add(b.id);
      let c = cards.get(b.id);
      if (!c) {
        c = newCard(b);
        cards.set(b.id, c);
      }
      root.append(c.card); // keeps the configuration's order

      let s = series.get(b.id);
      if (!s) {
        s = { last: null, rps: [], eps: [] };
        series.set(b.id, s);
      }
      let rate = null, errRate = null;
      if (s.last && t > s.last.t) {
        const dt = t - s.last.t;
        const dreq = Math.max(0, b.requests_total - s.last.req);
        const derr = Math.max(0, b.errors_total - s.last.err);
        rate = dreq / dt;
        errRate = dreq > 0 ? Math.min(1, derr / dreq) : 0;
        push(s.rps, rate);
        push(s.eps, derr / dt);
      }
      if (!s.last || t > s.last.t) s.last = { t, req: b.requests_total, err: b.errors_total };

      c.card.dataset.state = b.state;
      c.pill.className = "pill " + b.state;
      c.pill.textContent = b.state;
      c.weight.textContent = "weight " + b.weight;
      c.rps.textContent = fmtRate(rate);
      c.err.textContent = fmtPercent(errRate);
      c.err.classList.toggle("err", errRate > 0);
      c.p50.textContent = fmtSeconds(b.latency_seconds.p50, b.latency_seconds.samples);
      c.p99.textContent = fmtSeconds(b.latency_seconds.p99, b.latency_seconds.samples);
      c.inflight.textContent = fmtCount(b.in_flight);

      const since = fmtTime(b.since);
      let why = (b.healthy ? "up" : "down") + " since " + since;
      if (b.reason) why += " · " + b.reason;
      if (b.draining) why = "draining (" + b.drain_sources.join(", ") + ") · " + why;
      c.why.textContent = why;
      c.why.title = why;
      c.totals.textContent = fmtCount(b.failures_total) + " failed";
      const adminDrained = b.drain_sources.includes("admin");
      c.button.textContent = adminDrained ? "Enable" : "Drain";
      c.button.dataset.action = adminDrained ? "enable" : "drain";
      c.button.title = adminDrained ? "take new requests again" : "stop sending new requests to this backend";
      c.conns.textContent = b.connections
        ? "connections " + b.connections.open + " open · " + b.connections.idle + " idle"
        : "";
      c.reqTotal.textContent = fmtCount(b.requests_total) + " requests";
      c.reqTotal.dataset.value = String(b.requests_total);

      const color = b.state === "down" ? "#8b98a5" : b.state === "draining" ? "#f2a93b" : "#4aa8ff";
      sparkline(c.canvas, s.rps, s.eps, color);
    }
    const errs = data.backends.reduce((n, b) => n + b.errors_total, 0);
    if (total.errLast && t > total.errLast.t) {
      push(total.eps, Math.max(0, errs - total.errLast.n) / (t - total.errLast.t));
    }
    if (!total.errLast || t > total.errLast.t) total.errLast = { t, n: errs };
    for (const [id, c] of cards) {
      if (!present.has(id)) {
        c.card.remove();
        cards.delete(id);
        series.delete(id);
      }
    }
  }

  async function toggleDrain(id, action) {
    const url = "/api/v1/backends/" + encodeURIComponent(id) + "/" + action;
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers = {};
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers.Authorization = "Bearer " + token;
      const res = await fetch(url, { method: "POST", headers });
      if (res.status === 401 && attempt === 0) {
        const t = window.prompt("Admin token (from --admin-token-file):");
        if (!t) return;
        sessionStorage.setItem(TOKEN_KEY, t.trim());
        continue;
      }
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        window.alert(action + " failed: " + (body.error || "HTTP " + res.status));
      }
      return;
    }
  }

  // --- summary and events -------------------------------------------------
  function renderStatus(st) {
    $("version").textContent = st.version;
    $("listen").textContent = "proxy " + st.listen;
    $("strategy").textContent = st.strategy + " · up " + fmtDuration(st.uptime_seconds);
    const ready = $("ready");
    ready.textContent = st.ready ? "ready" : "not ready";
    ready.className = "value " + (st.ready ? "ok" : "bad");
    $("inflight").textContent = fmtCount(st.in_flight);
    $("p50").textContent = fmtSeconds(st.latency_seconds.p50, st.latency_seconds.samples);
    $("p99").textContent = fmtSeconds(st.latency_seconds.p99, st.latency_seconds.samples);
    const avail = $("available");
    avail.textContent = st.backends_available + " / " + st.backends;
    avail.className = "value " + (st.backends_available === st.backends ? "ok" : st.backends_available === 0 ? "bad" : "");
    $("total").textContent = fmtCount(st.requests_total);

    const t = Date.now() / 1000;
    let rate = null;
    if (total.last && t > total.last.t) {
      rate = Math.max(0, st.requests_total - total.last.req) / (t - total.last.t);
      push(total.rps, rate);
    }
    total.last = { t, req: st.requests_total };
    $("rps").textContent = fmtRate(rate);
    sparkline($("traffic"), total.rps, total.eps, "#4aa8ff");
  }

  function row(cells) {
    const tr = el("tr");
    for (const [text, cls, title] of cells) {
      const td = el("td", cls || "");
      if (text instanceof Node) td.append(text);
      else td.textContent = text;
      if (title) td.title = title;
      tr.append(td);
    }
    return tr;
  }

  function emptyRow(text) {
    const tr = el("tr");
    const td = el("td", "muted", text);
    td.colSpan = 4;
    tr.append(td);
    return tr;
  }

  function renderEvents(ev) {
    const health = $("health-events");
    const hrows = ev.health.slice(0, 12).map((h) =>
      row([
        [fmtTime(h.time), "mono"],
        [h.backend, "mono", h.backend],
        [el("span", "tag " + h.state, h.state)],
        [h.reason + (h.source ? " (" + h.source + ")" : ""), "", h.reason],
      ]));
    health.replaceChildren(...(hrows.length ? hrows : [emptyRow("no transitions yet")]));

    const reloads = $("reloads");
    const rrows = ev.reloads.slice(0, 10).map((r) => {
      const detail = r.ok
        ? r.backends + " backends · " + r.strategy + (r.source ? " · " + r.source : "")
        : r.error;
      return row([
        [fmtTime(r.time), "mono"],
        [r.trigger],
        [el("span", "tag " + (r.ok ? "ok" : "fail"), r.ok ? "ok" : "failed")],
        [detail, r.ok ? "" : "mono", detail],
      ]);
    });
    reloads.replaceChildren(...(rrows.length ? rrows : [emptyRow("no reloads yet")]));
  }

  function setConn(ok, text) {
    const c = $("conn");
    c.className = "conn " + (ok ? "ok" : "bad");
    $("conn-text").textContent = text;
  }

  async function tick() {
    try {
      const [st, bs, ev] = await Promise.all([
        getJSON("/api/v1/status"), getJSON("/api/v1/backends"), getJSON("/api/v1/events"),
      ]);
      renderBackends(bs);
      renderStatus(st);
      renderEvents(ev);
      $("updated").textContent = fmtTime(Date.now());
      setConn(true, "live");
    } catch (e) {
      setConn(false, "no answer from the admin listener (" + e.message + ")");
    }
    setTimeout(tick, POLL_MS);
  }

  tick();
})();
