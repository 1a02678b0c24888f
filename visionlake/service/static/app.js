/* visionlake web UI: plain JavaScript, no build step. Talks to the same app's REST API with the
   signed-in key (kept in sessionStorage: gone when the tab closes). */
"use strict";

const S = { key: sessionStorage.getItem("vl_key") || "", me: null, areas: {}, collections: [] };
const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") n.className = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) n.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) n.append(kid.nodeType ? kid : String(kid));
  return n;
};

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(path, { method = "GET", json, form, raw } = {}) {
  const headers = { Authorization: `Bearer ${S.key}` };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form) body = form;
  const r = await fetch(path, { method, headers, body });
  if (r.status === 401 && path !== "/me") { signOut("Your key is no longer valid. Sign in again."); throw new ApiError(401, "unauthorized", "signed out"); }
  if (!r.ok) {
    let code = "error", message = `${r.status} ${r.statusText}`;
    try { const e = (await r.json()).error; code = e.code; message = e.message; } catch (_) { /* not JSON */ }
    if (r.status === 429) message = `Rate limited: retry in ${r.headers.get("Retry-After") || "a few"} s.`;
    throw new ApiError(r.status, code, message);
  }
  if (raw) return r;
  const type = r.headers.get("content-type") || "";
  return type.includes("application/json") ? r.json() : r.text();
}

/* Images need the key header, so they are fetched and shown as blob URLs. A page of 100 results or
   100 groups has hundreds of them: each is fetched only when it scrolls near the view, at most
   IMG_MAX at a time, and a 429 is retried after its Retry-After instead of showing a broken picture. */
const IMG_MAX = 6;
const IMG_Q = { active: 0, waiting: [] };
const imgSlot = () => new Promise((ok) => { if (IMG_Q.active < IMG_MAX) { IMG_Q.active++; ok(); } else IMG_Q.waiting.push(ok); });
const imgDone = () => { const next = IMG_Q.waiting.shift(); if (next) next(); else IMG_Q.active--; };
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function fetchImage(path) {
  for (let attempt = 0; ; attempt++) {
    await imgSlot();
    let r;
    try { r = await fetch(path, { headers: { Authorization: `Bearer ${S.key}` } }); } finally { imgDone(); }
    if (r.status === 429 && attempt < 6) { await sleep(1000 * Number(r.headers.get("Retry-After") || 1)); continue; }
    if (!r.ok) throw new ApiError(r.status, "error", `${r.status} ${r.statusText}`);
    return URL.createObjectURL(await r.blob());
  }
}

const imgObserver = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
  for (const e of entries) if (e.isIntersecting) { imgObserver.unobserve(e.target); e.target._load(); }
}, { rootMargin: "400px" }) : null;

async function authImg(path, alt = "") {
  const img = el("img", { alt, class: "pending" });
  img._load = async () => {
    try { img.src = await fetchImage(path); img.classList.remove("pending"); }
    catch (_) { img.alt = "unavailable"; img.classList.remove("pending"); img.classList.add("broken"); }
  };
  if (imgObserver) imgObserver.observe(img); else img._load();
  return img;
}

/* A page (re-)render that never leaves a blank page: an error is shown in place of the content. */
async function render(main, page) {
  main._gen = (main._gen || 0) + 1;  // pages compare it after each wait: a newer render wins
  try { await page(main); }
  catch (e) {
    if (e.status === 401) return;
    main.append(el("div", { class: "card error-card", role: "alert" }, empty("Something went wrong", e.message || String(e))));
  }
}

function toast(msg, isError = false) {
  const t = $("#toast");
  t.textContent = msg; t.className = "toast" + (isError ? " error" : ""); t.hidden = false;
  clearTimeout(toast._t); toast._t = setTimeout(() => { t.hidden = true; }, 4500);
}
const fail = (e) => { if (e.status !== 401) toast(e.message || String(e), true); };
const empty = (title, text) => el("div", { class: "empty" }, el("strong", {}, title), text);
const head = (title, sub, ...actions) => el("div", { class: "page-head" },
  el("div", {}, el("h1", {}, title), sub ? el("p", {}, sub) : null), el("div", { class: "row" }, ...actions));
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());

