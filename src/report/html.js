// Draws kascope's charts from the JSON block: per server a connection timeline, a histogram
// of requests per connection, and idle-before-close against the advertised timeout.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("kascope-data").textContent);

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function title(parent, text) { el("title", {}, parent).textContent = text; }
  function secs(ns) { return (ns / 1e9).toFixed(6) + " s"; }
  function fmt(ns) { return (ns / 1e9).toFixed(ns >= 1e10 ? 1 : 3); }
  function closeClass(closer) {
    if (closer.indexOf("rst") >= 0) return "rst";
    if (closer.indexOf("server") === 0) return "server";
    if (closer.indexOf("client") === 0) return "client";
    return "other";
  }
  function ticks(lo, hi, n) {
    var out = [];
    for (var i = 0; i <= n; i++) out.push(lo + (hi - lo) * i / n);
    return out;
  }

  function timeline(box, server) {
    var lanes = server.charts.lanes;
    if (!lanes.length) { box.textContent = "no HTTP connections to draw"; return; }
    var width = Math.max(640, Math.min(box.clientWidth || 1200, 1240));
    var left = 56, right = 48, laneH = 20, top = 6;
    var lo = Infinity, hi = 0;
    lanes.forEach(function (l) {
      lo = Math.min(lo, l.start);
      var end = l.end;
      l.marks.forEach(function (m) {
        if (m.e !== null && l.timeout !== null) end = Math.max(end, Math.min(m.e + l.timeout * 1e9, l.end + l.timeout * 1e9));
      });
      hi = Math.max(hi, end);
    });
    if (hi <= lo) hi = lo + 1e6;
    var x = function (ns) { return left + (ns - lo) / (hi - lo) * (width - left - right); };
    var height = top + lanes.length * laneH + 26;
    var svg = el("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img", "class": "timeline-svg" }, box);
    lanes.forEach(function (l, i) {
      var y = top + i * laneH, mid = y + laneH / 2;
      var cls = "lane" + (l.race ? " race" : "") + (l.violation ? " violation" : "");
      var g = el("g", { "class": cls, "data-stream": l.stream }, svg);
      var text = "tcp.stream " + l.stream + ": " + l.client + " → " + server.server +
        "\nopen " + secs(l.start) + " – " + secs(l.end) + "; " + l.requests + " requests, " + l.responses + " responses" +
        "\nfirst close: " + l.closer + (l.close !== null ? " at " + secs(l.close) : "") +
        (l.timeout !== null ? "; advertised timeout=" + l.timeout : "") +
        (l.race ? "\nKEEP-ALIVE RACE: a request crossed the server's idle close" : "") +
        (l.violation ? "\nBROKEN PROMISE" : "") + (l.unannounced ? "\nunannounced close" : "") +
        (l.dropped ? "\n" + l.dropped + " dropped after Connection: close" : "");
      l.marks.forEach(function (m, k) {
        text += "\n  #" + (k + 1) + " request " + secs(m.q) + (m.a !== null ? ", response " + secs(m.a) + "–" + secs(m.e === null ? m.a : m.e) + " (" + m.s + ")" : ", never answered");
      });
      if (l.more_marks) text += "\n  … " + l.more_marks + " more";
      title(g, text);
      el("rect", { "class": "bg", x: 0, y: y, width: width, height: laneH }, g);
      el("text", { "class": "label", x: 4, y: mid + 3.5 }, g).textContent = l.stream;
      el("line", { "class": "open", x1: x(l.start), x2: Math.max(x(l.end), x(l.start) + 1), y1: mid, y2: mid }, g);
      l.marks.forEach(function (m) {
        if (m.e !== null && l.timeout !== null) {
          el("line", { "class": "promise", x1: x(m.e), x2: x(m.e + l.timeout * 1e9), y1: mid - 4, y2: mid - 4 }, g);
        }
        el("line", { "class": m.a === null ? "lost" : "req", x1: x(m.q), x2: x(m.q), y1: y + 1, y2: y + laneH - 1 }, g);
        if (m.a !== null) {
          var end = m.e === null ? m.a : m.e;
          el("rect", { "class": "resp", x: x(m.a), y: mid - 3, width: Math.max(2, x(end) - x(m.a)), height: 6 }, g);
        }
      });
      if (l.close !== null) {
        el("rect", { "class": "close " + closeClass(l.closer), x: x(l.close), y: y + 3, width: 4, height: laneH - 6 }, g);
      }
    });
    var axis = el("g", { "class": "axis" }, svg);
    var base = top + lanes.length * laneH + 4;
    ticks(lo, hi, 6).forEach(function (t) {
      el("line", { x1: x(t), x2: x(t), y1: top, y2: base }, axis);
      el("text", { x: x(t) - 12, y: base + 14 }, axis).textContent = fmt(t) + " s";
    });
  }

  function histogram(box, server) {
    var counts = server.charts.reuse, labels = data.buckets;
    var width = 460, height = 150, left = 8, bottom = 20, barW = (width - left * 2) / counts.length;
    var most = Math.max.apply(null, counts.concat([1]));
    var svg = el("svg", { width: width, height: height, "class": "histogram-svg" }, box);
    counts.forEach(function (n, i) {
      var h = (height - bottom - 16) * n / most, x = left + i * barW;
      var bar = el("rect", { "class": "bar", x: x + 2, y: height - bottom - h, width: barW - 4, height: h, "data-bucket": labels[i], "data-count": n }, svg);
      title(bar, labels[i] + " requests: " + n + " connections");
      if (n) el("text", { "class": "bar-label", x: x + 4, y: height - bottom - h - 3 }, svg).textContent = n;
      el("text", { "class": "label", x: x + 2, y: height - 5 }, svg).textContent = labels[i];
    });
  }

  function idle(box, server) {
    var points = server.charts.idle;
    if (!points.length) { box.textContent = "no connection closed while idle"; return; }
    var width = 460, height = 150, left = 10, right = 70, bottom = 22;
    var hi = 0, timeouts = {};
    points.forEach(function (p) { hi = Math.max(hi, p[0]); if (p[1] !== null) { timeouts[p[1]] = true; hi = Math.max(hi, p[1]); } });
    hi = hi * 1.1 || 1;
    var x = function (s) { return left + s / hi * (width - left - right); };
    var svg = el("svg", { width: width, height: height, "class": "idle-svg" }, box);
    Object.keys(timeouts).forEach(function (t) {
      var line = el("line", { "class": "timeout-line", x1: x(+t), x2: x(+t), y1: 4, y2: height - bottom }, svg);
      title(line, "advertised timeout=" + t);
      el("text", { "class": "label", x: x(+t) + 3, y: 12 }, svg).textContent = "timeout=" + t;
    });
    points.forEach(function (p, i) {
      var y = 18 + (i * 37 % Math.max(1, height - bottom - 26));
      var dot = el("circle", { "class": "dot " + (p[2] ? "server" : "client"), cx: x(p[0]), cy: y, r: 3.5, "data-stream": p[3] }, svg);
      title(dot, "tcp.stream " + p[3] + ": idle " + p[0].toFixed(6) + " s before " + (p[2] ? "the server's" : "the client's") + " close" + (p[1] !== null ? " (timeout=" + p[1] + ")" : ""));
    });
    var axis = el("g", { "class": "axis" }, svg);
    ticks(0, hi, 4).forEach(function (t) {
      el("line", { x1: x(t), x2: x(t), y1: height - bottom, y2: height - bottom + 4 }, axis);
      el("text", { x: x(t) - 8, y: height - 6 }, axis).textContent = t.toFixed(t >= 10 ? 0 : 2) + " s";
    });
  }

  // The server's idle closes (top row) and each connection's longest reuse gap (bottom row)
  // on one time axis, the inferred idle timeout as a line, and the race margin between the
  // longest gap and the timeout as a band (red when negative, amber when a risk).
  function margin(box, server) {
    var m = server.margin;
    if (!m.closes.length && !m.gaps.length) { box.textContent = "no idle close and no reuse"; return; }
    var width = 460, height = 150, left = 92, right = 16, bottom = 22;
    var hi = 0;
    m.closes.concat(m.gaps).forEach(function (v) { hi = Math.max(hi, v); });
    if (m.timeout !== null) hi = Math.max(hi, m.timeout);
    hi = hi * 1.1 || 1;
    var x = function (s) { return left + s / hi * (width - left - right); };
    var svg = el("svg", { width: width, height: height, "class": "margin-svg" }, box);
    var rows = [["server idle closes", m.closes, "close", 40], ["clients' reuse gaps", m.gaps, "gap", 92]];
    if (m.timeout !== null && m.gaps.length) {
      var longest = Math.max.apply(null, m.gaps);
      var a = Math.min(longest, m.timeout), b = Math.max(longest, m.timeout);
      var band = el("rect", { "class": "margin-band " + m.state, x: x(a), y: 20, width: Math.max(1, x(b) - x(a)), height: height - bottom - 24 }, svg);
      title(band, "race margin " + (m.timeout - longest).toFixed(3) + " s (" + m.state + ")");
    }
    if (m.timeout !== null) {
      var line = el("line", { "class": "timeout-line", x1: x(m.timeout), x2: x(m.timeout), y1: 14, y2: height - bottom }, svg);
      title(line, "observed idle timeout " + m.timeout.toFixed(3) + " s");
      el("text", { "class": "label", x: x(m.timeout) - 3, y: 12, "text-anchor": "end" }, svg).textContent = "timeout " + m.timeout.toFixed(3) + " s";
    }
    rows.forEach(function (row) {
      el("text", { "class": "label", x: 2, y: row[3] + 4 }, svg).textContent = row[0];
      row[1].forEach(function (v) {
        var tick = el("line", { "class": "tick " + row[2], x1: x(v), x2: x(v), y1: row[3] - 9, y2: row[3] + 9 }, svg);
        title(tick, row[0] + ": " + v.toFixed(6) + " s");
      });
    });
    var axis = el("g", { "class": "axis" }, svg);
    ticks(0, hi, 4).forEach(function (t) {
      el("line", { x1: x(t), x2: x(t), y1: height - bottom, y2: height - bottom + 4 }, axis);
      el("text", { x: x(t) - 8, y: height - 6 }, axis).textContent = t.toFixed(t >= 10 ? 0 : 2) + " s";
    });
  }

  data.servers.forEach(function (server) {
    var find = function (cls) { return document.querySelector("." + cls + "[data-for='" + server.id + "']"); };
    timeline(find("timeline"), server);
    histogram(find("histogram"), server);
    idle(find("idle"), server);
    margin(find("margin"), server);
  });
  document.body.setAttribute("data-rendered", "yes");
})();
