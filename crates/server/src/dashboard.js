// The dashboard's script: reads GET /api/v1/dashboard with the token from the URL
// fragment (#token=…; never sent to the server) and renders it with DOM nodes (text
// only, no HTML from the data). Refreshes every 5 s.
"use strict";

function token() {
  const m = /(?:^|&)token=([0-9a-f]+)/.exec(location.hash.slice(1));
  return m ? m[1] : "";
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = el("tr");
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

function when(t) {
  return t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z" : "never";
}

function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
}

function render(d) {
  fill("releases", d.releases.map(r => row([r.name, r.id, r.sequence_number, r.approved ? "yes" : "no"])));
  const box = document.getElementById("campaigns");
  box.replaceChildren(...d.campaigns.map(c => {
    const div = el("div");
    div.className = "campaign";
    div.dataset.id = c.id;
    const h = el("h3", c.name + " (" + (c.release || c.release_id) + "): ");
    h.appendChild(el("span", c.state, c.state));
    div.appendChild(h);
    if (c.reason) div.appendChild(el("p", c.reason, "reason"));
    const t = el("table");
    t.className = "phases";
    const head = row(["phase", "devices", "status", "succeeded", "failed", "timed out", "offered", "pending", "progress"]);
    head.querySelectorAll("td").forEach(td => { const th = el("th", td.textContent); td.replaceWith(th); });
    t.appendChild(head);
    c.phases.forEach((p, i) => {
      const bar = el("span", null, "bar");
      const fill = el("span");
      const done = p.succeeded + p.failed + p.timed_out;
      fill.style.width = (p.devices ? Math.round(100 * done / p.devices) : 0) + "%";
      bar.appendChild(fill);
      const tr = row([(i + 1) + " (" + p.percent + " %)", p.devices, p.status, p.succeeded, p.failed, p.timed_out, p.offered, p.pending, bar]);
      tr.className = "phase";
      t.appendChild(tr);
    });
    div.appendChild(t);
    return div;
  }));
  fill("devices", d.devices.map(v => {
    const r = v.last_report;
    const report = r ? el("span", (r.success ? "success" : "failure" + (r.reason_code !== null ? " (reason " + r.reason_code + ")" : "")) + " at " + when(r.at), r.success ? "success" : "failure") : "none";
    const tr = row([v.id, (v.release ? v.release + " " : "") + "(sequence " + v.sequence_number + ")", report, when(v.last_seen)]);
    tr.className = "device";
    return tr;
  }));
  document.getElementById("status").textContent = "updated " + when(Math.floor(Date.now() / 1000)) + ": " + d.devices.length + " devices";
}

async function load() {
  const t = token();
  if (!t) {
    document.getElementById("status").textContent = "no token: open /dashboard#token=<viewer token>";
    return;
  }
  try {
    const r = await fetch("/api/v1/dashboard", { headers: { "Authorization": "Bearer " + t }, cache: "no-store" });
    const d = await r.json();
    if (!r.ok) throw new Error(d.error || r.status);
    render(d);
  } catch (e) {
    document.getElementById("status").textContent = "error: " + e.message;
  }
}

load();
setInterval(load, 5000);