function collectionSelect(id, purpose, onchange) {
  const options = S.collections.filter((c) => !purpose || c.purpose === purpose);
  const sel = el("select", { id }, options.map((c) => el("option", { value: c.name }, `${c.name} (${c.purpose})`)));
  const saved = sessionStorage.getItem(`vl_col_${purpose || "any"}`);
  if (saved && options.some((c) => c.name === saved)) sel.value = saved;
  // store the choice first: the page re-render that follows reads it back
  sel.addEventListener("change", (ev) => {
    sessionStorage.setItem(`vl_col_${purpose || "any"}`, sel.value);
    if (onchange) onchange(ev);
  });
  return sel;
}

/* ------------------------------------------------------------------ sign in / shell */
async function signIn(key) {
  S.key = key.trim();
  try {
    S.me = await api("/me");
  } catch (e) {
    S.key = ""; throw e;
  }
  sessionStorage.setItem("vl_key", S.key);
  const health = await fetch("/health").then((r) => r.json());
  S.areas = health.areas || {};
  $("#signin").hidden = true; $("#shell").hidden = false;
  $("#whoami").textContent = `${S.me.name} · ${S.me.role}` + (S.me.collections.length ? ` · ${S.me.collections.join(", ")}` : "");
  for (const a of document.querySelectorAll("#nav a")) {
    const area = a.dataset.area, role = a.dataset.role;
    a.hidden = (area && !S.areas[area]) || (role === "admin" && S.me.role !== "admin");
  }
  if (!location.hash) location.hash = "#/collections";
  route();
}

function signOut(msg) {
  S.key = ""; S.me = null; sessionStorage.removeItem("vl_key");
  $("#shell").hidden = true; $("#signin").hidden = false;
  $("#signin-error").textContent = msg || "";
  $("#key-input").value = ""; $("#key-input").focus();
}

