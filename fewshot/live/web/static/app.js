// The page: one script, a view per address (/, /groups/G, /groups/G/enroll, /groups/G/listen,
// /groups/G/recording), each built from the JSON API. Names are only ever set as text.
"use strict";

const view = document.getElementById("view");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (k === "style") Object.assign(node.style, v); // set through the CSSOM: the page allows no inline styles
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  const body = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

const enc = encodeURIComponent;
const groupPath = (g) => `/groups/${enc(g)}`;
const apiGroup = (g) => `/api/groups/${enc(g)}`;
const secs = (s) => `${Math.floor(s / 60)}:${(s % 60).toFixed(1).padStart(4, "0")}`;

function colour(name) {
  if (name === "unknown") return "#8a8d93";
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) % 360;
  return `hsl(${h}, 60%, 38%)`;
}

function status(node, text, kind = "") {
  node.textContent = text;
  node.className = kind;
}

function show(title, ...children) {
  document.title = `${title} - fewshot`;
  view.replaceChildren(el("h1", { text: title }), ...children.filter((c) => c !== null && c !== undefined));
}

function download(name, text, type) {
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
}

// ---------------------------------------------------------------- groups
async function groupsView() {
  const groups = await api("/api/groups");
  const name = el("input", { type: "text", id: "new-group", required: true, autocomplete: "off" });
  const list = groups.length
    ? el("ul", {}, groups.map((g) => el("li", {}, el("a", { href: groupPath(g.name), text: g.name }),
      ` ${g.members.length} ${g.members.length === 1 ? "person" : "people"}: ${g.members.join(", ")}`)))
    : el("p", { class: "muted", text: "No groups yet: start one below by enrolling its first person." });
  const form = el("form", { class: "row", onsubmit: (ev) => {
    ev.preventDefault();
    if (name.value.trim()) location.href = `${groupPath(name.value.trim())}/enroll`;
  } }, el("label", { for: "new-group", text: "New group" }), name,
  el("button", { type: "submit", "data-testid": "new-group", text: "Enroll its first person" }));
  show("Groups", list, el("h2", { text: "Start a group" }), form);
}

async function groupView(g) {
  const info = await api(apiGroup(g));
  const msg = el("p", { role: "status", "aria-live": "polite" });
  const act = async (what, fn) => {
    try {
      status(msg, `${what} ...`);
      await fn();
      route();
    } catch (e) { status(msg, e.message, "error"); }
  };
  const rows = info.members.map((m) => el("tr", {},
    el("td", {}, el("span", { class: "swatch", style: { background: colour(m.name) } }), m.name),
    el("td", { class: "num", text: `${m.seconds.toFixed(1)} s` }),
    el("td", { class: "hide-narrow", text: m.sources.join(", ") + (m.audio_kept ? " (audio kept)" : "") }),
    el("td", {}, el("a", { class: "button secondary", text: "Re-enroll",
      href: `${groupPath(g)}/enroll?name=${enc(m.name)}&replace=1` }), " ",
    el("button", { class: "danger", text: "Remove", "aria-label": `Remove ${m.name}`, onclick: () => {
      if (confirm(`Remove ${m.name} and their voiceprint from ${g}?`)) {
        act(`Removing ${m.name}`, () => api(`${apiGroup(g)}/members/${enc(m.name)}`, { method: "DELETE" }));
      }
    } }))));
  show(`Group ${g}`,
    el("div", { class: "row" },
      el("a", { class: "button", href: `${groupPath(g)}/listen`, text: "Listen live" }),
      el("a", { class: "button secondary", href: `${groupPath(g)}/enroll`, text: "Enroll someone" }),
      el("a", { class: "button secondary", href: `${groupPath(g)}/recording`, text: "A recording" })),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "Person" }), el("th", { class: "num", text: "Speech" }),
      el("th", { class: "hide-narrow", text: "From" }), el("th", { text: "" }))), el("tbody", {}, rows)),
    info.note ? el("p", { class: "warning", text: info.note }) : null,
    el("p", { class: "muted", text: `Extractor ${info.extractor}${info.extractor !== info.model ? ` (the server runs ${info.model})` : ""}.` }),
    el("div", { class: "row" },
      info.upgradable ? el("button", { class: "secondary", text: "Upgrade to the server's extractor",
        onclick: () => act("Re-embedding", () => api(`${apiGroup(g)}/upgrade`, { method: "POST" })) }) : null,
      el("button", { class: "danger", text: "Delete the group", onclick: async () => {
        if (!confirm(`Delete group ${g} and every voiceprint in it?`)) return;
        try {
          await api(apiGroup(g), { method: "DELETE" });
          location.href = "/";
        } catch (e) { status(msg, e.message, "error"); }
      } })), msg);
}

