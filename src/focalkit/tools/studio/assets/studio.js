// focalkit studio: the page. Plain JavaScript, no library, no network beyond this server.
"use strict";

const $ = id => document.getElementById(id);
const S = { options: null, datasets: [], preview: null, runs: [], current: null, es: null,
            progress: null, pg: { gamma: 2, alpha: 0.25 }, picked: [], sides: [] };
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf"];
const ACTIVE = ["queued", "running"];

// ------------------------------------------------------------------ API
async function api(path, opts = {}) {
  const init = Object.assign({ headers: {} }, opts);
  if (opts.json !== undefined) {
    init.method = init.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.json);
  }
  const r = await fetch(path, init);
  let body = null;
  const text = await r.text();
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (!r.ok) throw new Error(body && body.detail ? body.detail : `${r.status} ${r.statusText}`);
  return body;
}
function say(text, kind) {
  const m = $("message");
  m.textContent = text; m.className = kind || ""; m.hidden = !text;
}
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e[k] = v;
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
function fmtNum(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return "n/a";
  if (typeof v !== "number") return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(digits - 1).replace(/e([+-])(\d)$/, "e$10$2");
  return String(Number(v.toPrecision(digits)));
}
function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

// ------------------------------------------------------------------ data
async function loadDatasets(select) {
  S.datasets = await api("/api/datasets");
  const sel = $("dataset"), keep = select || sel.value || "dense";
  sel.innerHTML = "";
  for (const d of S.datasets) {
    const label = d.kind === "builtin" ? `${d.name} (built in)` : `${d.name} (${d.rows} rows, uploaded)`;
    sel.append(el("option", { value: d.id, text: label }));
  }
  sel.value = S.datasets.some(d => d.id === keep) ? keep : "dense";
  await selectDataset();
}
function currentDataset() { return S.datasets.find(d => d.id === $("dataset").value); }
async function selectDataset(target) {
  const d = currentDataset();
  if (!d) return;
  $("delete-dataset").hidden = d.kind === "builtin";
  const tsel = $("target");
  tsel.innerHTML = "";
  if (d.kind === "upload" && d.format === "csv") {
    for (const c of d.columns) tsel.append(el("option", { value: c, text: c }));
    tsel.value = target || d.target;
    tsel.disabled = false;
  } else {
    tsel.append(el("option", { value: "", text: d.kind === "builtin" ? "(built in)" : "y" }));
    tsel.disabled = true;
  }
  $("preview").textContent = "loading…";
  document.body.dataset.preview = "loading";
  const q = d.kind === "upload" && d.format === "csv" ? `?target=${encodeURIComponent(tsel.value)}` : "";
  try {
    S.preview = await api(`/api/datasets/${d.id}${q}`);
    renderPreview(S.preview);
    document.body.dataset.preview = "ok";
  } catch (e) {
    S.preview = null;
    $("preview").innerHTML = "";
    $("preview").append(el("span", { class: "error", text: e.message }));
    document.body.dataset.preview = "error";
  }
}
function renderPreview(p) {
  const box = $("preview");
  box.innerHTML = "";
  const counts = Object.entries(p.class_counts);
  const total = counts.reduce((a, [, n]) => a + n, 0), max = Math.max(...counts.map(([, n]) => n));
  box.append(el("div", { text: p.description }));
  box.append(el("div", {}, el("b", { text: "imbalance " }),
    el("span", { id: "imbalance", text: `${fmtNum(p.imbalance_ratio)} : 1` }),
    el("span", { text: ` (largest class over smallest) · task ${p.task} · rare: ${p.rare_classes.join(", ")}` })));
  const tb = el("tbody");
  for (const [name, n] of counts) {
    tb.append(el("tr", { "data-class": name }, el("td", { text: name }), el("td", { text: String(n) }),
      el("td", { text: `${(100 * n / total).toFixed(2)} %` }),
      el("td", { class: "bar" }, el("span", { style: `width:${Math.max(1, 120 * n / max).toFixed(1)}px` }))));
  }
  box.append(el("table", { id: "class-counts", class: "counts" },
    el("thead", {}, el("tr", {}, ...["class", p.task === "dense" ? "anchors" : "rows", "share", ""].map(t => el("th", { text: t })))), tb));
  const sig = p.model || {};
  $("model").textContent = `${sig.arch || "?"} (${Object.entries(sig).filter(([k]) => k !== "arch").map(([k, v]) => `${k} ${v}`).join(", ")})`;
  const ep = S.options.default_epochs[p.task];
  $("epochs").placeholder = `default ${ep}`;
  $("tune-epochs").placeholder = `default ${ep}`;
}
async function upload(file) {
  if (!file) return;
  const max = S.options.max_upload;
  if (file.size > max) {
    say(`the upload is larger than the limit of ${max / 1048576} MB (focalkit studio --max-upload-mb raises it)`);
    return;
  }
  $("upload-status").textContent = `uploading ${file.name}…`;
  const fd = new FormData();
  fd.append("file", file, file.name);
  try {
    const d = await api("/api/datasets", { method: "POST", body: fd });
    $("upload-status").textContent = `${d.name}: ${d.rows} rows, ${d.columns.length} columns`;
    say(d.error ? `${d.name}: the default target does not work (${d.error}); choose the target column` : "");
    await loadDatasets(d.id);
  } catch (e) {
    $("upload-status").textContent = "";
    say(e.message);
  }
}

