// vidcolor preview: the page. Plain JavaScript, no build step, nothing fetched from elsewhere.
//
// State lives in `state`; every change of time or settings asks the server again, and at most one
// request per picture is in flight (a newer wish waits for it and then asks once for the latest).
//
// (Over 400 lines: one page, served as one file with no build step or module loader; its parts
// (server, settings, pictures, files, source, split, reference folder, hints, render, start) are
// marked by banners below.)
"use strict";

const $ = (id) => document.getElementById(id);

// The token: from the address on first load (then removed from it, as Jupyter does), else from
// this tab's storage. The server also set a cookie, which is what <img>, <video> and links use.
const TOKEN = (() => {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem("vidcolor-token", fromUrl);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return fromUrl || sessionStorage.getItem("vidcolor-token") || "";
})();

const state = {
  info: null,        // /api/info
  source: null,      // /api/open of the file shown
  t: 0,              // seconds: the time asked for
  shownTime: 0,      // seconds: the time of the frame shown
  dir: "",           // folder listed
  hints: [],         // [{time, point: [x, y] fractions, colour: "#rrggbb", radius}]
  hintTool: false,
  cuts: [],          // seconds: the scene cuts found so far
  refPins: [],       // [{name, start, end}]: stills of the reference folder kept for a shot
  refDrops: [],      // [{name, start, end}]: stills never chosen for a shot
  job: null,         // the last render job's snapshot
  presets: {},       // codec -> {names, default}: the encoders' speed presets (/api/info)
  cutsTimer: null,
  jobTimer: null,
};

// ------------------------------------------------------------------------------------ server

async function api(path, { method = "GET", json, body, headers = {} } = {}) {
  const opts = { method, headers: { "X-Vidcolor-Token": TOKEN, ...headers } };
  if (json !== undefined) {
    opts.body = JSON.stringify(json);
    opts.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    opts.body = body;
  }
  const res = await fetch(path, opts);
  if (!res.ok) {
    let text = `${res.status} ${res.statusText}`;
    try { text = (await res.json()).error || text; } catch (e) { /* not JSON */ }
    throw new Error(text);
  }
  return res;
}

function showMessage(text) {
  $("message-text").textContent = text;
  $("message").hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ------------------------------------------------------------------------------- settings

function settings() {
  const num = (id) => ($(id).value === "" ? null : Number($(id).value));
  const s = {
    model: $("model").value,
    render_size: num("render-size"),
    smoothing: Number($("smoothing").value),
    codec: $("codec").value,
    crf: num("crf"),
    preset: $("preset").value || null,
  };
  if (state.source && state.source.kind === "film" && !$("whole").checked) {
    s.start = num("start") || 0;
    s.duration = num("duration");
  }
  const folder = $("ref-dir").value.trim();
  if (folder) Object.assign(s, { reference_dir: folder, reference_pin: state.refPins, reference_drop: state.refDrops });
  return s;
}

// The settings that change the picture (codec and quality only change the render).
function frameSettings() {
  const s = settings();
  const refs = { reference_dir: s.reference_dir, reference_pin: s.reference_pin, reference_drop: s.reference_drop };
  return { model: s.model, render_size: s.render_size, smoothing: s.smoothing, ...refs };
}

// -------------------------------------------------------------------------------- pictures

// One loader per picture: `run()` asks for the current wish; while a request is in flight, later
// calls only mark that the wish changed, and one more request follows when it returns.
// A smoothed colour frame needs its neighbours through the model too, so the colour loader first
// asks for the frame alone ("quick": shown at once, marked unsmoothed) and then for the real one,
// unless the wish has changed meanwhile.
function loader(view) {
  let busy = false;
  let again = false;
  const img = view === "grey" ? $("grey") : $("colour");

  async function fetchPicture(t, quick, started) {
    const body = {
      path: state.source.path, t, view, format: "jpeg", quick,
      settings: frameSettings(), hints: hintsNear(t),
    };
    const res = await api("/api/frame", { method: "POST", json: body });
    const blob = await res.blob();
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    const time = Number(res.headers.get("X-Vidcolor-Time"));
    const exact = res.headers.get("X-Vidcolor-Exact") !== "0";
    img.dataset.digest = res.headers.get("X-Vidcolor-Digest");
    img.dataset.t = String(t);
    img.dataset.frame = res.headers.get("X-Vidcolor-Frame");
    img.dataset.state = exact ? "ready" : "quick";
    if (view === "grey") {
      $("colour-grey").src = img.src;
      state.shownTime = time;
      updateTimeLabel(time, Number(res.headers.get("X-Vidcolor-Frame")));
      drawHints();
      return exact;
    }
    showReferences(res.headers.get("X-Vidcolor-References"));
    const secs = (performance.now() - started) / 1000;
    const size = res.headers.get("X-Vidcolor-Render-Size");
    const model = res.headers.get("X-Vidcolor-Model");
    const what = exact ? `${secs.toFixed(2)} s` : "unsmoothed, smoothing…";
    $("colour-meta").textContent = `· ${model}, ${size} px, ${what}`;
    if (!$("render-size").value) $("render-size").placeholder = size;
    setStatus(exact ? `colour in ${secs.toFixed(2)} s` : "smoothing…");
    return exact;
  }

  async function once() {
    if (!state.source) return;
    const t = state.t;
    img.dataset.state = "loading";
    if (view === "colour") setStatus("colorizing…");
    const started = performance.now();
    try {
      if (view === "colour" && frameSettings().smoothing > 0) {
        const exact = await fetchPicture(t, true, started);
        if (exact || again) return;
      }
      await fetchPicture(t, false, started);
    } catch (err) {
      img.dataset.state = "error";
      if (view === "colour") setStatus("");
      showMessage(err.message);
    }
  }

  return async function run() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do { again = false; await once(); } while (again);
    } finally {
      busy = false;
    }
  };
}

