// OpenDUS console: progressive enhancement only. Every page works without
// this script; it adds confirmations, upload progress, the browser's time
// zone to scheduled times, and live updates (server-sent events).
"use strict";

// Forms with data-confirm ask before they are sent.
document.addEventListener("submit", (ev) => {
  const f = ev.target;
  if (f instanceof HTMLFormElement && f.dataset.confirm && !window.confirm(f.dataset.confirm)) {
    ev.preventDefault();
  }
});

// Scheduled times are read in the browser's time zone.
for (const tz of document.querySelectorAll("input[data-tz]")) {
  tz.value = String(-new Date().getTimezoneOffset());
}

// An upload form (data-upload) shows its progress; the server answers
// with a redirect to the result page, which is then opened.
for (const form of document.querySelectorAll("form[data-upload]")) {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const box = form.querySelector("[data-progress]");
    const bar = box.querySelector("progress");
    const text = box.querySelector("[data-progress-text]");
    const button = form.querySelector("button[type=submit]");
    box.hidden = false;
    button.disabled = true;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        const pct = Math.round((e.loaded / e.total) * 100);
        bar.value = pct;
        text.textContent = pct + "% of " + Math.round(e.total / 1024) + " KiB";
      }
    });
    xhr.upload.addEventListener("load", () => { text.textContent = "Uploaded; importing…"; });
    xhr.addEventListener("load", () => {
      if (xhr.responseURL && xhr.responseURL !== form.action && xhr.status === 200) {
        window.location.assign(xhr.responseURL);
        return;
      }
      // An error page: show it as the page.
      const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      document.title = doc.title;
      document.body.replaceWith(document.adoptNode(doc.body));
    });
    xhr.addEventListener("error", () => {
      text.textContent = "The upload failed: the connection was lost. Try again.";
      button.disabled = false;
    });
    xhr.send(new FormData(form));
  });
}

// Live parts (data-live="/.../events") follow a stream of server-sent
// events whose data is a JSON object: each key sets the text (or a
// progress bar's value) of an element inside (see target); the first
// event carries every key, the next ones those that changed. An
// object with "_reload" says the page shows more than numbers that
// changed (a rollout paused, a wave opened): it is loaded again. An "end"
// event ends the stream, saying why.
for (const el of document.querySelectorAll("[data-live]")) {
  const status = el.querySelector("[data-live-status]");
  const say = (text) => { if (status) { status.textContent = text; status.hidden = false; } };
  // A key names an element with data-field="key", or "ROW.COL": the cell
  // of row data-row="ROW" in the column COL of its table's data-cols.
  const target = (k) => {
    const f = el.querySelector('[data-field="' + CSS.escape(k) + '"]');
    if (f) return f;
    const dot = k.lastIndexOf(".");
    const row = dot > 0 && el.querySelector('tr[data-row="' + CSS.escape(k.slice(0, dot)) + '"]');
    if (!row) return null;
    const cell = row.cells[(row.closest("table").dataset.cols || "").split(" ").indexOf(k.slice(dot + 1))];
    return cell ? (cell.querySelector("progress") || cell) : null;
  };
  const src = new EventSource(el.dataset.live);
  src.addEventListener("message", (e) => {
    let data;
    try { data = JSON.parse(e.data); } catch { return; }
    if (data._reload) { src.close(); window.location.reload(); return; }
    for (const [k, v] of Object.entries(data)) {
      const f = target(k);
      if (!f) continue;
      if (f instanceof HTMLProgressElement) { f.value = Number(v); f.textContent = String(v) + "%"; }
      else if (f.textContent !== String(v)) {
        f.textContent = String(v);
        f.classList.add("changed");
        setTimeout(() => f.classList.remove("changed"), 1500);
      }
    }
    el.dataset.updated = new Date().toISOString();
  });
  src.addEventListener("end", (e) => {
    src.close();
    el.classList.add("stale");
    let msg = "Live updates ended: reload the page.";
    try { msg = JSON.parse(e.data).message || msg; } catch { /* keep it */ }
    say(msg);
  });
  src.addEventListener("open", () => { el.classList.remove("stale"); say("Live: the numbers follow the service."); });
  src.addEventListener("error", () => {
    el.classList.add("stale");
    say(src.readyState === EventSource.CLOSED ? "Live updates stopped: reload the page." : "Live updates interrupted; reconnecting…");
  });
}