// ---------------------------------------------------------------- enroll
const enrolled = (r) => (r.added
  ? `Added ${r.seconds_used.toFixed(1)} s to ${r.name} in group ${r.group} (now ${r.total_seconds.toFixed(1)} s); tick "Replace" to start over.`
  : `Enrolled ${r.name} in group ${r.group}: ${r.seconds_used.toFixed(1)} s of speech, ${r.segments} segments.`);

async function enrollView(g) {
  const params = new URLSearchParams(location.search);
  const [passages, info] = await Promise.all([api("/api/passages"), api("/api/info")]);
  let take = 0;
  const name = el("input", { type: "text", id: "person", value: params.get("name") || "", autocomplete: "off",
    "data-testid": "person" });
  const seconds = el("input", { type: "number", id: "seconds", value: 20, min: info.record_seconds[0],
    max: info.record_seconds[1], step: 1 });
  const replace = el("input", { type: "checkbox", id: "replace", checked: params.get("replace") === "1" });
  const force = el("input", { type: "checkbox", id: "force" });
  const text = el("blockquote", { class: "passage" });
  const showPassage = () => {
    const p = passages[take % passages.length];
    text.replaceChildren(el("p", { text: p.text }), el("footer", { class: "muted", text: p.source }));
  };
  showPassage();
  const meter = el("meter", { id: "level", min: -60, max: 0, low: -40, high: -6, optimum: -20, value: -60 });
  const counter = el("span", { "data-testid": "speech-seconds", text: "speech 0.0 s" });
  const alert = el("p", { class: "error", role: "alert" });
  const msg = el("p", { role: "status", "aria-live": "polite", "data-testid": "enroll-status" });
  const record = el("button", { "data-testid": "record", text: "Start recording" });
  const again = el("button", { class: "secondary", text: "Record again", hidden: true });
  let session = null;
  const opts = () => `?seconds=${enc(seconds.value)}&replace=${replace.checked ? 1 : 0}&force=${force.checked ? 1 : 0}`;
  const start = async () => {
    const who = name.value.trim();
    if (!who) { status(msg, "Type the person's name first.", "error"); name.focus(); return; }
    again.hidden = true;
    record.textContent = "Stop";
    status(alert, "");
    status(msg, `Recording ${who}: read the passage aloud.`);
    try {
      session = await Mic.start(`${apiGroup(g)}/members/${enc(who)}/record${opts()}`, {
        onMessage: (m) => {
          if (m.target_s) counter.textContent = `speech 0.0 / ${m.target_s} s`;
          if (m.speech_s !== undefined) {
            meter.value = Math.max(-60, m.level_dbfs);
            counter.textContent = `speech ${m.speech_s.toFixed(1)} / ${seconds.value} s`;
            status(alert, m.alert);
          }
          if (m.enrolling) { Mic.stop(session); status(msg, `Enrolling ${who} ...`); }
          if (m.enrolled) {
            const r = m.enrolled;
            status(msg, enrolled(r));
            if (r.warnings.length) status(alert, r.warnings.map((w) => `warning: ${w}`).join(" "), "warning");
            replace.checked = true;
            finish();
          }
          if (m.error) {
            status(msg, m.error, "error");
            finish();
          }
        },
        onClose: (reason) => { if (reason) status(msg, reason, "error"); finish(); },
      });
    } catch (e) {
      status(msg, `No microphone: ${e.message}. Enroll from files below instead.`, "error");
      finish();
    }
  };
  const finish = () => {
    record.textContent = "Start recording";
    again.hidden = false;
    meter.value = -60;
    session = null;
  };
  record.onclick = () => (session ? Mic.stop(session) : start());
  again.onclick = () => { take += 1; showPassage(); start(); };
  const files = el("input", { type: "file", id: "files", multiple: true, accept: "audio/*", "data-testid": "enroll-files" });
  const upload = el("button", { class: "secondary", "data-testid": "enroll-upload", text: "Enroll from files", onclick: async () => {
    const who = name.value.trim();
    if (!who || !files.files.length) { status(msg, "Type the person's name and choose their files.", "error"); return; }
    const body = new FormData();
    for (const f of files.files) body.append("files", f);
    body.append("replace", replace.checked ? "1" : "0");
    body.append("force", force.checked ? "1" : "0");
    status(msg, `Enrolling ${who} ...`);
    try {
      const r = await api(`${apiGroup(g)}/members/${enc(who)}`, { method: "POST", body });
      status(msg, enrolled(r));
      status(alert, r.warnings.map((w) => `warning: ${w}`).join(" "), "warning");
    } catch (e) { status(msg, e.message, "error"); }
  } });
  show(`Enroll into ${g}`,
    el("div", { class: "row" }, el("label", { for: "person", text: "Name" }), name,
      el("label", { for: "seconds", text: "Seconds of speech" }), seconds),
    el("div", { class: "row" }, el("label", {}, replace, " Replace an earlier enrollment")),
    el("div", { class: "row" }, el("label", {}, force, " Enroll even if clipped or more than one voice")),
    el("h2", { text: "From the microphone" }),
    el("p", { text: "Read this aloud in your normal voice until the counter is full (silence does not count):" }),
    text, el("div", { class: "row" }, record, again, el("label", { for: "level", text: "Level" }), meter, counter),
    alert, msg,
    el("h2", { text: "From recordings" }),
    el("div", { class: "row" }, el("label", { for: "files", text: "Audio files" }), files, upload),
    el("p", {}, el("a", { href: groupPath(g), text: `Back to group ${g}` })));
}