const loadGrey = loader("grey");
const loadColour = loader("colour");

function refresh({ grey = true, colour = true } = {}) {
  if (grey) loadGrey();
  if (colour) loadColour();
}

function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

// ---------------------------------------------------------------------------------- files

async function listFolder(dir) {
  try {
    const data = await (await api(`/api/files?dir=${encodeURIComponent(dir)}`)).json();
    state.dir = data.dir;
    $("folder").textContent = `${state.info.folder}/${data.dir}`;
    const list = $("file-list");
    list.replaceChildren();
    if (data.parent !== null) list.append(fileItem({ name: "..", path: data.parent, dir: true }));
    for (const e of data.entries) list.append(fileItem(e));
  } catch (err) {
    showMessage(err.message);
  }
}

function fileItem(entry) {
  const li = document.createElement("li");
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = entry.name;
  b.dataset.path = entry.path;
  b.className = entry.dir ? "dir" : "file";
  if (state.source && state.source.path === entry.path) b.classList.add("current");
  b.addEventListener("click", () => (entry.dir ? listFolder(entry.path) : openSource(entry.path)));
  li.append(b);
  return li;
}

async function upload(file) {
  try {
    setStatus(`uploading ${file.name}…`);
    const q = `name=${encodeURIComponent(file.name)}&dir=${encodeURIComponent(state.dir)}`;
    const data = await (await api(`/api/upload?${q}`, { method: "POST", body: file })).json();
    await listFolder(state.dir);
    await openSource(data.path);
  } catch (err) {
    setStatus("");
    showMessage(`${file.name}: ${err.message}`);
  }
}

// --------------------------------------------------------------------------------- source

async function openSource(path) {
  clearMessage();
  let src;
  try {
    src = await (await api("/api/open", { method: "POST", json: { path } })).json();
  } catch (err) {
    showMessage(`${path}: ${err.message}`);
    return;
  }
  state.source = src;
  state.t = 0;
  document.body.classList.toggle("still", src.kind === "still");
  $("source-name").textContent = src.path;
  for (const b of document.querySelectorAll("#file-list button")) {
    b.classList.toggle("current", b.dataset.path === src.path);
  }
  const time = $("time");
  time.max = String(Math.max(0, src.duration - 1 / src.rate));
  time.step = String(1 / src.rate);
  time.value = "0";
  $("start").value = "0";
  $("duration").value = String(Math.min(5, Math.max(0.1, Math.round(src.duration * 10) / 10)));
  for (const img of [$("grey"), $("colour"), $("colour-grey")]) img.removeAttribute("src");
  for (const box of document.querySelectorAll(".frame")) box.style.aspectRatio = String(src.display_aspect);
  const info = $("source-info");
  info.replaceChildren();
  const facts = [
    ["size", `${src.width}×${src.height}, ${src.bit_depth}-bit ${src.codec}`],
    ...(src.kind === "film" ? [["length", `${fmtTime(src.duration)} · ${src.frames} frames at ${src.rate.toFixed(3)}/s`]] : []),
    ...(src.streams.length ? [["other streams", src.streams.join(", ")]] : []),
  ];
  for (const [k, v] of facts) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    info.append(dt, dd);
  }
  $("cuts").replaceChildren();
  state.cuts = [];
  state.refPins = [];
  state.refDrops = [];
  drawKeptReferences();
  $("cuts-label").textContent = "";
  $("render").disabled = false;
  updateHintButtons();
  drawHints();
  refresh();
  updateCommand();
  clearInterval(state.cutsTimer);
  if (src.kind === "film") {
    state.cutsTimer = setInterval(pollCuts, 1000);
    pollCuts();
  }
}

