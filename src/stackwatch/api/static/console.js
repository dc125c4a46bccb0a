// stackwatch web console: one page, no build step, no external assets. Hash routes:
//   #/login  #/timeline?vm=|host=|project=|provider=  #/vm/REF  #/inventory/KIND
// Every call sends the token from the login page (sessionStorage) as a Bearer header; the WebSocket stream
// cannot send headers, so login also sets a SameSite=Strict cookie the server accepts on same-origin handshakes.
"use strict";

const GROUP_COLORS = {power: "var(--power)", creation: "var(--creation)", deletion: "var(--deletion)",
                      migration: "var(--migration)"};
const DIMENSIONS = ["vm", "host", "project", "provider"];
const POLL_MS = 3000;
const $ = (sel, root = document) => root.querySelector(sel);
const main = () => $("#main");
let live = null;  // the current view's live-update handle {close()}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// -- authentication ------------------------------------------------------------------------------------
const token = () => sessionStorage.getItem("sw_token");

function setToken(value) {
  if (value) {
    sessionStorage.setItem("sw_token", value);
    document.cookie = `stackwatch_token=${encodeURIComponent(value)}; path=/; SameSite=Strict`;
  } else {
    sessionStorage.removeItem("sw_token");
    document.cookie = "stackwatch_token=; path=/; SameSite=Strict; max-age=0";
  }
}

class ApiError extends Error {
  constructor(status, detail) { super(`${status}: ${detail}`); this.status = status; }
}

async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
  const headers = token() ? {Authorization: `Bearer ${token()}`} : {};
  const resp = await fetch(url, {headers});
  if (resp.status === 401) { location.hash = "#/login"; throw new ApiError(401, "log in first"); }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, body.detail || resp.statusText);
  return body;
}

async function showWho() {
  try {
    const me = await api("/api/v1/whoami");
    $("#who").textContent = `${me.name} · ${me.role}${me.project_id ? " of " + me.project_id : ""}`;
    $("#logout").hidden = !token();
    return me;
  } catch (e) { $("#who").textContent = ""; return null; }
}

function loginPage() {
  const input = el("input", {type: "password", id: "token", placeholder: "sw_... or a Keystone token", autocomplete: "off"});
  const msg = el("div", {class: "status"});
  const form = el("form", {class: "card login", onsubmit: async (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    const me = await showWho();
    if (me) location.hash = "#/timeline" + (me.project_id ? `?project=${encodeURIComponent(me.project_id)}` : "");
    else { setToken(null); msg.textContent = "this token was refused"; msg.className = "status error"; }
  }}, el("h2", {}, "Log in"), el("label", {}, "API token", input),
     el("button", {class: "primary", type: "submit"}, "Log in"), msg);
  main().replaceChildren(form);
  input.focus();
}

// -- timeline ------------------------------------------------------------------------------------------
function parseQuery(hash) {
  const q = new URLSearchParams(hash.split("?")[1] || "");
  return Object.fromEntries([...q.entries()]);
}

function timelinePage(query) {
  const dim = DIMENSIONS.find((d) => query[d]) || "project";
  const select = el("select", {name: "dim"}, DIMENSIONS.map((d) => el("option", d === dim ? {selected: ""} : {}, d)));
  const value = el("input", {name: "value", size: 40, value: query[dim] || "", placeholder: "uuid, name or id"});
  const typeFilter = el("input", {name: "type", id: "type-filter", value: query.type || "", placeholder: "compute.instance.*"});
  const form = el("form", {class: "bar", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({[select.value]: value.value.trim()});
    if (typeFilter.value.trim()) q.set("type", typeFilter.value.trim());
    location.hash = "#/timeline?" + q;
  }}, el("label", {}, "timeline of", select), el("label", {}, "value", value),
     el("label", {}, "event types", typeFilter), el("button", {class: "primary"}, "Show"),
     el("button", {type: "button", id: "zoom-in", title: "zoom in"}, "+"),
     el("button", {type: "button", id: "zoom-out", title: "zoom out"}, "−"),
     el("button", {type: "button", id: "zoom-fit"}, "fit"), el("span", {id: "live"}, "live: off"));
  const status = el("div", {class: "status", id: "status"});
  const card = el("div", {class: "card", id: "timeline"});
  main().replaceChildren(el("h2", {}, "Timeline"), form, status, card, el("div", {class: "legend"},
    Object.keys(GROUP_COLORS).concat("other").map((g) => el("span", {}, el("i", {style: `background:${colorOf(g)}`}), g))));
  if (!query[dim]) { status.textContent = "choose what to show"; return; }
  const view = new TimelineView(card, status, {[dim]: query[dim]}, query.type || "");
  $("#zoom-in").onclick = () => view.zoom(0.5);
  $("#zoom-out").onclick = () => view.zoom(2);
  $("#zoom-fit").onclick = () => view.fit();
  view.load();
}