// ---------------------------------------------------------------- turns on a timeline
function timeline(scale = 24) {
  const track = el("div", { class: "track" });
  const box = el("div", { class: "timeline", role: "img", "aria-label": "timeline of turns" }, track);
  return {
    box,
    add(t) {
      track.append(el("div", { class: "turn", title: `${t.speaker} ${secs(t.start)}-${secs(t.end)}`,
        style: { left: `${t.start * scale}px`, width: `${Math.max(2, (t.end - t.start) * scale)}px`,
          background: colour(t.speaker) },
        text: t.speaker }));
      track.style.width = `${Math.max(track.scrollWidth, t.end * scale + 40)}px`;
    },
    scroll() { box.scrollLeft = box.scrollWidth; },
  };
}

// ---------------------------------------------------------------- listen
async function listenView(g) {
  const info = await api(apiGroup(g));
  const now = el("span", { "data-testid": "now-speaking", "aria-live": "polite", text: "-" });
  const score = el("span", { class: "score" });
  const meter = el("meter", { id: "level", min: -60, max: 0, low: -40, high: -6, optimum: -20, value: -60 });
  const msg = el("p", { role: "status", "aria-live": "polite" });
  const list = el("ol", { class: "turns", "data-testid": "turns" });
  const line = timeline();
  const button = el("button", { "data-testid": "listen", text: "Listen" });
  const latency = (window.fewshotLatency = []); // ms from the start of each turn's speech to its name on the page
  const lag = (window.fewshotLag = []); // ms from the capture of a block's last sample to the server's answer
  let session = null, shown = null, offset = 0;
  const opened = performance.now();
  const addTurn = (t) => {
    t = { ...t, start: t.start + offset, end: t.end + offset };
    line.add(t);
    line.scroll();
    list.append(el("li", { "data-testid": "turn", "data-speaker": t.speaker },
      el("span", { class: "swatch", style: { background: colour(t.speaker) } }),
      `${secs(t.start)} - ${secs(t.end)}  ${t.speaker} (${t.score.toFixed(2)})`));
    list.scrollTop = list.scrollHeight;
  };
  const start = async () => {
    button.textContent = "Stop";
    offset = (performance.now() - opened) / 1000; // turns are placed in seconds since the page opened
    status(msg, `Listening for ${info.members.map((m) => m.name).join(", ")} ...`);
    try {
      session = await Mic.start(`${apiGroup(g)}/listen`, {
        onMessage: (m, s) => {
          if (m.error) { status(msg, m.error, "error"); return; }
          if (m.level_dbfs !== undefined) meter.value = Math.max(-60, m.level_dbfs);
          if (m.heard_s !== undefined && lag.length < 10000) lag.push(Math.round(performance.now() - (s.t0 + m.heard_s * 1000)));
          (m.final || []).forEach(addTurn);
          const cur = m.current;
          if (cur && `${cur.speaker}@${cur.start}` !== shown) { // a new turn, or its name revised
            shown = `${cur.speaker}@${cur.start}`;
            latency.push({ speaker: cur.speaker, start: cur.start + offset,
              ms: Math.round(performance.now() - (s.t0 + cur.start * 1000)) });
            now.dataset.latencyMs = latency[latency.length - 1].ms;
          }
          if (cur) { // the name is announced when it changes, not at each new score
            if (now.dataset.speaker !== cur.speaker) {
              now.replaceChildren(el("span", { class: "swatch", style: { background: colour(cur.speaker) } }),
                cur.speaker);
              now.dataset.speaker = cur.speaker;
            }
            score.textContent = `score ${cur.score.toFixed(2)}`;
          } else if (m.done) {
            now.textContent = "-";
            now.dataset.speaker = "";
            score.textContent = "";
          }
        },
        onClose: (reason) => {
          if (reason) status(msg, reason, "error");
          else status(msg, "Stopped.");
          button.textContent = "Listen";
          meter.value = -60;
          session = null;
        },
      });
    } catch (e) {
      status(msg, `No microphone: ${e.message}`, "error");
      button.textContent = "Listen";
      session = null;
    }
  };
  button.onclick = () => (session ? Mic.stop(session) : start());
  show(`Listening: ${g}`,
    el("div", { class: "row" }, button, el("label", { for: "level", text: "Level" }), meter),
    el("p", { class: "muted", text: "Now speaking" }), el("div", { class: "now" }, now, score), msg,
    el("h2", { text: "Turns" }), line.box, list,
    el("p", {}, el("a", { href: groupPath(g), text: `Back to group ${g}` })));
}