async function pollCuts() {
  const src = state.source;
  if (!src) return;
  try {
    const data = await (await api(`/api/cuts?path=${encodeURIComponent(src.path)}`)).json();
    if (state.source !== src) return;
    const box = $("cuts");
    box.replaceChildren();
    state.cuts = data.cuts;
    for (const t of data.cuts) {
      const mark = document.createElement("button");
      mark.type = "button";
      mark.className = "cut";
      mark.title = `cut at ${fmtTime(t)}`;
      mark.style.left = `${(100 * t) / Math.max(src.duration, 1e-6)}%`;
      mark.addEventListener("click", () => seek(t));
      box.append(mark);
    }
    const n = data.cuts.length;
    const scanned = data.done ? "" : ` (scanning, ${fmtTime(data.seconds_done)} so far)`;
    $("cuts-label").textContent = data.error
      ? `scene cuts: scan stopped: ${data.error}`
      : `${n} scene cut${n === 1 ? "" : "s"}${scanned}`;
    if (data.done) clearInterval(state.cutsTimer);
  } catch (err) {
    clearInterval(state.cutsTimer);
  }
}

function fmtTime(t) {
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

function updateTimeLabel(t, frame) {
  $("time-label").textContent = `${fmtTime(t)} · frame ${frame}`;
}

function seek(t) {
  if (!state.source) return;
  const max = Number($("time").max);
  state.t = Math.min(Math.max(0, t), max);
  $("time").value = String(state.t);
  refresh();
}

function step(frames) {
  if (!state.source) return;
  seek(state.shownTime + frames / state.source.rate);
}

// ----------------------------------------------------------------------------------- split

function setSplit(percent) {
  const p = Math.min(100, Math.max(0, percent));
  $("split").value = String(p);
  $("colour-grey").style.clipPath = `inset(0 ${100 - p}% 0 0)`;
  $("split-line").style.left = `${p}%`;
  $("split-line").hidden = p <= 0 || p >= 100;
}

// ------------------------------------------------------------------------ reference folder

// The shot around the frame shown, [start, end) in seconds, from the scene cuts found so far.
function shotRange() {
  const t = state.shownTime;
  let start = 0;
  let end = null;
  for (const c of state.cuts) {
    if (c <= t + 1e-6) start = c;
    else { end = c; break; }
  }
  return { start, end };
}

// The stills that coloured the frame shown (the X-Vidcolor-References header), with pin and drop.
function showReferences(header) {
  const list = $("ref-list");
  list.replaceChildren();
  if (!header) return;
  const data = JSON.parse(decodeURIComponent(header));
  const folder = $("ref-dir").value.trim().replace(/\/+$/, "");
  const entries = [
    ...data.pinned.map((name) => ({ name, label: "pinned" })),
    ...data.chosen.map((c) => ({ name: c.name, label: `score ${c.score.toFixed(2)}` })),
  ];
  for (const e of entries) {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.src = `/api/still?path=${encodeURIComponent(`${folder}/${e.name}`)}`;
    img.alt = e.name;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = e.name;
    name.title = `${e.name} (${e.label})`;
    const row = document.createElement("span");
    for (const [what, list2] of [["pin", state.refPins], ["drop", state.refDrops]]) {
      if (what === "pin" && e.label === "pinned") continue;
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = what === "pin" ? "Pin" : "Drop";
      b.title = what === "pin" ? "Keep this still for the shot shown" : "Never choose this still for the shot shown";
      b.addEventListener("click", () => { list2.push({ name: e.name, ...shotRange() }); referencesChanged(); });
      row.append(b);
    }
    li.append(img, name, document.createTextNode(e.label), row);
    list.append(li);
  }
  if (!entries.length) {
    const best = data.best ? ` (best ${data.best.name}, ${data.best.score.toFixed(2)})` : "";
    const li = document.createElement("li");
    li.textContent = `automatic colour: no still matches this shot well enough${best}`;
    list.append(li);
  }
}

function drawKeptReferences() {
  const box = $("ref-kept");
  box.replaceChildren();
  for (const [label, list] of [["pinned", state.refPins], ["dropped", state.refDrops]]) {
    list.forEach((r, i) => {
      const li = document.createElement("li");
      const end = r.end === null ? "end" : fmtTime(r.end);
      li.append(document.createTextNode(`${label} ${r.name}, ${fmtTime(r.start)}–${end}`));
      const del = document.createElement("button");
      del.type = "button";
      del.textContent = "×";
      del.title = "Undo";
      del.addEventListener("click", () => { list.splice(i, 1); referencesChanged(); });
      li.append(del);
      box.append(li);
    });
  }
}

function referencesChanged() {
  drawKeptReferences();
  refresh({ grey: false });
  updateCommand();
}

// ----------------------------------------------------------------------------------- hints

// Hints belong to the frame they were placed on; those within half a frame of t apply to it.
function hintsNear(t) {
  if (!state.source) return [];
  const half = 0.5 / state.source.rate;
  return state.hints.filter((h) => Math.abs(h.time - t) <= half + 1e-6);
}

// Hints hold points on the stored picture; the page shows it turned upright by `rotation` quarter
// turns counter-clockwise. These map a fraction point between the two.
function toShown([x, y]) {
  switch (state.source ? state.source.rotation : 0) {
    case 1: return [y, 1 - x];
    case 2: return [1 - x, 1 - y];
    case 3: return [1 - y, x];
    default: return [x, y];
  }
}

function toStored([u, v]) {
  switch (state.source ? state.source.rotation : 0) {
    case 1: return [1 - v, u];
    case 2: return [1 - u, 1 - v];
    case 3: return [v, 1 - u];
    default: return [u, v];
  }
}

function drawHints() {
  const layer = $("hint-layer");
  layer.replaceChildren();
  const src = state.source;
  if (src) {
    const shownWidth = src.rotation % 2 ? src.height : src.width;
    const pxPerSourcePx = $("colour").clientWidth / Math.max(1, shownWidth);
    for (const h of hintsNear(state.shownTime)) {
      const dot = document.createElement("div");
      dot.className = "hint-dot";
      const [u, v] = toShown(h.point);
      const r = h.radius ? h.radius * Math.min(src.width, src.height) * pxPerSourcePx : 5;
      const d = Math.max(10, 2 * r);
      Object.assign(dot.style, { left: `${100 * u}%`, top: `${100 * v}%`, width: `${d}px`, height: `${d}px`, color: h.colour });
      layer.append(dot);
    }
  }
  const list = $("hint-list");
  list.replaceChildren();
  state.hints.forEach((h, i) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = h.colour;
    const label = document.createElement("button");
    label.type = "button";
    label.className = "hint-go";
    label.textContent = `${fmtTime(h.time)} (${h.point.map((p) => p.toFixed(2)).join(", ")})`;
    label.title = "Go to this hint's frame";
    label.addEventListener("click", () => seek(h.time));
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "×";
    del.title = "Remove this hint";
    del.addEventListener("click", () => { state.hints.splice(i, 1); hintsChanged(); });
    li.append(sw, label, del);
    list.append(li);
  });
}

