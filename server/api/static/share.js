// Pixel's shared view: reads /share/<token>/data and draws the summary, the timeseries (inline SVG), the
// breakdowns and the world map (inline SVG paths). No framework, nothing from another host, no inline code (the page's CSP allows 'self' only).
// Every value from the data is written as text (textContent / attributes), never as HTML.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var METRICS = [
    ["visitors", "Visitors", "int"],
    ["pageviews", "Pageviews", "int"],
    ["sessions", "Sessions", "int"],
    ["views_per_session", "Views per session", "num"],
    ["bounce_rate", "Bounce rate", "pct"],
    ["visit_duration", "Visit duration", "dur"]
  ];
  var TITLES = {page: "Pages", source: "Sources", country: "Countries", browser: "Browsers", device: "Devices"};

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(value, kind) {
    if (kind === "pct") return value.toFixed(1) + "%";
    if (kind === "dur") {
      var s = Math.round(value);
      return s >= 60 ? Math.floor(s / 60) + "m " + (s % 60) + "s" : s + "s";
    }
    if (kind === "num") return value.toFixed(2);
    return String(value);
  }

  function summary(root, body) {
    root.textContent = "";
    METRICS.forEach(function (m) {
      var item = body.metrics[m[0]];
      if (!item) return;
      var card = el("div", "card");
      card.setAttribute("data-metric", m[0]);
      card.appendChild(el("span", "label", m[1]));
      var value = el("span", "value", fmt(item.value, m[2]));
      value.setAttribute("data-value", String(item.value));
      card.appendChild(value);
      if (item.change !== null && item.change !== undefined) {
        var sign = item.change > 0 ? "+" : "";
        var unit = m[0] === "bounce_rate" ? " pts" : "%";
        card.appendChild(el("span", "change", sign + item.change + unit));
      }
      root.appendChild(card);
    });
  }

  function chart(root, series) {
    root.textContent = "";
    var points = series.points;
    var width = 640, height = 200, pad = 4;
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, p.pageviews || 0, p.visitors || 0); });
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Visitors and pageviews per " + series.interval);
    var step = (width - 2 * pad) / Math.max(points.length, 1);
    var bars = document.createElementNS(SVG, "g");
    bars.setAttribute("class", "bars");
    var line = [];
    points.forEach(function (p, i) {
      var h = (height - 2 * pad) * (p.pageviews || 0) / max;
      var rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(pad + i * step + step * 0.1));
      rect.setAttribute("y", String(height - pad - h));
      rect.setAttribute("width", String(step * 0.8));
      rect.setAttribute("height", String(h));
      rect.setAttribute("data-bucket", p.bucket);
      rect.setAttribute("data-pageviews", String(p.pageviews || 0));
      rect.setAttribute("data-visitors", String(p.visitors || 0));
      var title = document.createElementNS(SVG, "title");
      title.textContent = p.bucket + ": " + (p.visitors || 0) + " visitors, " + (p.pageviews || 0) + " pageviews";
      rect.appendChild(title);
      bars.appendChild(rect);
      var y = height - pad - (height - 2 * pad) * (p.visitors || 0) / max;
      line.push((pad + (i + 0.5) * step).toFixed(1) + "," + y.toFixed(1));
    });
    svg.appendChild(bars);
    var poly = document.createElementNS(SVG, "polyline");
    poly.setAttribute("class", "visitors");
    poly.setAttribute("points", line.join(" "));
    svg.appendChild(poly);
    root.appendChild(svg);
  }

  function breakdowns(root, all) {
    root.textContent = "";
    Object.keys(all).forEach(function (dim) {
      var body = all[dim];
      var box = el("div", "breakdown");
      box.setAttribute("data-dimension", dim);
      box.appendChild(el("h2", "", TITLES[dim] || dim));
      var table = el("table");
      var head = el("tr");
      head.appendChild(el("th", "", "Value"));
      head.appendChild(el("th", "num", "Visitors"));
      table.appendChild(head);
      body.rows.forEach(function (row) {
        var tr = el("tr");
        tr.appendChild(el("td", "value", row.value === "" ? "(none)" : row.value));
        tr.appendChild(el("td", "num", String(row.visitors)));
        table.appendChild(tr);
      });
      if (!body.rows.length) {
        var empty = el("tr");
        empty.appendChild(el("td", "empty", "No data"));
        table.appendChild(empty);
      }
      box.appendChild(table);
      root.appendChild(box);
    });
  }

  // The map: outlines from /share/assets/countries.json (read once), one <path> per country whose fill grows
  // with its visitors (square root of visitors / the most of any country, between two fills; share_map.py
  // computes the same colours), a <title> per country for the hover tooltip and a caption line on hover.
  var FILLS = {light: ["#e5e7eb", "#c7d2fe", "#3730a3"], dark: ["#374151", "#312e81", "#a5b4fc"]};
  var shapes = null;

  function mix(a, b, t) {
    t = Math.min(1, Math.max(0, t));
    var out = "#";
    for (var i = 1; i < 7; i += 2) {
      var x = parseInt(a.slice(i, i + 2), 16), y = parseInt(b.slice(i, i + 2), 16);
      var v = Math.round(x + (y - x) * t);
      out += (v < 16 ? "0" : "") + v.toString(16);
    }
    return out;
  }

  function fillOf(visitors, most) {
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    var f = dark ? FILLS.dark : FILLS.light;
    if (!(visitors > 0) || !(most > 0)) return f[0];
    return mix(f[1], f[2], Math.sqrt(visitors / most));
  }

  function shapesOf(root) {
    if (shapes) return shapes;
    shapes = fetch(root.getAttribute("data-src"), {credentials: "omit"}).then(function (r) {
      if (!r.ok) throw new Error("The map is unavailable.");
      return r.json();
    });
    shapes.catch(function () { shapes = null; });
    return shapes;
  }

  function drawMap(root, rows) {
    var caption = document.getElementById("map-caption");
    var missing = document.getElementById("map-missing");
    var visitors = {}, most = 0;
    rows.forEach(function (r) {
      visitors[r.country] = r.visitors;
      most = Math.max(most, r.visitors);
    });
    return shapesOf(root).then(function (geo) {
      root.textContent = "";
      var svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("viewBox", geo.viewBox);
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", "Visitors by country");
      var drawn = {};
      geo.countries.forEach(function (c) {
        var code = c[0], name = c[1], n = visitors[code] || 0;
        var path = document.createElementNS(SVG, "path");
        path.setAttribute("d", c[2]);
        path.setAttribute("fill-rule", "evenodd");
        path.setAttribute("fill", fillOf(n, most));
        path.setAttribute("data-country", code);
        path.setAttribute("data-visitors", String(n));
        var text = name + ": " + n + (n === 1 ? " visitor" : " visitors");
        var title = document.createElementNS(SVG, "title");
        title.textContent = text;
        path.appendChild(title);
        path.addEventListener("mouseenter", function () { caption.textContent = text; });
        path.addEventListener("mouseleave", function () { caption.textContent = ""; });
        svg.appendChild(path);
        drawn[code] = true;
      });
      root.appendChild(svg);
      var off = rows.filter(function (r) { return !drawn[r.country]; }).map(function (r) {
        return r.country + " " + r.visitors;
      });
      missing.textContent = off.length ? "Too small for the map: " + off.join(", ") : "";
      root.setAttribute("data-most", String(most));
    }).catch(function (err) {
      root.textContent = "";
      caption.textContent = err.message;
    });
  }

  function load(main, select, status) {
    status.textContent = "Loading…";
    main.setAttribute("data-state", "loading");
    var url = main.getAttribute("data-src") + "?period=" + encodeURIComponent(select.value);
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        return r.json().then(function (body) { return {ok: r.ok, body: body}; });
      })
      .then(function (res) {
        if (!res.ok) throw new Error(res.body.detail || "The data could not be read.");
        var body = res.body;
        summary(document.getElementById("summary"), body.summary);
        chart(document.getElementById("chart"), body.timeseries);
        breakdowns(document.getElementById("breakdowns"), body.breakdowns);
        var map = document.getElementById("map");
        map.setAttribute("data-state", "loading");
        return drawMap(map, body.map || []).then(function () { return body; });
      })
      .then(function (body) {
        document.getElementById("map").setAttribute("data-state", "ready");
        status.textContent = body.from.slice(0, 10) + " – " + body.to.slice(0, 10) + " (" + body.timezone + ")";
        main.setAttribute("data-state", "ready");
        main.setAttribute("data-period", body.period);
      })
      .catch(function (err) {
        status.textContent = err.message;
        main.setAttribute("data-state", "error");
      });
  }

  function start() {
    var main = document.getElementById("share");
    if (!main) return;
    var select = document.getElementById("period");
    var status = document.getElementById("status");
    select.addEventListener("change", function () { load(main, select, status); });
    load(main, select, status);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
