// The page of python -m avqa.demo: a gallery and an upload, a question (typed or from a template), and the
// answer with where the model looked (heat over the video, second by second) and when (strips under it).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { catalog: null, clip: null, result: null };

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function call(url, options) {
  let reply, body;
  try {
    reply = await fetch(url, options);
    body = await reply.json();
  } catch (e) {
    throw new Error("the server did not answer (is python -m avqa.demo still running?)");
  }
  if (!reply.ok || body.error) throw new Error(body.error || `the server answered ${reply.status}`);
  return body;
}

function model() {
  return state.catalog.models.find((m) => m.key === $("model").value);
}

function addClip(clip, first) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "clip";
  button.dataset.key = clip.key;
  button.title = clip.name;
  const img = document.createElement("img");
  img.loading = "lazy";
  img.alt = clip.name;
  img.src = `/thumb/${clip.key}.jpg`;
  const name = document.createElement("span");
  name.textContent = clip.name.length > 14 ? clip.name.slice(0, 13) + "…" : clip.name;
  button.append(img, name);
  button.addEventListener("click", () => selectClip(clip));
  if (first) $("clips").prepend(button); else $("clips").append(button);
}

function selectClip(clip) {
  state.clip = clip;
  for (const b of document.querySelectorAll(".clip")) b.classList.toggle("selected", b.dataset.key === clip.key);
  $("video").src = `/video/${clip.key}`;
  $("clip-name").textContent = clip.name;
  const select = $("set-questions");
  select.replaceChildren(new Option("(choose)", ""), ...clip.questions.map((q) => new Option(q, q)));
  $("set-questions-label").hidden = clip.questions.length === 0;
  clearResult();
}

function clearResult() {
  state.result = null;
  $("result").hidden = true;
  $("strips").hidden = true;
  $("heat").hidden = true;
}

function fillTemplate() {
  const t = state.catalog.templates[$("template").value];
  $("fillers").replaceChildren();
  if (!t) return;
  const words = model() ? model().fillers : {};
  for (const tag of t.tags) {
    const select = document.createElement("select");
    select.dataset.tag = tag;
    select.title = tag;
    for (const w of words[tag] || []) select.add(new Option(w.replace(/_/g, " "), w));
    select.addEventListener("change", composeQuestion);
    $("fillers").append(select);
  }
  composeQuestion();
}

function composeQuestion() {
  const t = state.catalog.templates[$("template").value];
  if (!t) return;
  const chosen = [...$("fillers").querySelectorAll("select")].map((s) => s.value);
  let i = 0;
  $("question").value = t.text.replace(/<\w+>/g, (tag) => chosen[i++] || tag);
}

async function ask(event) {
  event.preventDefault();
  showError("");
  if (!state.clip) return showError("pick a clip from the gallery, or upload a video, before asking");
  $("busy").hidden = false;
  $("ask").disabled = true;
  try {
    const result = await call("/api/ask", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ clip: state.clip.key, question: $("question").value, model: $("model").value }),
    });
    if (result.clip === state.clip.key) showResult(result);
  } catch (e) {
    clearResult();
    showError(e.message);
  } finally {
    $("busy").hidden = true;
    $("ask").disabled = false;
  }
}

function cells(strip, values, seconds, total, colour, top) {
  strip.replaceChildren();
  const step = total / seconds.length;
  values.forEach((v, k) => {
    const cell = document.createElement("div");
    cell.style.left = `${(100 * seconds[k]) / total}%`;
    cell.style.width = `${(100 * step) / total}%`;
    cell.style.background = `rgba(${colour}, ${Math.max(0.04, v / top).toFixed(3)})`;
    cell.title = `${seconds[k]} s: ${v.toFixed(3)}`;
    cell.addEventListener("click", () => { $("video").currentTime = seconds[k] + 0.5; });
    strip.append(cell);
  });
}

const SOUND = "61, 124, 201", VISION = "224, 96, 42";