function updateHintButtons() {
  for (const id of ["hint-export", "hint-save", "hint-clear"]) $(id).disabled = state.hints.length === 0;
}

function hintsChanged() {
  updateHintButtons();
  drawHints();
  updateCommand();
  if (state.info) refresh({ grey: false });
}

function placeHint(event) {
  if (!state.hintTool || !state.source) return;
  const box = $("hint-layer").getBoundingClientRect();
  const u = (event.clientX - box.left) / box.width;
  const v = (event.clientY - box.top) / box.height;
  if (u < 0 || u > 1 || v < 0 || v > 1) return;
  const [x, y] = toStored([u, v]);
  const hint = {
    time: Number(state.shownTime.toFixed(6)),
    point: [Number(x.toFixed(4)), Number(y.toFixed(4))],
    units: "fraction",
    colour: $("hint-colour").value,
  };
  const px = Number($("hint-radius").value);
  if (px > 0) hint.radius = Number(Math.min(1, px / Math.min(state.source.width, state.source.height)).toFixed(4));
  state.hints.push(hint);
  hintsChanged();
}

function hintsFileName() {
  const name = state.source ? state.source.path.split("/").pop() : "film";
  return `${name.replace(/\.[^.]*$/, "")}.hints.json`;
}

function exportHints() {
  const blob = new Blob([JSON.stringify(state.hints, null, 2) + "\n"], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = hintsFileName();
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function saveHints() {
  if (!state.source) return;
  try {
    const data = await (await api("/api/hints", { method: "POST", json: { path: state.source.path, hints: state.hints } })).json();
    setStatus(`${data.hints} hint${data.hints === 1 ? "" : "s"} saved to ${data.path}`);
    listFolder(state.dir);
  } catch (err) {
    showMessage(err.message);
  }
}

// ---------------------------------------------------------------------------------- render

// Answers to older command requests are dropped (a render's own command must not be replaced).
let commandSeq = 0;

const updateCommand = debounce(async () => {
  if (!state.source) return;
  const seq = ++commandSeq;
  try {
    const json = { path: state.source.path, settings: settings(), hints: state.hints };
    const data = await (await api("/api/command", { method: "POST", json })).json();
    if (seq === commandSeq) $("command").textContent = data.command;
  } catch (err) {
    if (seq === commandSeq) $("command").textContent = `(${err.message})`;
  }
}, 200);

async function startRender() {
  if (!state.source) return;
  clearMessage();
  try {
    const job = await (await api("/api/render", { method: "POST", json: { path: state.source.path, settings: settings(), hints: state.hints } })).json();
    state.job = job;
    $("result").hidden = true;
    updateCommand.cancel();  // the box now shows what this render runs, until a setting changes
    commandSeq++;
    $("command").textContent = job.command;
    $("cancel").disabled = false;
    showJob(job);
    clearInterval(state.jobTimer);
    state.jobTimer = setInterval(pollJob, 500);
  } catch (err) {
    showMessage(err.message);
  }
}

async function pollJob() {
  if (!state.job) return;
  try {
    const job = await (await api(`/api/jobs/${state.job.id}`)).json();
    state.job = job;
    showJob(job);
    if (["done", "failed", "cancelled"].includes(job.state)) {
      clearInterval(state.jobTimer);
      $("cancel").disabled = true;
      if (job.state === "done") showResult(job);
      if (job.state === "failed") showMessage(`render failed: ${job.message}`);
    }
  } catch (err) {
    clearInterval(state.jobTimer);
    showMessage(err.message);
  }
}

function showJob(job) {
  $("progress").value = job.percent;
  const $text = $("progress-text");
  $text.dataset.state = job.state;
  $text.dataset.percent = String(job.percent);
  const parts = [`${job.percent.toFixed(1)}%`, `${job.frames}/${job.total} frames`];
  if (job.fps > 0) parts.push(`${job.fps.toFixed(1)} frames/s`);
  if (job.eta_s !== null && job.state === "running") parts.push(`${Math.ceil(job.eta_s)} s left`);
  const words = { queued: "waiting", running: "", finishing: "checking the output", done: "done",
    failed: "failed", cancelled: "cancelled" };
  if (words[job.state]) parts.push(words[job.state]);
  $text.textContent = parts.join(" · ");
}

function showResult(job) {
  const url = `/api/jobs/${job.id}/file`;
  const video = $("result-video");
  const still = state.source && state.source.kind === "still";
  video.hidden = still;
  if (!still) video.src = url;
  const a = $("download");
  a.href = `${url}?download=1`;
  a.textContent = `Download ${job.output.split("/").pop()}`;
  $("result").hidden = false;
  setStatus(job.message.split(";")[0]);
  listFolder(state.dir);
}

async function cancelRender() {
  if (!state.job) return;
  try {
    await api(`/api/jobs/${state.job.id}/cancel`, { method: "POST" });
  } catch (err) {
    showMessage(err.message);
  }
}

// ------------------------------------------------------------------------------------ start

function fillOptions(info) {
  const model = $("model");
  for (const m of info.models) {
    const o = document.createElement("option");
    o.value = m.key;
    o.textContent = m.label;
    model.append(o);
  }
  model.value = info.default_model;
  const codec = $("codec");
  for (const c of info.codecs) {
    const o = document.createElement("option");
    o.value = c;
    o.textContent = c;
    codec.append(o);
  }
  codec.value = info.defaults.codec;
  state.presets = info.presets;
  fillPresets();
  $("smoothing").value = String(info.defaults.smoothing);
  $("smoothing-value").value = Number(info.defaults.smoothing).toFixed(2);
  if (info.defaults.render_size) $("render-size").value = String(info.defaults.render_size);
  $("hint-note").textContent = info.hints.note;
}

// The speed presets of the chosen codec ("" = its default); none for codecs without presets.
function fillPresets() {
  const select = $("preset");
  const was = select.value;
  const p = (state.presets || {})[$("codec").value] || { names: [], default: null };
  select.replaceChildren();
  const d = document.createElement("option");
  d.value = "";
  d.textContent = p.default ? `default (${p.default})` : "none";
  select.append(d);
  for (const name of p.names) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = name;
    select.append(o);
  }
  select.value = p.names.includes(was) ? was : "";
  select.disabled = p.names.length === 0;
}

function wire() {
  $("message-close").addEventListener("click", clearMessage);
  $("upload").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); e.target.value = ""; });
  $("time").addEventListener("input", (e) => { state.t = Number(e.target.value); refresh(); });
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea")) return;
    if (e.key === "ArrowLeft") step(-1);
    if (e.key === "ArrowRight") step(1);
  });
  $("split").addEventListener("input", (e) => setSplit(Number(e.target.value)));
  const frame = $("colour-frame");
  let dragging = false;
  const dragTo = (e) => {
    const box = frame.getBoundingClientRect();
    setSplit((100 * (e.clientX - box.left)) / box.width);
  };
  frame.addEventListener("pointerdown", (e) => {
    if (state.hintTool) return;
    dragging = true;
    frame.setPointerCapture(e.pointerId);
    dragTo(e);
  });
  frame.addEventListener("pointermove", (e) => { if (dragging) dragTo(e); });
  frame.addEventListener("pointerup", () => { dragging = false; });
  $("hint-layer").addEventListener("click", placeHint);

  const pictureChanged = () => { refresh({ grey: false }); updateCommand(); };
  $("model").addEventListener("change", pictureChanged);
  $("render-size").addEventListener("change", pictureChanged);
  $("smoothing").addEventListener("input", (e) => { $("smoothing-value").value = Number(e.target.value).toFixed(2); });
  $("smoothing").addEventListener("change", pictureChanged);
  $("codec").addEventListener("change", fillPresets);
  for (const id of ["codec", "crf", "preset", "start", "duration", "whole"]) $(id).addEventListener("change", updateCommand);
  $("whole").addEventListener("change", (e) => {
    for (const el of document.querySelectorAll("#section-fields input, #section-fields button")) el.disabled = e.target.checked;
  });
  $("from-here").addEventListener("click", () => { $("start").value = state.shownTime.toFixed(3); updateCommand(); });
  $("ref-dir").addEventListener("change", () => { state.refPins = []; state.refDrops = []; referencesChanged(); });

  $("hint-tool").addEventListener("click", (e) => {
    state.hintTool = !state.hintTool;
    e.target.setAttribute("aria-pressed", String(state.hintTool));
    $("hint-layer").classList.toggle("active", state.hintTool);
  });
  $("hint-export").addEventListener("click", exportHints);
  $("hint-save").addEventListener("click", saveHints);
  $("hint-clear").addEventListener("click", () => { state.hints = []; hintsChanged(); });
  window.addEventListener("resize", drawHints);

  $("render").addEventListener("click", startRender);
  $("cancel").addEventListener("click", cancelRender);
  $("result-video").addEventListener("error", () => {
    if (state.job) showMessage(`This browser cannot play ${state.job.output}; download it to watch it.`);
  });
  $("copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("command").textContent));
}

async function start() {
  wire();
  setSplit(Number($("split").value));
  try {
    state.info = await (await api("/api/info")).json();
  } catch (err) {
    showMessage(err.message);
    return;
  }
  fillOptions(state.info);
  await listFolder("");
  if (state.info.initial) await openSource(state.info.initial);
  document.body.dataset.ready = "1";
}

start();
