// repropack report: draws the timeline from the JSON block. Text from the run goes
// through textContent / setAttribute only, never innerHTML.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var host = document.getElementById("timeline");
  var tip = document.getElementById("tooltip");
  var note = document.getElementById("timeline-note");
  var F = {id: 0, step: 1, start: 2, dur: 3, state: 4, crit: 5, cpu: 6, peak: 7, mem: 8, cpus: 9, tries: 10, failure: 11, prev: 12};

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function secs(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + " min";
  }
  function bytes(n) {
    if (n === null || n === undefined) return "–";
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return i === 0 ? n + " B" : n.toFixed(1) + " " + units[i];
  }
  function tickStep(span, target) {
    var raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (raw <= steps[i] * p) return steps[i] * p;
    return 10 * p;
  }
  function tickLabel(t) {
    if (t >= 3600) return Math.floor(t / 3600) + "h" + String(Math.floor(t % 3600 / 60)).padStart(2, "0");
    if (t >= 60) return Math.floor(t / 60) + ":" + String(Math.floor(t % 60)).padStart(2, "0");
    return (Math.round(t * 1000) / 1000) + "s";
  }

  // Each step's bars go to the first lane free at their start (interval partitioning).
  function lanesFor(bars) {
    var byStep = data.steps.map(function () { return []; });
    bars.forEach(function (b) { byStep[b[F.step]].push(b); });
    return byStep.map(function (list) {
      list.sort(function (a, b) { return a[F.start] - b[F.start]; });
      var ends = [], lane = new Map();
      list.forEach(function (b) {
        var free = -1;
        for (var i = 0; i < ends.length; i++) if (ends[i] <= b[F.start] + 1e-6) { free = i; break; }
        if (free < 0) { free = ends.length; ends.push(0); }
        ends[free] = b[F.start] + b[F.dur];
        lane.set(b, free);
      });
      return {bars: list, lanes: Math.max(ends.length, 1), lane: lane};
    });
  }

  function draw() {
    var bars = data.bars;
    while (host.firstChild) host.removeChild(host.firstChild);
    if (!bars.length) { note.textContent = "No instance ran in this run (everything was cached or nothing started)."; return; }
    var groups = lanesFor(bars);
    var labelW = 170, right = 16, top = 26, gap = 10;
    var width = Math.max(720, host.clientWidth || 1100);
    var plotW = width - labelW - right;
    var wall = Math.max(data.wall, Math.max.apply(null, bars.map(function (b) { return b[F.start] + b[F.dur]; })), 1e-3);
    var x = function (t) { return labelW + plotW * t / wall; };
    var y = top, rows = [];
    groups.forEach(function (g) {
      if (!g.bars.length) { rows.push(null); return; }  // a step whose instances were all cached
      var laneH = g.lanes <= 12 ? 16 : Math.max(2, Math.floor(200 / g.lanes));
      var h = Math.max(22, g.lanes * laneH + 6);
      rows.push({y: y, h: h, laneH: laneH});
      y += h + gap;
    });
    var height = y + 4;
    var svg = el("svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
                         "aria-label": "timeline of " + bars.length + " instances"}, host);
    var grid = el("g", {"class": "grid"}, svg);
    var step = tickStep(wall, Math.max(4, Math.floor(plotW / 110)));
    for (var t = 0; t <= wall + 1e-9; t += step) {
      el("line", {x1: x(t), x2: x(t), y1: top - 6, y2: height}, grid);
      var label = el("text", {x: x(t), y: 14, "text-anchor": t === 0 ? "start" : "middle"}, svg);
      label.textContent = tickLabel(t);
    }
    groups.forEach(function (g, n) {
      var row = rows[n];
      if (!row) return;
      el("rect", {"class": "band", x: 0, y: row.y, width: labelW - 8, height: row.h, rx: 4}, svg);
      var name = el("text", {"class": "steplabel", x: 8, y: row.y + Math.min(row.h / 2, 14) + 4}, svg);
      var text = data.steps[n];
      name.textContent = text.length > 22 ? text.slice(0, 21) + "…" : text;
      var title = el("title", {}, name); title.textContent = text + " (" + g.bars.length + " shown)";
      var count = el("text", {x: labelW - 14, y: row.y + Math.min(row.h / 2, 14) + 4, "text-anchor": "end"}, svg);
      count.textContent = g.bars.length;
    });
    var critPoints = [];
    var barLayer = el("g", {}, svg);
    groups.forEach(function (g, n) {
      var row = rows[n];
      if (!row) return;
      g.bars.forEach(function (b) {
        var ly = row.y + 3 + g.lane.get(b) * row.laneH;
        var bh = Math.max(1.5, row.laneH - (row.laneH > 6 ? 3 : 0.5));
        var bx = x(b[F.start]), bw = Math.max(b[F.state] === 1 ? 5 : 1.5, x(b[F.start] + b[F.dur]) - bx);
        var cls = "bar " + data.states[b[F.state]] + (b[F.crit] ? " crit" : "");
        var r = el("rect", {"class": cls, x: bx, y: ly, width: bw, height: bh, rx: Math.min(3, bh / 3),
                            fill: data.colors[b[F.step]], "data-id": b[F.id]}, barLayer);
        r.__bar = b;
        (b[F.prev] || []).forEach(function (p) {
          el("rect", {"class": "retry", x: x(p[0]), y: ly, width: Math.max(1, x(p[0] + p[1]) - x(p[0])), height: bh}, barLayer);
        });
        if (b[F.state] === 1 && row.laneH >= 10) {  // failed bars carry their label, not only a colour
          var fl = el("text", {"class": "flabel", x: bx + bw + 4, y: ly + bh - 2}, barLayer);
          fl.textContent = "\u2717 " + (b[F.failure] || "failed") + " \u00b7 " + b[F.id];
        }
        if (b[F.crit]) critPoints.push({t: b[F.start], x1: bx, x2: bx + bw, y: ly + bh / 2});
      });
    });
    critPoints.sort(function (a, b) { return a.t - b.t; });
    if (critPoints.length > 1) {
      var d = critPoints.map(function (p, i) { return (i ? "L" : "M") + p.x1.toFixed(1) + " " + p.y.toFixed(1) + "L" + p.x2.toFixed(1) + " " + p.y.toFixed(1); }).join("");
      el("path", {"class": "critline", d: d}, svg);
    }
    svg.addEventListener("mousemove", function (ev) {
      var b = ev.target.__bar;
      if (!b) { tip.hidden = true; return; }
      show(b, ev.clientX, ev.clientY);
    });
    svg.addEventListener("mouseleave", function () { tip.hidden = true; });
    var omitted = data.omitted ? data.omitted.toLocaleString() + " short instances are not drawn (only the " +
      bars.length.toLocaleString() + " failed, critical and longest ones). " : "";
    note.textContent = omitted + bars.length.toLocaleString() + " bars over " + secs(wall) + ".";
  }

  function show(b, cx, cy) {
    while (tip.firstChild) tip.removeChild(tip.firstChild);
    var head = document.createElement("b"); head.textContent = b[F.id]; tip.appendChild(head);
    var lines = [
      ["step", data.steps[b[F.step]]],
      ["state", data.states[b[F.state]] + (b[F.failure] ? " (" + b[F.failure] + ")" : "") + (b[F.crit] ? " · on the critical path" : "")],
      ["started", "+" + secs(b[F.start])], ["took", secs(b[F.dur]) + (b[F.tries] > 1 ? " in " + b[F.tries] + " attempts" : "")],
      ["CPU", secs(b[F.cpu]) + " on " + b[F.cpus] + " cpu"],
      ["peak memory", bytes(b[F.peak]) + (b[F.mem] ? " of " + bytes(b[F.mem]) + " requested" : "")]
    ];
    lines.forEach(function (l) {
      var div = document.createElement("div");
      var k = document.createElement("span"); k.textContent = l[0] + ": ";
      div.appendChild(k); div.appendChild(document.createTextNode(l[1])); tip.appendChild(div);
    });
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.min(cx + 14, window.innerWidth - w - 8) + "px";
    tip.style.top = (cy + 14 + h > window.innerHeight ? cy - h - 10 : cy + 14) + "px";
  }

  document.getElementById("only-critical").addEventListener("change", function (ev) {
    host.classList.toggle("dim", ev.target.checked);
  });
  var pending = null;
  window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(draw, 150); });
  draw();
})();

// Sortable tables (click a header; numbers sort by data-sort) and the instance search box.
(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-sort");
    if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
    return cell.textContent.trim().toLowerCase();
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.classList.add("sort");
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var box = document.getElementById("instance-search");
  var table = document.getElementById("instance-table");
  var count = document.getElementById("instance-count");
  if (!box || !table) return;
  function filter() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var text = r.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
      r.hidden = !ok;
      if (ok) shown++;
    });
    count.textContent = shown + " of " + table.tBodies[0].rows.length + " shown";
  }
  box.addEventListener("input", filter);
  filter();
})();