function colorOf(group) { return GROUP_COLORS[group] || "var(--other)"; }

function globMatch(glob, text) {
  if (!glob) return true;
  const re = new RegExp("^" + glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$");
  return re.test(text);
}

const eventTime = (e) => Date.parse(e.timestamp || e.received_at);

class TimelineView {
  constructor(card, status, selector, typeGlob) {
    Object.assign(this, {card, status, selector, typeGlob, events: new Map(), changes: [], range: null});
    card.addEventListener("wheel", (ev) => { ev.preventDefault(); this.zoom(ev.deltaY < 0 ? 0.8 : 1.25); }, {passive: false});
  }

  async load() {
    try {
      const body = await api("/api/v1/timeline", {...this.selector, limit: 2000});
      this.vm = body.vm;
      this.changes = body.changes || [];
      for (const e of body.events) this.events.set(e.message_id, e);
      if (!this.card.isConnected) return;  // the page changed while this view was loading
      this.fit();
      this.startLive();
    } catch (e) { this.status.textContent = e.message; this.status.className = "status error"; }
  }

  visible() { return [...this.events.values()].filter((e) => globMatch(this.typeGlob, e.event_type)); }

  fit() {
    const times = this.visible().map(eventTime);
    if (!times.length) { this.range = null; this.draw(); return; }
    const lo = Math.min(...times), hi = Math.max(...times), pad = Math.max((hi - lo) * 0.05, 30_000);
    this.range = [lo - pad, hi + pad];
    this.draw();
  }

  zoom(factor) {
    if (!this.range) return;
    const [lo, hi] = this.range, mid = (lo + hi) / 2, half = Math.max((hi - lo) * factor / 2, 1000);
    this.range = [mid - half, mid + half];
    this.draw();
  }

  draw(fresh = new Set()) {
    const events = this.visible();
    this.status.className = "status";
    this.status.textContent = `${events.length} events` + (this.vm ? ` · VM ${this.vm}` : "");
    if (this.vm) this.status.append(" · ", el("a", {href: `#/vm/${encodeURIComponent(this.vm)}`}, "inventory page"));
    const groups = [...new Set(events.map((e) => e.group))].sort();
    const width = this.card.clientWidth || 1000, left = 110, laneH = 34, top = 22;
    const height = top + Math.max(groups.length, 1) * laneH + 4;
    const root = svg("svg", {class: "lanes", viewBox: `0 0 ${width} ${height}`, height});
    if (!this.range) {
      this.card.replaceChildren(el("div", {class: "status"}, "no events"));
      return;
    }
    const [lo, hi] = this.range, x = (t) => left + (t - lo) / (hi - lo) * (width - left - 10);
    groups.forEach((g, i) => {
      root.append(svg("rect", {class: "lane-bg" + (i % 2 ? " odd" : ""), x: 0, y: top + i * laneH, width, height: laneH}));
      const label = svg("text", {class: "lane-label", x: 6, y: top + i * laneH + 21, "data-lane": g});
      label.textContent = g;
      root.append(label);
    });
    for (let k = 0; k <= 5; k++) {
      const t = lo + (hi - lo) * k / 5, tx = x(t);
      root.append(svg("line", {class: "grid", x1: tx, x2: tx, y1: top, y2: height}));
      const tick = svg("text", {class: "tick", x: Math.min(tx, width - 120), y: 14});
      tick.textContent = new Date(t).toISOString().replace("T", " ").slice(0, 19);
      root.append(tick);
    }
    for (const e of events) {
      const t = eventTime(e);
      if (t < lo || t > hi) continue;
      const lane = groups.indexOf(e.group);
      const dot = svg("circle", {class: `ev ${e.level}${fresh.has(e.message_id) ? " new" : ""}`, cx: x(t),
                                 cy: top + lane * laneH + laneH / 2, r: e.level === "detail" ? 4.5 : 6.5,
                                 fill: colorOf(e.group), "data-id": e.message_id, "data-type": e.event_type});
      const tip = svg("title");
      tip.textContent = `${e.event_type}\n${e.timestamp || e.received_at}`;
      dot.append(tip);
      dot.addEventListener("click", () => { this.selected = e.message_id; this.draw(); showEvent(e, this.changes); });
      if (this.selected === e.message_id) dot.classList.add("sel");
      root.append(dot);
    }
    this.card.replaceChildren(root);
  }

  add(event) {
    if (this.events.has(event.message_id)) return;
    this.events.set(event.message_id, event);
    const t = eventTime(event);
    if (!this.range || t > this.range[1]) this.fit();
    this.draw(new Set([event.message_id]));
  }

  startLive() {
    if (live) live.close();
    const badge = $("#live");
    if (!badge || !this.card.isConnected) return;  // the page changed while this view was loading
    const params = new URLSearchParams(this.selector.vm ? {vm: this.vm || this.selector.vm} : this.selector);
    let poller = null, socket = null, opened = false;
    const poll = () => {
      badge.textContent = "live: polling"; badge.className = "on";
      poller = setInterval(async () => {
        try {
          const body = await api("/api/v1/timeline", {...this.selector, limit: 2000});
          body.events.forEach((e) => this.add(e));
          this.changes = body.changes || this.changes;
        } catch (e) { badge.textContent = "live: error"; badge.className = ""; }
      }, POLL_MS);
    };
    try {
      socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/stream?${params}`);
      socket.onopen = () => { opened = true; badge.textContent = "live: stream"; badge.className = "on"; };
      socket.onmessage = (msg) => { const doc = JSON.parse(msg.data); if (doc.event) this.add(doc.event); };
      socket.onclose = () => { if (!poller && live && live.owner === this) poll(); };
    } catch (e) { poll(); }
    live = {owner: this, close() { clearInterval(poller); if (socket) socket.close(); live = null; }};
  }
}

function showEvent(e, changes) {
  const body = $("#panel-body");
  const t = eventTime(e);
  const triggered = changes.filter((c) => { const at = Date.parse(c.at); return at >= t - 1000 && at <= t + 300_000; });
  const fields = ["event_type", "timestamp", "provider", "project_id", "vm_ref", "host_ref", "request_id", "publisher_id",
                  "group", "level", "collapsed_count"];
  body.replaceChildren(
    el("h3", {}, e.event_type),
    el("table", {}, fields.filter((f) => e[f] !== null && e[f] !== undefined && e[f] !== 0).map((f) =>
      el("tr", {}, el("td", {class: "k"}, f), el("td", {}, f === "vm_ref" ?
        el("a", {href: `#/vm/${encodeURIComponent(e[f])}`}, e[f]) : String(e[f]))))),
    el("h3", {}, "What it triggered"),
    triggered.length ? el("table", {id: "triggered"}, triggered.map((c) => el("tr", {}, el("td", {class: "k"}, c.at),
      el("td", {}, `${c.kind} ${c.action}` + (c.changes ? ": " + Object.keys(c.changes).join(", ") : "")))))
      : el("div", {class: "status"}, "no inventory change recorded within 5 minutes"),
    el("h3", {}, "Payload"),
    el("pre", {id: "payload"}, JSON.stringify(e.payload, null, 2)));
  $("#panel").hidden = false;
}

// -- inventory -----------------------------------------------------------------------------------------
async function vmPage(ref) {
  const box = el("div");
  main().replaceChildren(el("h2", {}, "VM ", el("span", {id: "vm-ref"}, ref)), box);
  let found;
  try { found = await api(`/api/v1/inventory/servers/${encodeURIComponent(ref)}`); }
  catch (e) { box.replaceChildren(el("div", {class: "status error"}, e.status === 404 ? `no VM ${ref} you may see` : e.message)); return; }
  const vm = found[0];
  const props = el("table", {id: "properties"}, Object.entries(vm).filter(([k]) => k !== "kind").map(([k, v]) =>
    el("tr", {}, el("td", {class: "k"}, k), el("td", {}, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))));
  const timeline = await api("/api/v1/timeline", {vm: vm.id, limit: 200});
  const changes = el("table", {id: "changes"}, el("tr", {}, el("th", {}, "at"), el("th", {}, "action"), el("th", {}, "fields")),
    timeline.changes.map((c) => el("tr", {}, el("td", {}, c.at), el("td", {}, c.action),
      el("td", {}, c.changes ? Object.entries(c.changes).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join("; ") : ""))));
  const events = el("table", {id: "events"}, el("tr", {}, el("th", {}, "time"), el("th", {}, "type"), el("th", {}, "group")),
    timeline.events.slice().reverse().map((e) => el("tr", {"data-id": e.message_id}, el("td", {}, e.timestamp || e.received_at),
      el("td", {}, el("a", {href: "#", onclick: (ev) => { ev.preventDefault(); showEvent(e, timeline.changes); }}, e.event_type)),
      el("td", {}, e.group))));
  const fleece = el("div", {id: "fleece"}, el("div", {class: "status"}, "no fleece report"));
  box.replaceChildren(
    el("div", {class: "status"}, el("a", {href: `#/timeline?vm=${encodeURIComponent(vm.id)}`}, "open its timeline")),
    el("h3", {}, "Properties"), props, el("h3", {}, "Change history"), changes,
    el("h3", {}, "Latest fleece report"), fleece, el("h3", {}, `Events (${timeline.events.length})`), events);
  const reports = await api("/api/v1/fleece", {vm_id: vm.id, limit: 1});
  if (reports.length) {
    const r = reports[0], report = await api(`/api/v1/fleece/${r.id}`);
    const os = report.os || {};
    fleece.replaceChildren(el("table", {}, [["report", `#${r.id} ${r.created_at}`], ["target", r.target], ["ok", String(r.ok)],
      ["os", [os.name, os.version].filter(Boolean).join(" ") || os.id || "-"]].map(([k, v]) =>
        el("tr", {}, el("td", {class: "k"}, k), el("td", {}, v)))),
      el("details", {}, el("summary", {}, "whole report"), el("pre", {}, JSON.stringify(report, null, 2))));
  }
}

async function inventoryPage(kind) {
  const kinds = await api("/api/v1/inventory");
  const picker = el("select", {onchange: (ev) => { location.hash = `#/inventory/${ev.target.value}`; }},
    kinds.map((k) => el("option", k.kind === kind ? {selected: ""} : {}, k.kind)));
  const rows = await api(`/api/v1/inventory/${encodeURIComponent(kind)}`, {limit: 2000});
  const cols = ["id", "name", "status", "project_id", "host", "provider"].filter((c) => rows.some((r) => r[c] !== undefined));
  const table = el("table", {id: "inventory"}, el("tr", {}, cols.map((c) => el("th", {}, c))),
    rows.map((r) => el("tr", {}, cols.map((c) => el("td", {}, c === "id" && kind === "servers"
      ? el("a", {href: `#/vm/${encodeURIComponent(r.id)}`}, r.id) : String(r[c] ?? ""))))));
  main().replaceChildren(el("h2", {}, "Inventory"), el("form", {class: "bar"}, el("label", {}, "kind", picker)),
    el("div", {class: "status"}, `${rows.length} ${kind}`), table);
}

// -- routing -------------------------------------------------------------------------------------------
async function route() {
  if (live) live.close();
  $("#panel").hidden = true;
  const hash = location.hash || "#/timeline";
  const [path] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === parts[0]));
  if (parts[0] === "login") return loginPage();
  if (!(await showWho())) return loginPage();
  try {
    if (parts[0] === "vm" && parts[1]) return await vmPage(decodeURIComponent(parts[1]));
    if (parts[0] === "inventory") return await inventoryPage(parts[1] || "servers");
    return timelinePage(parseQuery(hash));
  } catch (e) {
    main().append(el("div", {class: "status error"}, e.message));
  }
}

$("#close-panel").onclick = () => { $("#panel").hidden = true; };
$("#logout").onclick = () => { setToken(null); location.hash = "#/login"; };
window.addEventListener("hashchange", route);
route();