function showResult(r) {
  state.result = r;
  $("answer").textContent = r.answer;
  $("probability").textContent = `(probability ${r.probability.toFixed(4)})`;
  const best = r.top[0].probability || 1;
  $("top5").replaceChildren(...r.top.map((t) => {
    const li = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(120 * t.probability / best)}px`;
    const text = document.createElement("span");
    text.className = "top-answer";
    text.textContent = `${t.answer} ${t.probability.toFixed(4)}`;
    text.dataset.answer = t.answer;
    text.dataset.probability = t.probability;
    li.append(bar, text);
    return li;
  }));
  $("qtype").textContent = r.question_type.join(" / ") + (r.template_matched ? "" : "?");
  $("template-used").textContent = `(template: ${r.template})`;
  $("notes").replaceChildren(...r.notes.map((n) => Object.assign(document.createElement("li"), { textContent: n })));
  // each strip darkest at its own highest second
  const ta = r.temporal_attention.sound, tv = r.temporal_attention.vision;
  const topA = Math.max(...ta, 1e-12), topV = Math.max(...tv, 1e-12);
  cells($("strip-sound"), ta, r.seconds, r.clip_seconds, SOUND, topA);
  cells($("strip-vision"), tv, r.seconds, r.clip_seconds, VISION, topV);
  $("looked").replaceChildren(...r.looked.map((src, k) => {
    const box = document.createElement("div");
    box.className = "second";
    const img = Object.assign(document.createElement("img"), { src, alt: `second ${r.seconds[k]}` });
    img.addEventListener("click", () => { $("video").currentTime = r.seconds[k] + 0.5; });
    const mini = document.createElement("div");
    mini.className = "mini";
    const a = document.createElement("span"), v = document.createElement("span");
    a.style.background = `rgba(${SOUND}, ${Math.max(0.04, ta[k] / topA)})`;
    v.style.background = `rgba(${VISION}, ${Math.max(0.04, tv[k] / topV)})`;
    mini.append(a, v);
    const caption = document.createElement("div");
    caption.textContent = `${r.seconds[k]} s: sound ${ta[k].toFixed(2)}, vision ${tv[k].toFixed(2)}`;
    box.append(img, mini, caption);
    return box;
  }));
  $("heat").style.opacity = r.heat_weight;
  $("result").hidden = false;
  $("strips").hidden = false;
  follow();
}

function follow() {
  // the heat map of the second being played, and the playhead over the strips
  const r = state.result;
  if (!r) return;
  const t = $("video").currentTime || 0;
  let k = 0;
  while (k + 1 < r.seconds.length && r.seconds[k + 1] <= t) k++;
  if ($("heat").dataset.k !== String(k)) {
    $("heat").src = r.heat[k];
    $("heat").dataset.k = String(k);
  }
  $("heat").hidden = false;
  const strip = $("strip-sound").getBoundingClientRect(), box = $("strips").getBoundingClientRect();
  $("playhead").style.left = `${strip.left - box.left + strip.width * Math.min(t / r.clip_seconds, 1)}px`;
}

async function upload() {
  const file = $("upload").files[0];
  if (!file) return;
  showError("");
  $("upload-status").textContent = `uploading ${file.name}...`;
  try {
    const reply = await call("/api/upload", {
      method: "POST", headers: { "X-Filename": encodeURIComponent(file.name) }, body: file,
    });
    addClip(reply.clip, true);
    selectClip(reply.clip);
    $("upload-status").textContent = `${file.name}: ready`;
  } catch (e) {
    $("upload-status").textContent = "";
    showError(e.message);
  } finally {
    $("upload").value = "";
  }
}

async function start() {
  try {
    state.catalog = await call("/api/catalog");
  } catch (e) {
    return showError(e.message);
  }
  const c = state.catalog;
  c.clips.forEach((clip) => addClip(clip, false));
  if (!c.clips.length) {
    $("no-clips").hidden = false;
    $("no-clips").textContent = `no clips in ${c.data}/videos (python -m avqa.pipeline makes them): upload a video`;
  }
  for (const m of c.models) {
    const option = new Option(m.label + (m.unusable ? " (cannot answer here)" : ""), m.key);
    option.disabled = Boolean(m.unusable);
    option.title = m.unusable || "";
    $("model").add(option);
  }
  if (c.default_model) $("model").value = c.default_model;
  else showError("no model can answer: the bundled checkpoint net_grd_avst/avst_models/avst.pt is missing (git checkout restores it)");
  c.templates.forEach((t, i) => $("template").add(new Option(`${t.text}   [${t.type}]`, i)));
  $("template").addEventListener("change", fillTemplate);
  $("model").addEventListener("change", fillTemplate);
  $("set-questions").addEventListener("change", () => { if ($("set-questions").value) $("question").value = $("set-questions").value; });
  $("ask-form").addEventListener("submit", ask);
  $("upload").addEventListener("change", upload);
  $("video").addEventListener("timeupdate", follow);
  $("video").addEventListener("seeked", follow);
  window.addEventListener("resize", follow);
  document.body.dataset.ready = "1";
}

start();