// ---------------------------------------------------------------- a recording
async function recordingView(g) {
  const file = el("input", { type: "file", id: "recording", accept: "audio/*", "data-testid": "recording-file" });
  const msg = el("p", { role: "status", "aria-live": "polite", "data-testid": "recording-status" });
  const out = el("div");
  const go = el("button", { "data-testid": "find-turns", text: "Find the turns", onclick: async () => {
    if (!file.files.length) { status(msg, "Choose a recording first.", "error"); return; }
    const body = new FormData();
    body.append("file", file.files[0]);
    status(msg, `Listening to ${file.files[0].name} ...`);
    out.replaceChildren();
    try {
      const r = await api(`${apiGroup(g)}/identify`, { method: "POST", body });
      status(msg, `${r.file}: mostly ${r.speaker} (score ${r.score.toFixed(3)}); ${r.turns.length} turns.`);
      const line = timeline(Math.max(4, Math.min(60, 840 / Math.max(1, ...r.turns.map((t) => t.end)))));
      r.turns.forEach(line.add);
      const stem = r.file.replace(/\.[^.]*$/, "");
      out.replaceChildren(line.box,
        el("table", { "data-testid": "recording-turns" },
          el("thead", {}, el("tr", {}, el("th", { class: "num", text: "Start (s)" }), el("th", { class: "num", text: "End (s)" }),
            el("th", { text: "Speaker" }), el("th", { class: "num", text: "Score" }))),
          el("tbody", {}, r.turns.map((t) => el("tr", { "data-testid": "recording-turn", "data-speaker": t.speaker },
            el("td", { class: "num", text: t.start.toFixed(2) }), el("td", { class: "num", text: t.end.toFixed(2) }),
            el("td", {}, el("span", { class: "swatch", style: { background: colour(t.speaker) } }), t.speaker),
            el("td", { class: "num", text: t.score.toFixed(3) }))))),
        el("div", { class: "row" },
          el("button", { class: "secondary", text: "Download RTTM", onclick: () => download(`${stem}.rttm`, r.rttm, "text/plain") }),
          el("button", { class: "secondary", text: "Download JSON",
            onclick: () => download(`${stem}.json`, JSON.stringify(r, null, 2), "application/json") })));
    } catch (e) { status(msg, e.message, "error"); }
  } });
  show(`A recording: ${g}`,
    el("div", { class: "row" }, el("label", { for: "recording", text: "Recording" }), file, go), msg, out,
    el("p", {}, el("a", { href: groupPath(g), text: `Back to group ${g}` })));
}

// ---------------------------------------------------------------- routing
async function route() {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const views = { undefined: groupView, enroll: enrollView, listen: listenView, recording: recordingView };
  try {
    if (parts.length === 0) await groupsView();
    else if (parts[0] === "groups" && parts.length <= 3 && views[parts[2]]) await views[parts[2]](parts[1]);
    else show("Not found", el("p", {}, el("a", { href: "/", text: "Groups" })));
  } catch (e) {
    show("Error", el("p", { class: "error", text: e.message }), el("p", {}, el("a", { href: "/", text: "Groups" })));
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) { // the cookie now carries it: keep it out of the address bar and bookmarks
    params.delete("token");
    history.replaceState(null, "", location.pathname + (params.toString() ? `?${params}` : ""));
  }
  api("/api/info").then((i) => {
    document.getElementById("report-link").hidden = !i.report;
    document.getElementById("footer").textContent = `Model ${i.model}; enrollments in ${i.store}.`;
  }).catch(() => {});
  await route();
}

main();