const PAGES = {};
async function route() {
  if (!S.me) return;
  const page = (location.hash.replace(/^#\//, "").split("/")[0]) || "collections";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  const main = $("#main");
  main.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    S.collections = await api("/collections");
  } catch (e) {
    if (e.status !== 401) main.replaceChildren(el("div", { class: "card error-card", role: "alert" }, empty("Something went wrong", e.message)));
    return;
  }
  await render(main, PAGES[page] || PAGES.collections);
}

/* ------------------------------------------------------------------ collections */
PAGES.collections = async (main) => {
  const rows = S.collections;
  const content = rows.length ? el("div", { class: "card table-card" }, el("table", {},
    el("thead", {}, el("tr", {}, el("th", {}, "Collection"), el("th", {}, "Purpose"), el("th", { class: "num" }, "Images"),
      el("th", { class: "num" }, "People"), el("th", { class: "num" }, "Faces"), el("th", {}, "Indexes"), el("th", {}, "Created"))),
    el("tbody", {}, rows.map((c) => el("tr", {},
      el("td", {}, el("strong", {}, c.name)), el("td", {}, el("span", { class: "badge" }, c.purpose)),
      el("td", { class: "num" }, fmt(c.images)), el("td", { class: "num" }, fmt(c.people)), el("td", { class: "num" }, fmt(c.faces)),
      el("td", {}, c.indexes.map((i) => `${i.space}: ${fmt(i.count)} (${i.kind || "?"})`).join(", ") || "–"),
      el("td", { class: "muted" }, (c.created_at || "").slice(0, 10)))))))
    : el("div", { class: "card" }, empty("No collections yet", S.me.role === "admin"
      ? "Create one below, then upload photos to it." : "Ask an admin to create one or to give this key access."));
  main.replaceChildren(head("Collections", `${rows.length} collection${rows.length === 1 ? "" : "s"} visible to this key`), content);
  if (S.me.role !== "viewer" && rows.length) main.append(uploadCard());
  if (S.me.role === "admin") main.append(createCollectionCard());
};

function createCollectionCard() {
  const name = el("input", { type: "text", id: "new-col-name", placeholder: "e.g. street-2024", required: true });
  const purpose = el("select", { id: "new-col-purpose" }, ["faces", "fashion", "plain"].map((p) => el("option", { value: p }, p)));
  const form = el("form", { class: "card stack", style: "margin-top:16px", onsubmit: async (ev) => {
    ev.preventDefault();
    try { await api("/collections", { method: "POST", json: { name: name.value, purpose: purpose.value } }); toast(`Created ${name.value}`); route(); }
    catch (e) { fail(e); }
  } }, el("h2", {}, "New collection"),
  el("div", { class: "row" }, el("div", { class: "field spacer" }, el("label", { for: "new-col-name" }, "Name"), name),
    el("div", { class: "field" }, el("label", { for: "new-col-purpose" }, "Purpose"), purpose),
    el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn primary", type: "submit" }, "Create"))));
  return form;
}

function jobLine(job) {
  const rep = job.report || {};
  if (job.status === "succeeded") return `Job #${job.id} done: ${fmt(rep.ingested)} ingested, ${fmt(rep.duplicates)} duplicate(s), ${fmt(rep.rejected)} rejected (${fmt(job.done)} file(s) seen).`;
  if (job.status === "failed" || job.status === "cancelled") return `Job #${job.id} ${job.status}: ${job.error || "no details"}`;
  return `Job #${job.id}: ${job.status} ${fmt(job.done)}${job.total ? " / " + fmt(job.total) : ""} file(s)`;
}

/* Poll a job until it ends; transient errors (429, a busy server) are waited out, not fatal. */
async function followJob(collection, job, show) {
  const FINAL = ["succeeded", "failed", "cancelled"];
  while (!FINAL.includes(job.status)) {
    show(job);
    await sleep(700);
    try { job = await api(`/collections/${encodeURIComponent(collection)}/jobs/${job.id}`); }
    catch (e) { if (e.status === 401 || e.status === 404) throw e; await sleep(1500); }
  }
  show(job);
  return job;
}

function uploadCard() {
  const sel = collectionSelect("upload-col", null);
  const files = el("input", { type: "file", id: "upload-files", multiple: true, accept: "image/*" });
  const status = el("div", { class: "muted", id: "upload-status", role: "status" }, S.lastJob ? jobLine(S.lastJob) : "");
  const form = el("form", { class: "card stack", style: "margin-top:16px", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!files.files.length) return toast("Choose photos first", true);
    const fd = new FormData();
    for (const f of files.files) fd.append("files", f);
    const col = sel.value;
    try {
      const started = await api(`/collections/${encodeURIComponent(col)}/jobs`, { method: "POST", form: fd });
      const job = await followJob(col, started, (j) => { status.textContent = jobLine(j); });
      S.lastJob = job;  // shown again by the re-rendered page below
      toast(jobLine(job), job.status !== "succeeded");
      route();
    } catch (e) { fail(e); status.textContent = `Upload failed: ${e.message}`; }
  } }, el("h2", {}, "Add photos"),
  el("div", { class: "row" }, el("div", { class: "field" }, el("label", { for: "upload-col" }, "Collection"), sel),
    el("div", { class: "field spacer" }, el("label", { for: "upload-files" }, "Photos"), files),
    el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn primary", type: "submit" }, "Upload & ingest"))), status);
  return form;
}

/* ------------------------------------------------------------------ identify */
PAGES.identify = async (main) => {
  const cols = S.collections.filter((c) => c.purpose === "faces");
  main.replaceChildren(head("Identify faces", "Upload a photo: every face is detected and matched against the enrolled people."));
  if (!cols.length) { main.append(el("div", { class: "card" }, empty("No faces collection", "Create a collection with purpose “faces” and enroll people first."))); return; }
  const sel = collectionSelect("identify-col", "faces");
  const file = el("input", { type: "file", id: "identify-file", accept: "image/*" });
  const far = el("select", { id: "identify-far" }, [["0.001", "1 in 1,000"], ["0.0001", "1 in 10,000"], ["0.01", "1 in 100"]]
    .map(([v, t]) => el("option", { value: v }, t)));
  const stage = el("div", { class: "card" }, empty("No photo yet", "Choose a photo to see the faces found in it."));
  const results = el("div", { class: "result-list" });
  const form = el("form", { class: "card stack", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!file.files.length) return toast("Choose a photo first", true);
    const f = file.files[0];
    const fd = new FormData(); fd.append("image", f); fd.append("far", far.value);
    const btn = $("button", form); btn.disabled = true; btn.textContent = "Identifying…";
    try {
      const out = await api(`/collections/${encodeURIComponent(sel.value)}/faces/identify`, { method: "POST", form: fd });
      drawFaces(stage, f, out.faces);
      results.replaceChildren(...out.faces.map((face, i) => el("div", { class: "result-item" },
        el("div", {}, el("strong", {}, `Face ${i + 1}: ${face.identity}`),
          el("div", { class: "muted" }, face.matches.length ? `similarity ${face.matches[0].score.toFixed(3)} (threshold ${out.threshold.toFixed(3)})`
            : `best ${face.best_score === null ? "–" : face.best_score.toFixed(3)} below threshold ${out.threshold.toFixed(3)}`),
          face.warning ? el("div", { class: "error-text" }, face.warning) : null),
        el("span", { class: "badge " + (face.identity === "unknown" ? "warn" : "ok") }, face.identity === "unknown" ? "unknown" : "match"))));
    } catch (e) { fail(e); stage.replaceChildren(empty("Could not identify", e.message)); results.replaceChildren(); }
    finally { btn.disabled = false; btn.textContent = "Identify"; }
  } }, el("h2", {}, "Photo"),
  el("div", { class: "field" }, el("label", { for: "identify-col" }, "Collection"), sel),
  el("div", { class: "field" }, el("label", { for: "identify-file" }, "Photo"), el("div", { class: "drop" }, file)),
  el("div", { class: "field" }, el("label", { for: "identify-far" }, "False accept rate"), far),
  el("button", { class: "btn primary", type: "submit" }, "Identify"),
  el("h2", { style: "margin-top:8px" }, "Results"), results);
  main.append(el("div", { class: "grid cols-2" }, form, stage));
};

function drawFaces(stage, file, faces) {
  const img = el("img", { alt: "uploaded photo" });
  const wrap = el("div", { class: "photo-stage", id: "photo-stage" }, img);
  img.onload = () => {
    const sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
    for (const f of faces) {
      const [l, t, r, b] = f.box;
      const known = f.identity !== "unknown";
      wrap.append(el("div", { class: "box" + (known ? "" : " unknown"),
        style: `left:${l * sx}px;top:${t * sy}px;width:${(r - l) * sx}px;height:${(b - t) * sy}px` },
        el("span", {}, known ? `${f.identity} · ${f.matches[0].score.toFixed(2)}` : "unknown")));
    }
  };
  img.src = URL.createObjectURL(file);
  stage.replaceChildren(wrap);
}

/* ------------------------------------------------------------------ people */
PAGES.people = async (main) => {
  const gen = main._gen;
  main.replaceChildren(head("People", "Enrolled people, and groups of faces of people not enrolled yet."));
  const cols = S.collections.filter((c) => c.purpose === "faces");
  if (!cols.length) { main.append(el("div", { class: "card" }, empty("No faces collection", "Create a faces collection first."))); return; }
  const again = () => render(main, PAGES.people);
  const sel = collectionSelect("people-col", "faces", again);
  const chosen = encodeURIComponent(sel.value);  // fixed for this render: a new choice makes a new render
  const col = () => chosen;
  const editor = S.me.role !== "viewer";
  main.append(el("div", { class: "row", style: "margin-bottom:16px" }, el("label", { for: "people-col" }, "Collection"), sel));
  const [people, groups] = await Promise.all([api(`/collections/${col()}/people`), api(`/collections/${col()}/groups`)]);
  if (main._gen !== gen) return;  // another render replaced this one while it waited

  const peopleCard = el("div", { class: "card table-card" }, people.length ? el("table", { id: "people-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", { class: "num" }, "Faces"), el("th", { class: "num" }, "Photos"),
      el("th", {}, "Consent"), el("th", {}, "Enrolled"), el("th", {}, ""))),
    el("tbody", {}, people.map((p) => el("tr", {}, el("td", {}, el("strong", {}, p.name)), el("td", { class: "num" }, fmt(p.faces)),
      el("td", { class: "num" }, fmt(p.photos)), el("td", { class: "muted" }, p.consent || "–"), el("td", { class: "muted" }, (p.created_at || "").slice(0, 10)),
      el("td", { class: "num" }, editor ? el("button", { class: "btn danger small", onclick: async () => {
        if (!confirm(`Erase every trace of ${p.name}? This cannot be undone.`)) return;
        try {
          const rep = await api(`/collections/${col()}/people/${p.id}`, { method: "DELETE" });
          toast(rep.ok ? `${p.name} forgotten; ${rep.checks.length} erasure checks passed` : `Erasure incomplete: see the report`, !rep.ok);
          again();
        } catch (e) { fail(e); }
      } }, "Forget") : null))))) : empty("Nobody enrolled", "Enroll a person below, or name a group of unknown faces."));
  main.append(el("h2", {}, `Enrolled people (${people.length})`), peopleCard);
  if (editor) main.append(enrollCard(sel, again));

  const selected = new Set();
  const groupTools = el("div", { class: "row" },
    editor ? el("button", { class: "btn small", onclick: async () => {
      try { const r = await api(`/collections/${col()}/groups/cluster`, { method: "POST", json: { min_size: 2 } }); toast(`${r.groups_created} new group(s)`); again(); } catch (e) { fail(e); }
    } }, "Group new faces") : null,
    editor ? el("button", { class: "btn small", onclick: async () => {
      const ids = [...selected];
      if (ids.length < 2) return toast("Tick two or more groups to merge", true);
      try { await api(`/collections/${col()}/groups/merge`, { method: "POST", json: { group_ids: ids } }); toast("Merged"); again(); } catch (e) { fail(e); }
    } }, "Merge selected") : null);
  main.append(el("div", { class: "page-head", style: "margin:28px 0 12px" }, el("h2", { style: "margin:0" }, `Unknown people (${groups.length} groups)`), groupTools));
  if (!groups.length) { main.append(el("div", { class: "card" }, empty("No groups", "Ingest photos into this collection, then group new faces."))); return; }
  const grid = el("div", { class: "grid cols-auto" });
  for (const g of groups) {
    const crops = el("div", { class: "crops" });
    const pick = new Set();
    for (const fid of g.sample_face_ids) {
      authImg(`/collections/${col()}/faces/${fid}/crop`, `face ${fid}`).then((img) => {
        img.dataset.face = fid;
        if (editor) img.onclick = () => { img.classList.toggle("selected"); img.classList.contains("selected") ? pick.add(fid) : pick.delete(fid); };
        crops.append(img);
      });
    }
    const check = el("input", { type: "checkbox", onchange: (ev) => (ev.target.checked ? selected.add(g.id) : selected.delete(g.id)) });
    grid.append(el("div", { class: "card group-card" },
      el("div", { class: "row" }, editor ? check : null, el("span", { class: "title" }, g.label || `Group ${g.id}`), el("span", { class: "spacer" }),
        el("span", { class: "badge" }, `${g.faces} faces`)),
      crops,
      editor ? el("div", { class: "row" },
        el("button", { class: "btn small", onclick: async () => {
          const label = prompt("Label for this group", g.label || ""); if (!label) return;
          try { await api(`/collections/${col()}/groups/${g.id}`, { method: "PATCH", json: { label } }); again(); } catch (e) { fail(e); }
        } }, "Rename"),
        el("button", { class: "btn small", onclick: async () => {
          try {
            const r = await api(`/collections/${col()}/groups/${g.id}/split`, { method: "POST", json: pick.size ? { face_ids: [...pick] } : {} });
            toast(`Split off ${r.faces_moved} face(s)`); again();
          } catch (e) { fail(e); }
        } }, "Split"),
        el("button", { class: "btn small", onclick: async () => {
          const person = prompt("Enroll this group as (name)"); if (!person) return;
          const consent = prompt("Consent / legal basis record"); if (!consent) return;
          try { await api(`/collections/${col()}/groups/${g.id}/name`, { method: "POST", json: { person, consent } }); again(); } catch (e) { fail(e); }
        } }, "Enroll as…")) : null));
  }
  main.append(grid, el("p", { class: "muted" }, "Tip: click face crops to choose which faces “Split” moves to a new group; without a choice the group is re-clustered more strictly."));
};