// ------------------------------------------------------------------ the playground's sliders
function hookPlayground() {
  const frame = $("playground");
  const doc = frame.contentDocument;
  if (!doc || !doc.getElementById("gamma")) return;
  const read = () => {
    S.pg.gamma = Number(doc.getElementById("gamma").value);
    S.pg.alpha = doc.getElementById("alpha-off").checked ? null : Number(doc.getElementById("alpha").value);
    $("add-gamma").textContent = `+ γ=${fmtNum(S.pg.gamma)} from the curves`;
    const opt = $("alpha-mode").querySelector("option[value=slider]");
    opt.textContent = `the curves' α (${S.pg.alpha === null ? "off" : fmtNum(S.pg.alpha)})`;
  };
  for (const id of ["gamma", "alpha", "alpha-off"]) {
    doc.getElementById(id).addEventListener("input", read);
    doc.getElementById(id).addEventListener("change", read);
  }
  read();
}
function setPlaygroundGamma(g) {
  const doc = $("playground").contentDocument, s = doc && doc.getElementById("gamma");
  if (!s) return;
  if (g > Number(s.max)) s.max = String(Math.ceil(g));
  s.value = String(g);
  s.dispatchEvent(new Event("input"));
}

// ------------------------------------------------------------------ starting runs
function parseList(text, what) {
  const parts = text.split(",").map(t => t.trim()).filter(t => t !== "");
  const vals = parts.map(Number);
  if (!parts.length || vals.some(v => !Number.isFinite(v))) throw new Error(`${what} must be comma-separated numbers, got '${text}'`);
  return vals;
}
function numberOrText(text) {
  const t = text.trim();
  if (t === "" || Number.isNaN(Number(t))) return t;
  return Number(t);
}
function compareBody() {
  const d = currentDataset();
  const body = { dataset: d.id, losses: [...document.querySelectorAll("#losses input:checked")].map(c => c.value),
                 seeds: Number($("seeds").value), first_seed: Number($("first-seed").value),
                 data_seed: Number($("data-seed").value), test_fraction: Number($("test-fraction").value),
                 alpha_method: $("alpha-method").value, backend: $("backend").value,
                 balanced_alpha: numberOrText($("balanced-alpha").value), prior: numberOrText($("prior").value) };
  if (!$("target").disabled) body.target = $("target").value;
  if (body.losses.includes("focal")) body.gammas = parseList($("gammas").value, "gammas");
  const mode = $("alpha-mode").value;
  body.alpha = mode === "auto" ? "auto" : mode === "off" ? "off" : mode === "slider"
    ? (S.pg.alpha === null ? "off" : S.pg.alpha) : $("alpha-value").value.trim();
  body.model = $("model-select").value;
  if (body.model === "net" && $("epochs").value) body.epochs = Number($("epochs").value);
  if (body.model !== "net" && $("rounds").value) body.rounds = Number($("rounds").value);
  return body;
}
function tuneBody() {
  const d = currentDataset();
  const body = { kind: "tune", dataset: d.id, metric: $("tune-metric").value, n_trials: Number($("tune-trials").value),
                 folds: Number($("tune-folds").value), gamma_min: Number($("tune-gmin").value),
                 gamma_max: Number($("tune-gmax").value), prune: $("tune-prune").checked,
                 data_seed: Number($("data-seed").value) };
  if (!$("target").disabled) body.target = $("target").value;
  body.model = $("tune-model").value;
  if (body.model === "net" && $("tune-epochs").value) body.epochs = Number($("tune-epochs").value);
  if (body.model !== "net" && $("tune-rounds").value) body.rounds = Number($("tune-rounds").value);
  return body;
}
async function start(kind) {
  let body;
  try { body = kind === "tune" ? tuneBody() : compareBody(); } catch (e) { say(e.message); return; }
  const button = kind === "tune" ? $("tune-run") : $("run");
  button.disabled = true;
  try {
    const run = await api("/api/runs", { json: body });
    say("");
    await refreshHistory();
    await openRun(run.id);
  } catch (e) {
    say(e.message);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ a run: live progress, result
function applyEvent(p, ev) {  // the server's jobs.apply_event, for the page's copy
  if (ev.type === "phase") p.phase = ev.phase;
  else if (ev.type === "start") {
    for (const k of ["losses", "seeds", "epochs", "runs_total", "description", "task", "device", "notes", "model"]) p[k] = ev[k];
    Object.assign(p, { phase: "training", runs_done: 0, curves: [] });
  } else if (ev.type === "run_start") {
    p.runs_done = ev.index;
    p.current = { index: ev.index, loss: ev.loss, seed: ev.seed, epoch: 0 };
    (p.curves = p.curves || []).push({ loss: ev.loss, seed: ev.seed, values: [] });
  } else if (ev.type === "epoch") {
    p.current.epoch = ev.epoch;
    p.curves[ev.index].values.push(ev.value);
    if (ev.epoch === ev.epochs) p.runs_done = ev.index + 1;
  } else if (ev.type === "progress") {  // boosting: rounds of the current model
    p.current.epoch = ev.done;
    if (ev.done >= ev.total) p.runs_done = ev.index + 1;
  } else if (ev.type === "trial") {
    const t = (p.trials = p.trials || []), i = t.findIndex(x => x.number === ev.trial.number);
    if (i >= 0) t[i] = ev.trial; else { t.push(ev.trial); t.sort((a, b) => a.number - b.number); }
    p.trials_done = t.filter(x => x.counted).length;
  }
}
function setStatus(status, error) {
  const b = $("run-status");
  b.textContent = status; b.className = `badge ${status}`;
  $("run-panel").dataset.status = status;
  $("cancel").hidden = !ACTIVE.includes(status);
  $("run-error").textContent = error || "";
}
async function openRun(id) {
  if (S.es) { S.es.close(); S.es = null; }
  const run = await api(`/api/runs/${id}`);
  S.current = run;
  S.progress = run.progress || {};
  location.hash = `run=${id}`;
  $("run-panel").hidden = false;
  $("run-panel").dataset.id = id;
  $("run-title").textContent = run.label;
  $("run-command").textContent = run.command;
  $("result-box").hidden = true;
  $("trials-box").hidden = run.kind !== "tune";
  $("trials-metric").textContent = run.kind === "tune" ? run.request.metric : "score";
  $("live").querySelector("div").hidden = run.kind === "tune";
  setStatus(run.status, run.error);
  renderProgress();
  markCurrent();
  if (ACTIVE.includes(run.status)) listen(id);
  else if (run.status === "done") renderResult(run);
  $("run-panel").scrollIntoView({ behavior: "smooth", block: "start" });
}
function listen(id) {
  const es = new EventSource(`/api/runs/${id}/events`);
  S.es = es;
  const mine = () => S.current && S.current.id === id && S.es === es;
  es.addEventListener("snapshot", m => {
    if (!mine()) return;
    const snap = JSON.parse(m.data);
    S.progress = snap.progress || {};
    setStatus(snap.status, snap.error);
    renderProgress();
  });
  for (const type of ["phase", "start", "run_start", "epoch", "progress", "trial", "status"]) {
    es.addEventListener(type, m => {
      if (!mine()) return;
      const ev = JSON.parse(m.data);
      if (type === "status") setStatus(ev.status);
      else applyEvent(S.progress, ev);
      renderProgress();
    });
  }
  es.addEventListener("end", async m => {
    es.close();
    if (!mine()) return;
    S.es = null;
    const ev = JSON.parse(m.data);
    setStatus(ev.status, ev.error);
    await refreshHistory();
    const run = await api(`/api/runs/${id}`);
    if (S.current && S.current.id === id) {
      S.current = run;
      S.progress = run.progress || S.progress;
      renderProgress();
      if (run.status === "done") renderResult(run);
    }
  });
}
function renderProgress() {
  const p = S.progress || {}, run = S.current;
  const bar = $("progress-bar"), text = $("progress-text");
  if (run.kind === "tune") {
    const n = run.request.n_trials, done = p.trials_done || 0;
    bar.max = n; bar.value = Math.min(done, n);
    text.textContent = `${done} of ${n} trials finished` + (p.phase ? ` · ${p.phase}` : "");
    renderTrials(p.trials || []);
    return;
  }
  const total = p.runs_total || 0, done = p.runs_done || 0;
  let frac = total ? done / total : 0;
  if (p.current && total && p.epochs) frac = (p.current.index + p.current.epoch / p.epochs) / total;
  bar.max = 1; bar.value = Math.min(1, frac);
  let t = p.phase || "";
  const boosting = p.model && p.model !== "net";
  if (p.current && p.phase === "training") t = boosting
    ? `${p.current.loss}, seed ${p.current.seed}: ${p.model}, ${p.epochs} rounds · model ${p.current.index + 1} of ${total}`
    : `${p.current.loss}, seed ${p.current.seed}: epoch ${p.current.epoch} of ${p.epochs} · run ${p.current.index + 1} of ${total}`;
  if (p.phase === "done" || run.status === "done") t = `${total} training runs done`;
  text.textContent = t;
  $("progress-text").dataset.epoch = p.current ? String(p.current.epoch) : "0";
  $("progress-text").dataset.runsDone = String(done);
  drawCurves($("loss-canvas"), p.curves || [], p.epochs || 1, p.losses || [], boosting ? "round" : "epoch");
}
function drawCurves(canvas, curves, epochs, losses, unit = "epoch") {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 600, h = canvas.clientHeight || 260;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const m = { l: 58, r: 12, t: 10, b: 32 }, pw = w - m.l - m.r, ph = h - m.t - m.b;
  const vals = curves.flatMap(c => c.values).filter(v => v > 0 && Number.isFinite(v));
  ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#5b6475"; ctx.strokeStyle = "#e3e6ec";
  canvas.dataset.points = String(curves.reduce((a, c) => a + c.values.length, 0));
  if (!vals.length) {
    ctx.textAlign = "center"; ctx.fillText(unit === "epoch" ? "the curves appear here as the epochs finish"
      : "boosting: the curves appear when the models are trained", w / 2, h / 2);
    $("loss-legend").innerHTML = "";
    return;
  }
  let lo = Math.log10(Math.min(...vals)), hi = Math.log10(Math.max(...vals));
  if (hi - lo < 0.3) { const c = (hi + lo) / 2; lo = c - 0.15; hi = c + 0.15; }
  lo -= 0.05 * (hi - lo); hi += 0.05 * (hi - lo);
  const X = e => m.l + (epochs > 1 ? (e - 1) / (epochs - 1) : 0.5) * pw;
  const Y = v => m.t + ph - (Math.log10(v) - lo) / (hi - lo) * ph;
  ctx.textAlign = "center";
  const step = Math.max(1, Math.ceil(epochs / 10));
  for (let e = 1; e <= epochs; e += step) {
    ctx.beginPath(); ctx.moveTo(X(e), m.t); ctx.lineTo(X(e), m.t + ph); ctx.stroke();
    ctx.fillText(String(e), X(e), m.t + ph + 14);
  }
  ctx.fillText(unit, m.l + pw / 2, h - 4);
  ctx.textAlign = "right";
  const factors = hi - lo > 3 ? [1] : [1, 2, 5];  // many decades: one line per decade
  for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
    for (const f of factors) {
      const v = f * Math.pow(10, k), y = Y(v);
      if (Math.log10(v) < lo || Math.log10(v) > hi) continue;
      ctx.beginPath(); ctx.moveTo(m.l, y); ctx.lineTo(m.l + pw, y); ctx.stroke();
      ctx.fillText(fmtNum(v, 2), m.l - 5, y + 4);
    }
  }
  const names = losses.length ? losses : [...new Set(curves.map(c => c.loss))];
  const seeds = [...new Set(curves.map(c => c.seed))];
  for (const c of curves) {
    const color = COLORS[Math.max(0, names.indexOf(c.loss)) % COLORS.length];
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.setLineDash(seeds.indexOf(c.seed) > 0 ? [5, 3] : []);
    ctx.beginPath();
    c.values.forEach((v, i) => { if (v > 0) { if (i === 0) ctx.moveTo(X(i + 1), Y(v)); else ctx.lineTo(X(i + 1), Y(v)); } });
    ctx.stroke();
    if (c.values.length === 1 && c.values[0] > 0) { ctx.fillStyle = color; ctx.beginPath(); ctx.arc(X(1), Y(c.values[0]), 2.5, 0, 7); ctx.fill(); }
  }
  ctx.setLineDash([]);
  $("loss-legend").innerHTML = "";
  names.forEach((n, i) => $("loss-legend").append(el("span", {}, el("i", { style: `background:${COLORS[i % COLORS.length]}` }), n)));
  if (seeds.length > 1) $("loss-legend").append(el("span", { class: "muted", text: "dashed: later seeds" }));
}
function trialAlpha(t) {
  if (t.alpha === null || t.alpha === undefined) return "off";
  return Array.isArray(t.alpha) ? `s=${fmtNum(t.alpha_param, 3)} (per class)` : fmtNum(t.alpha, 3);
}
function renderTrials(trials) {
  const tb = $("trials").querySelector("tbody");
  tb.innerHTML = "";
  const run = S.current, n = run.request.n_trials;
  $("trials-count").textContent = `(${S.progress.trials_done || 0} of ${n} finished)`;
  const sign = run.request.metric === "ece" ? -1 : 1;
  const done = trials.filter(t => t.state === "COMPLETE" && t.value !== null);
  const best = done.length ? done.reduce((a, b) => (sign * b.value > sign * a.value ? b : a)) : null;
  for (const t of trials) {
    const what = t.reference === "ce" ? "cross-entropy" : t.reference === "balanced_ce" ? "α-balanced CE" : "focal";
    const tr = el("tr", { "data-number": String(t.number), "data-state": t.state },
      el("td", { text: String(t.number) }), el("td", { text: t.state.toLowerCase() }), el("td", { text: what }),
      el("td", { text: fmtNum(t.gamma, 3) }), el("td", { text: trialAlpha(t) }),
      el("td", { text: t.value === null ? "" : t.value.toFixed(4), class: best && best.number === t.number ? "best clear" : "" }),
      el("td", { text: (t.fold_scores || []).map(v => v.toFixed(3)).join(" ") }),
      el("td", { text: t.duration_s ? t.duration_s.toFixed(1) : "" }));
    tb.append(tr);
  }
}
function resultTable(table) {
  const head = el("tr", {}, el("th", { text: "loss" }),
    ...table.metrics.map(m => el("th", { text: `${m.label} ${m.higher ? "↑" : "↓"}` })));
  const rows = table.rows.map(r => el("tr", { "data-loss": r.loss }, el("td", { text: r.loss }),
    ...r.cells.map(c => el("td", { "data-metric": c.metric, "data-mean": String(c.mean),
      class: (c.best ? "best" : "") + (c.clear ? " clear" : ""), text: c.text + (c.best ? " *" : "") }))));
  return [el("thead", {}, head), el("tbody", {}, ...rows)];
}
function renderResult(run) {
  $("result-box").hidden = false;
  const dl = $("downloads");
  dl.innerHTML = "";
  dl.append(el("span", { class: "muted", text: "download:" }));
  if (run.files.json) dl.append(el("a", { href: run.files.json, text: "JSON", download: "" }));
  if (run.files.report) dl.append(el("a", { href: `${run.files.report}?download=1`, text: "HTML report", download: "" }));
  if (run.files.weights) dl.append(el("a", { href: run.files.weights, text: "trained weights (.zip)", download: "" }));
  dl.append(el("a", { href: run.files.log, text: "log", target: "_blank" }));
  $("report-frame").src = run.files.report || "about:blank";
  const res = $("results"), ver = $("verdicts");
  res.innerHTML = ""; ver.innerHTML = "";
  if (run.kind === "compare" && run.result) {  // the curves of the result (boosting: every round)
    S.progress.curves = run.result.runs.map(r => ({ loss: r.loss, seed: r.seed, values: r.loss_curve || [] }));
    S.progress.epochs = Math.max(1, ...S.progress.curves.map(c => c.values.length));
    S.progress.losses = Object.keys(run.result.summary);
    S.progress.model = run.result.config.model || "net";
    renderProgress();
  }
  if (run.kind === "compare" && run.table) {
    $("headline").textContent = run.table.headline ? `Answer: ${run.table.headline}` : "";
    res.append(...resultTable(run.table));
    for (const v of run.table.verdicts) ver.append(el("li", {}, el("b", { text: v.label }), `: ${v.text}`));
  } else if (run.kind === "tune" && run.result) {
    const r = run.result, b = r.best;
    $("headline").textContent = b ? `Best: trial ${b.number}, γ=${fmtNum(b.gamma, 3)}, α=${trialAlpha(b)}: ${r.metric} ${fmtNum(b.value)}` +
      (r.improvement !== null && r.improvement !== undefined ? ` (improvement over the best cross-entropy ${fmtNum(r.improvement)}; fold spread ${fmtNum(r.spread)})` : "") : "no trial completed";
  }
  document.body.dataset.result = run.id;
}

// ------------------------------------------------------------------ history and side by side
async function refreshHistory() {
  S.runs = await api("/api/runs");
  const tb = $("history").querySelector("tbody");
  tb.innerHTML = "";
  $("history-empty").hidden = S.runs.length > 0;
  for (const r of S.runs) {
    const answer = r.kind === "compare" ? (r.summary && r.summary.headline) || (r.summary && r.summary.best && `best AP: ${r.summary.best.ap}`) || ""
      : r.summary && r.summary.best ? `best γ=${fmtNum(r.summary.best.gamma, 3)}: ${r.summary.metric} ${fmtNum(r.summary.best.value)}` : "";
    const pick = el("input", { type: "checkbox", class: "pick", checked: S.picked.includes(r.id), disabled: r.status !== "done" || r.kind !== "compare",
      title: "select two done comparisons to see them side by side", onchange: e => pickRun(r.id, e.target.checked) });
    const tr = el("tr", { "data-id": r.id, "data-status": r.status, "data-kind": r.kind },
      el("td", {}, pick),
      el("td", {}, el("a", { href: `#run=${r.id}`, class: "open", text: r.label, onclick: e => { e.preventDefault(); openRun(r.id); } })),
      el("td", {}, el("span", { class: `badge ${r.status}`, text: r.status })),
      el("td", { text: r.error || answer }),
      el("td", { text: when(r.created) }),
      el("td", {}, ...(ACTIVE.includes(r.status)
        ? [el("button", { class: "small cancel-run", text: "cancel", onclick: () => cancelRun(r.id) })]
        : [el("button", { class: "small again", text: "run again", title: "queue the same run again", onclick: () => again(r) }),
           el("button", { class: "small delete", text: "delete", onclick: () => deleteRun(r.id) })])));
    tb.append(tr);
  }
  S.picked = S.picked.filter(id => S.runs.some(r => r.id === id));
  $("compare-selected").disabled = S.picked.length !== 2;
  markCurrent();
  clearTimeout(S.timer);
  if (S.runs.some(r => ACTIVE.includes(r.status))) S.timer = setTimeout(refreshHistory, 3000);
}
function markCurrent() {
  for (const tr of $("history").querySelectorAll("tbody tr")) tr.classList.toggle("current", !!S.current && tr.dataset.id === S.current.id);
}
function pickRun(id, on) {
  S.picked = S.picked.filter(x => x !== id);
  if (on) S.picked.push(id);
  while (S.picked.length > 2) S.picked.shift();
  for (const c of document.querySelectorAll("#history .pick")) c.checked = S.picked.includes(c.closest("tr").dataset.id);
  $("compare-selected").disabled = S.picked.length !== 2;
}
async function showSides(ids) {
  const box = $("side-by-side");
  box.innerHTML = "";
  for (const id of ids) {
    const run = await api(`/api/runs/${id}`);
    const t = el("table", { class: "results" });
    if (run.table) t.append(...resultTable(run.table));
    box.append(el("div", { class: "side", "data-id": id }, el("h3", { text: run.label }), el("code", { text: run.command }),
      el("p", { class: "headline", text: run.table && run.table.headline ? run.table.headline : "" }), t,
      el("iframe", { src: run.files.report, title: `report of ${run.label}` })));
  }
  $("side-panel").hidden = false;
  $("side-panel").scrollIntoView({ behavior: "smooth" });
}
async function again(r) {
  try {
    const run = await api("/api/runs", { json: r.request });
    await refreshHistory();
    await openRun(run.id);
  } catch (e) { say(e.message); }
}
async function cancelRun(id) {
  try { await api(`/api/runs/${id}/cancel`, { method: "POST" }); } catch (e) { say(e.message); }
  await refreshHistory();
}
async function deleteRun(id) {
  if (!confirm("Delete this run and its files?")) return;
  try { await api(`/api/runs/${id}`, { method: "DELETE" }); } catch (e) { say(e.message); return; }
  if (S.current && S.current.id === id) { $("run-panel").hidden = true; S.current = null; location.hash = ""; }
  await refreshHistory();
}

// ------------------------------------------------------------------ start
async function init() {
  S.options = await api("/api/options");
  $("version").textContent = S.options.version;
  const names = { ce: "cross-entropy (CE)", balanced_ce: "α-balanced CE", focal: "focal loss (one per γ)" };
  for (const k of S.options.losses) {
    $("losses").append(el("label", {}, el("input", { type: "checkbox", value: k, checked: true, id: `loss-${k}` }), ` ${names[k] || k}`));
  }
  $("gammas").value = S.options.gammas.join(", ");
  for (const b of S.options.backends) $("backend").append(el("option", { value: b, text: b }));
  for (const m of S.options.tune_metrics) $("tune-metric").append(el("option", { value: m, text: S.options.metric_labels[m] || m }));
  for (const sel of ["model-select", "tune-model"]) {
    for (const m of S.options.models) {
      const text = m.id === "net" ? "net (the task's neural net)" : `${m.id} (gradient boosting)` +
        (m.available ? "" : " — not installed: pip install 'focalkit[gbdt]'");
      $(sel).append(el("option", { value: m.id, text, disabled: !m.available }));
    }
  }
  const modelChanged = () => {
    const boost = $("model-select").value !== "net";
    $("epochs").disabled = boost; if (boost) $("epochs").value = "";
    $("rounds-row").hidden = !boost;
    $("model").hidden = boost;
    $("rounds").placeholder = `default ${S.options.default_rounds}`;
    const tb = $("tune-model").value !== "net";
    $("tune-epochs").disabled = tb; if (tb) $("tune-epochs").value = "";
    for (const e of document.querySelectorAll(".tune-rounds")) e.hidden = !tb;
    $("tune-rounds").placeholder = `default ${S.options.default_rounds}`;
  };
  $("model-select").addEventListener("change", modelChanged);
  $("tune-model").addEventListener("change", modelChanged);
  $("dataset").addEventListener("change", () => selectDataset());
  $("target").addEventListener("change", () => selectDataset($("target").value));
  $("file-input").addEventListener("change", e => upload(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); upload(e.dataTransfer.files[0]); });
  $("delete-dataset").addEventListener("click", async () => {
    const d = currentDataset();
    if (!d || !confirm(`Delete the upload ${d.name}?`)) return;
    try { await api(`/api/datasets/${d.id}`, { method: "DELETE" }); await loadDatasets("dense"); } catch (e) { say(e.message); }
  });
  $("alpha-mode").addEventListener("change", () => { $("alpha-value").hidden = $("alpha-mode").value !== "value"; });
  $("add-gamma").addEventListener("click", () => {
    let list = [];
    try { list = parseList($("gammas").value, "gammas"); } catch (e) { list = []; }
    if (!list.some(g => Math.abs(g - S.pg.gamma) < 1e-9)) list.push(S.pg.gamma);
    $("gammas").value = list.map(g => fmtNum(g)).join(", ");
  });
  $("gammas").addEventListener("change", () => {
    try { const l = parseList($("gammas").value, "gammas"); setPlaygroundGamma(l[l.length - 1]); } catch (e) { /* shown on Run */ }
  });
  $("playground").addEventListener("load", hookPlayground);
  hookPlayground();
  for (const [tab, form] of [["tab-compare", "compare-form"], ["tab-tune", "tune-form"]]) {
    $(tab).addEventListener("click", () => {
      for (const [t2, f2] of [["tab-compare", "compare-form"], ["tab-tune", "tune-form"]]) {
        $(t2).classList.toggle("active", t2 === tab); $(t2).setAttribute("aria-selected", String(t2 === tab));
        $(f2).hidden = f2 !== form;
      }
    });
  }
  $("compare-form").addEventListener("submit", e => { e.preventDefault(); start("compare"); });
  $("tune-form").addEventListener("submit", e => { e.preventDefault(); start("tune"); });
  $("cancel").addEventListener("click", () => S.current && cancelRun(S.current.id));
  $("compare-selected").addEventListener("click", () => showSides(S.picked));
  $("close-side").addEventListener("click", () => { $("side-panel").hidden = true; });
  window.addEventListener("resize", () => S.current && S.current.kind === "compare" && renderProgress());
  await loadDatasets();
  await refreshHistory();
  const m = location.hash.match(/run=([0-9a-f]+)/);
  if (m && S.runs.some(r => r.id === m[1])) await openRun(m[1]);
  document.body.dataset.ready = "1";
}
window.focalkitStudio = { S, applyEvent, openRun, refreshHistory };
init().catch(e => say(`the studio could not start: ${e.message}`));
