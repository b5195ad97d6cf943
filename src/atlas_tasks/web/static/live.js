// atlas-tasks dashboard: live updates over Server-Sent Events. The pages work without this file (reload to
// refresh); with it, task status, steps and new log lines arrive as they happen. Stored text is only ever put
// into the page with textContent, never as HTML.
(function () {
  "use strict";

  function setLive(text, cls) {
    var el = document.getElementById("live-status");
    if (!el) { return; }
    el.hidden = false;
    el.textContent = text;
    el.className = "live-status " + cls;
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // The same format as the CLI's durations (cli/_render.py: duration).
  function duration(seconds) {
    if (seconds < 0) { return "-"; }
    if (seconds < 10) { return seconds.toFixed(1) + "s"; }
    var total = Math.floor(seconds), s = total % 60, m = Math.floor(total / 60), h = Math.floor(m / 60);
    m %= 60;
    var d = Math.floor(h / 24);
    h %= 24;
    if (d) { return d + "d" + pad(h) + "h"; }
    if (h) { return h + "h" + pad(m) + "m"; }
    return m ? m + "m" + pad(s) + "s" : s + "s";
  }

  function badge(text, cls) {
    var span = document.createElement("span");
    span.className = "badge " + cls;
    span.textContent = text;
    return span;
  }

  function replaceBadge(container, text, cls) {
    if (!container) { return; }
    container.replaceChildren(badge(text, cls));
  }

  function setText(root, field, text) {
    var el = root.querySelector('[data-field="' + field + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
    return el;
  }

  function tickRunning() {
    var now = Date.now();
    document.querySelectorAll("[data-running-since]").forEach(function (el) {
      var since = Number(el.getAttribute("data-running-since"));
      el.textContent = duration((now - since) / 1000) + " so far";
    });
  }

  // -- the task page -------------------------------------------------------------------------------------------

  function applySteps(steps) {
    steps.forEach(function (step, index) {
      var li = document.querySelector('#steps li[data-step="' + index + '"]');
      if (!li) { return; }
      li.className = "step " + step.status_class + (step.current ? " current" : "");
      li.setAttribute("data-status", step.status);
      replaceBadge(li.querySelector('.step-head [data-field="status"]'), step.status, step.status_class);
      setText(li, "attempts", String(step.attempts));
      var dur = li.querySelector('[data-field="duration"]');
      if (step.running_since) {
        dur.setAttribute("data-running-since", String(step.running_since));
      } else {
        dur.removeAttribute("data-running-since");
        dur.textContent = step.duration;
      }
      var err = li.querySelector('[data-field="error"]');
      err.textContent = step.error;
      err.hidden = !step.error;
    });
  }

  function applyTransitions(moves) {
    var body = document.getElementById("transitions");
    if (!body || body.rows.length === moves.length) { return; }
    var rows = moves.map(function (move) {
      var tr = document.createElement("tr");
      [move.time, move.from + " \u2192 " + move.to, move.reason].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      return tr;
    });
    body.replaceChildren.apply(body, rows);
    setText(document, "transition-count", String(moves.length));
  }

  // Artifact names are allowlisted by the store; each path segment is still encoded for the URL.
  function artifactLink(base, kind, name, suffix) {
    return base + "/" + kind + "/" + name.split("/").map(encodeURIComponent).join("/") + (suffix || "");
  }

  function applyArtifacts(items) {
    var body = document.getElementById("artifacts");
    if (!body || body.rows.length === items.length) { return; }
    var base = body.parentElement.getAttribute("data-base");
    var rows = items.map(function (item) {
      var tr = document.createElement("tr");
      var view = document.createElement("a");
      view.href = artifactLink(base, "artifacts", item.name);
      view.textContent = item.name;
      var size = document.createElement("td");
      size.className = "num";
      size.textContent = item.size;
      var download = document.createElement("a");
      download.href = artifactLink(base, "raw", item.name, "?download=1");
      download.setAttribute("download", "");
      download.textContent = "download";
      var step = document.createElement("td");
      step.setAttribute("data-field", "artifact-step");
      step.textContent = item.step || "-";
      var first = document.createElement("td");
      var last = document.createElement("td");
      first.appendChild(view);
      last.appendChild(download);
      tr.append(first, size, step, last);
      return tr;
    });
    body.replaceChildren.apply(body, rows);
    setText(document, "artifact-count", String(items.length));
  }

  function applyTask(root, state) {
    var title = root.querySelector("h1");
    replaceBadge(title.querySelector('[data-field="status"]'), state.status, state.status_class);
    root.setAttribute("data-status", state.status);
    var header = root.querySelector("dl.header");
    setText(header, "step", state.step);
    setText(header, "updated", state.updated);
    setText(header, "completed", state.completed || "-");
    setText(header, "revision", String(state.revision));
    setText(header, "runner", state.runner || "none");
    ["crashed", "awaiting_approval", "ready_to_continue"].forEach(function (flag) {
      root.querySelectorAll('[data-when="' + flag + '"]').forEach(function (el) { el.hidden = !state[flag]; });
    });
    applySteps(state.steps);
    applyTransitions(state.transitions);
    applyArtifacts(state.artifacts);
    tickRunning();
  }

  function appendLog(root, event) {
    var box = document.getElementById("log");
    var data = JSON.parse(event.data);
    var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    var line = document.createElement("div");
    line.className = "log-line new";
    data.pieces.forEach(function (piece) {
      var span = document.createElement("span");
      span.textContent = piece[0];
      if (piece[1]) { span.className = piece[1]; }
      line.appendChild(span);
    });
    box.appendChild(line);
    if (atBottom) { box.scrollTop = box.scrollHeight; }
    // The id is the log position after this line (opaque): a reconnect continues from it.
    if (event.lastEventId) { root.setAttribute("data-log-from", event.lastEventId); }
    var shown = (parseInt(root.getAttribute("data-log-count"), 10) || 0) + 1;
    root.setAttribute("data-log-count", String(shown));
    setText(root, "log-count", String(shown));
  }

  function watchTask(root) {
    var url = root.getAttribute("data-live-task") + "?log_from=" + encodeURIComponent(root.getAttribute("data-log-from"));
    var source = new EventSource(url);
    source.onopen = function () { setLive("live", "on"); };
    source.onerror = function () { setLive("reconnecting\u2026", "off"); };
    source.addEventListener("task", function (e) { applyTask(root, JSON.parse(e.data)); });
    source.addEventListener("log", function (e) { appendLog(root, e); });
    source.addEventListener("end", function () { source.close(); setLive("finished", "on"); });
    source.addEventListener("gone", function (e) {
      source.close();
      setLive(JSON.parse(e.data).message, "off");
    });
    window.setInterval(tickRunning, 1000);
  }

  // -- listing pages -------------------------------------------------------------------------------------------

  function watchRows(table) {
    var keys = (table.getAttribute("data-keys") || "").split(" ").filter(Boolean);
    if (!keys.length) { return; }
    var rows = {};
    table.querySelectorAll("tr[data-key]").forEach(function (tr) { rows[tr.getAttribute("data-key")] = tr; });
    var query = keys.map(function (k) { return "t=" + encodeURIComponent(k); }).join("&");
    var source = new EventSource(table.getAttribute("data-live-rows") + "?" + query);
    source.onopen = function () { setLive("live", "on"); };
    source.onerror = function () { setLive("reconnecting\u2026", "off"); };
    source.addEventListener("row", function (e) {
      var row = JSON.parse(e.data);
      var tr = rows[row.key];
      if (!tr) { return; }
      replaceBadge(tr.querySelector('[data-field="status"]'), row.status, row.status_class);
      setText(tr, "step", row.step);
      setText(tr, "updated", row.updated);
      tr.classList.toggle("crashed", row.status_class === "st-crashed");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var task = document.querySelector("[data-live-task]");
    if (task && window.EventSource) { watchTask(task); }
    var table = document.querySelector("[data-live-rows]");
    if (table && window.EventSource) { watchRows(table); }
  });
})();