function enrollLine(r) {
  const total = (r.face_ids || []).length;
  const linked = r.faces_linked || 0;
  return `Enrolled ${r.person}: ${total} face(s) from ${r.photos} photo(s)` +
    (linked ? ` (${linked} already in the lake, ${r.faces_added} new)` : "");
}

function enrollCard(sel, done) {
  const name = el("input", { type: "text", id: "enroll-name", placeholder: "Full name", required: true });
  const consent = el("input", { type: "text", id: "enroll-consent", placeholder: "e.g. signed consent form #123, 2024-05-01", required: true });
  const files = el("input", { type: "file", id: "enroll-files", multiple: true, accept: "image/*", required: true });
  return el("form", { class: "card stack", style: "margin-top:16px", onsubmit: async (ev) => {
    ev.preventDefault();
    const fd = new FormData(); fd.append("person", name.value); fd.append("consent", consent.value);
    for (const f of files.files) fd.append("files", f);
    try { const r = await api(`/collections/${encodeURIComponent(sel.value)}/people`, { method: "POST", form: fd }); toast(enrollLine(r)); done(); }
    catch (e) { fail(e); }
  } }, el("h2", {}, "Enroll a person"),
  el("div", { class: "row" }, el("div", { class: "field spacer" }, el("label", { for: "enroll-name" }, "Name"), name),
    el("div", { class: "field spacer" }, el("label", { for: "enroll-consent" }, "Consent record"), consent)),
  el("div", { class: "row" }, el("div", { class: "field spacer" }, el("label", { for: "enroll-files" }, "Photos (the person alone)"), files),
    el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn primary", type: "submit" }, "Enroll"))));
}

/* ------------------------------------------------------------------ fashion */
PAGES.fashion = async (main) => {
  const gen = main._gen;
  main.replaceChildren(head("Fashion search", "Find looks by words or by a photo, narrowed by catalog metadata."));
  const cols = S.collections.filter((c) => c.purpose === "fashion");
  if (!cols.length) { main.append(el("div", { class: "card" }, empty("No fashion collection", "Create a collection with purpose “fashion” and ingest product or street photos."))); return; }
  const sel = collectionSelect("fashion-col", "fashion", () => render(main, PAGES.fashion));
  const chosen = encodeURIComponent(sel.value);  // fixed for this render: a new choice makes a new render
  const col = () => chosen;
  const facets = await api(`/collections/${col()}/fashion/facets`);
  if (main._gen !== gen) return;  // another render replaced this one while it waited
  const text = el("input", { type: "text", id: "fashion-text", placeholder: "e.g. red summer dress" });
  const photo = el("input", { type: "file", id: "fashion-photo", accept: "image/*" });
  const top = el("select", { id: "fashion-top" }, [12, 24, 48, 100].map((n) => el("option", { value: n, selected: n === 24 }, `${n} results`)));
  const preferred = ["gender", "masterCategory", "subCategory", "articleType", "baseColour", "season", "year", "usage"];
  const shown = facets.sort((a, b) => (preferred.indexOf(a.field) + 99 * (preferred.indexOf(a.field) < 0)) -
    (preferred.indexOf(b.field) + 99 * (preferred.indexOf(b.field) < 0))).slice(0, 8);
  const filters = shown.map((f) => el("div", { class: "field" }, el("label", { for: `f-${f.field}` }, f.field),
    el("select", { id: `f-${f.field}`, "data-field": f.field }, el("option", { value: "" }, "any"),
      Object.entries(f.values).sort().map(([v, n]) => el("option", { value: v }, `${v} (${n})`)))));
  const results = el("div", { id: "fashion-results" }, el("div", { class: "card" }, empty("No search yet", "Type a few words or choose a photo, then search.")));
  const where = () => Object.fromEntries(filters.map((f) => $("select", f)).filter((s) => s.value).map((s) => [s.dataset.field, s.value]));
  const run = async (ev) => {
    ev.preventDefault();
    const btn = $("button[type=submit]", form); btn.disabled = true;
    try {
      let out;
      if (photo.files.length) {
        const fd = new FormData(); fd.append("image", photo.files[0]); fd.append("top", top.value); fd.append("where", JSON.stringify(where()));
        out = await api(`/collections/${col()}/fashion/search-image`, { method: "POST", form: fd });
      } else if (text.value.trim()) {
        out = await api(`/collections/${col()}/fashion/search`, { method: "POST", json: { text: text.value.trim(), where: where(), top: Number(top.value) } });
      } else { toast("Type words or choose a photo", true); return; }
      showResults(results, out);
    } catch (e) { fail(e); results.replaceChildren(el("div", { class: "card" }, empty("Search failed", e.message))); }
    finally { btn.disabled = false; }
  };
  const form = el("form", { class: "card stack", onsubmit: run },
    el("div", { class: "row" }, el("div", { class: "field" }, el("label", { for: "fashion-col" }, "Collection"), sel),
      el("div", { class: "field spacer" }, el("label", { for: "fashion-text" }, "Words"), text),
      el("div", { class: "field" }, el("label", { for: "fashion-photo" }, "…or a photo"), photo),
      el("div", { class: "field" }, el("label", { for: "fashion-top" }, "Show"), top),
      el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn primary", type: "submit" }, "Search"))),
    filters.length ? el("div", { class: "filters" }, filters) : null);
  main.append(form, el("div", { style: "height:16px" }), results);
};

function showResults(target, out) {
  if (!out.results.length) { target.replaceChildren(el("div", { class: "card" }, empty("No matches", "Loosen the filters or try other words."))); return; }
  const grid = el("div", { class: "results" });
  for (const r of out.results) {
    const m = r.meta || {};
    const title = m.productDisplayName || m.articleType || `Image ${r.image_id}`;
    const sub = [m.baseColour, m.season, m.year].filter(Boolean).join(" · ");
    const thumb = el("div", { class: "thumb" });
    if (r.thumbnail_url) authImg(r.thumbnail_url, title).then((img) => thumb.append(img));
    grid.append(el("div", { class: "tile" }, thumb, el("div", { class: "meta" }, el("div", {}, el("strong", {}, title)),
      el("div", { class: "muted" }, sub || "\u00a0"), el("div", { class: "score" }, `score ${r.score.toFixed(3)}`))));
  }
  target.replaceChildren(el("p", { class: "muted" }, `${out.results.length} results for “${out.query}”`), grid);
}

/* ------------------------------------------------------------------ admin */
PAGES.admin = async (main) => {
  main.replaceChildren(head("Admin", "Keys, retention and the audit log of biometric operations."));
  const unscoped = !S.me.collections.length;
  if (unscoped) {
    const [keys, ret] = await Promise.all([api("/admin/keys"), api("/admin/retention")]);
    const role = el("select", { id: "key-role" }, ["viewer", "editor", "admin"].map((r) => el("option", { value: r }, r)));
    const kname = el("input", { type: "text", id: "key-name", placeholder: "who or what uses it" });
    const scope = el("input", { type: "text", id: "key-scope", placeholder: "collections, comma separated (empty = all)" });
    const shown = el("div");
    main.append(el("div", { class: "card table-card" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "Id"), el("th", {}, "Name"), el("th", {}, "Role"), el("th", {}, "Collections"),
        el("th", {}, "Last used"), el("th", {}, "Status"), el("th", {}, ""))),
      el("tbody", {}, keys.map((k) => el("tr", {}, el("td", {}, k.id), el("td", {}, el("strong", {}, k.name)), el("td", {}, k.role),
        el("td", {}, k.collections.join(", ") || "all"), el("td", { class: "muted" }, (k.last_used_at || "never").slice(0, 19).replace("T", " ")),
        el("td", {}, el("span", { class: "badge " + (k.revoked ? "bad" : "ok") }, k.revoked ? "revoked" : "active")),
        el("td", { class: "num" }, !k.revoked && k.id !== S.me.key_id ? el("button", { class: "btn danger small", onclick: async () => {
          if (!confirm(`Revoke key ${k.name}?`)) return;
          try { await api(`/admin/keys/${k.id}`, { method: "DELETE" }); PAGES.admin(main); } catch (e) { fail(e); }
        } }, "Revoke") : null)))))));
    main.append(el("form", { class: "card stack", style: "margin-top:16px", onsubmit: async (ev) => {
      ev.preventDefault();
      const cols = scope.value.split(",").map((s) => s.trim()).filter(Boolean);
      try {
        const k = await api("/admin/keys", { method: "POST", json: { role: role.value, name: kname.value || null, collections: cols } });
        shown.replaceChildren(el("p", {}, "Copy this key now; it is not shown again:"), el("div", { class: "key-once" }, k.key));
      } catch (e) { fail(e); }
    } }, el("h2", {}, "New API key"), el("div", { class: "row" },
      el("div", { class: "field" }, el("label", { for: "key-role" }, "Role"), role),
      el("div", { class: "field spacer" }, el("label", { for: "key-name" }, "Name"), kname),
      el("div", { class: "field spacer" }, el("label", { for: "key-scope" }, "Collections"), scope),
      el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn primary", type: "submit" }, "Create key"))), shown));
    const days = el("input", { type: "number", id: "ret-days", min: 0, value: ret.days ?? "", placeholder: "keep forever" });
    main.append(el("form", { class: "card stack", style: "margin-top:16px", onsubmit: async (ev) => {
      ev.preventDefault();
      try { await api("/admin/retention", { method: "PUT", json: { days: days.value === "" ? null : Number(days.value) } }); toast("Retention saved"); }
      catch (e) { fail(e); }
    } }, el("h2", {}, "Retention"), el("p", { class: "muted", style: "margin:0" }, "Stored probe photos and crops of faces that match no enrolled person are deleted after this many days."),
    el("div", { class: "row" }, el("div", { class: "field" }, el("label", { for: "ret-days" }, "Days"), days),
      el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn primary", type: "submit" }, "Save")),
      el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn", type: "button", onclick: async () => {
        try { const r = await api("/admin/retention/purge", { method: "POST" }); toast(`Purged ${r.probe_photos_deleted} probe photo(s), ${r.face_crops_deleted} crop(s), ${r.trend_tables_deleted} trend table(s)`); }
        catch (e) { fail(e); }
      } }, "Purge now")))));
  }
  if (S.areas.faces) {
    const log = await api("/audit?limit=50");
    main.append(el("h2", { style: "margin-top:28px" }, "Audit log"), el("div", { class: "card table-card" }, log.length ? el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "When"), el("th", {}, "Who"), el("th", {}, "Action"), el("th", {}, "Collection"), el("th", {}, "Result"), el("th", {}, "Detail"))),
      el("tbody", {}, log.map((e) => el("tr", {}, el("td", { class: "muted" }, (e.at || "").slice(0, 19).replace("T", " ")), el("td", {}, e.actor),
        el("td", {}, el("span", { class: "badge" }, e.action)), el("td", {}, e.collection || "–"), el("td", {}, (e.result_ids || []).join(", ") || "–"),
        el("td", { class: "muted" }, e.detail || ""))))) : empty("No entries", "Identify, verify, enroll and forget calls appear here.")));
  }
};

/* ------------------------------------------------------------------ areas added by their modules */
window.VL = { S, api, el, $, authImg, toast, fail, empty, head, fmt, collectionSelect, PAGES };

/* ------------------------------------------------------------------ boot */
document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#signin-error").textContent = "";
    try { await signIn($("#key-input").value); }
    catch (e) { $("#signin-error").textContent = e.status === 401 ? "That key is not valid (or was revoked)." : e.message; }
  });
  $("#signout").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", route);
  if (S.key) signIn(S.key).catch(() => signOut()); else signOut();
});
