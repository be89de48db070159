// Conflux web: the dashboard's live updates (server-sent events) and the node page's history
// charts (uPlot). No build step; nothing is fetched from outside the balancer.
"use strict";
var Conflux = {
  // The network table: the balancer sends the rendered rows and totals on /events whenever they
  // change (at most once a second); EventSource reconnects by itself after a restart.
  dashboard: function () {
    Conflux.live(function (data) {
      document.getElementById("nodes").innerHTML = data.rows;
      var totals = document.getElementById("totals");
      if (totals) totals.innerHTML = data.totals;
    });
  },

  live: function (apply) {
    var badge = document.getElementById("live");
    var source = new EventSource("/events" + location.search);
    source.addEventListener("dashboard", function (e) {
      apply(JSON.parse(e.data));
      document.body.dataset.updated = String(Date.now());
      if (badge) { badge.textContent = "live"; badge.className = "live on"; }
    });
    source.onerror = function () {
      if (badge) { badge.textContent = "reconnecting…"; badge.className = "live off"; }
    };
  },

  // A node's page: its row stays live; the charts show the stored history for a range.
  node: function () {
    var name = document.getElementById("node-page").dataset.node;
    Conflux.live(function (data) {
      var rows = document.createElement("tbody");
      rows.innerHTML = data.rows;
      var row = rows.querySelector('tr[data-node="' + CSS.escape(name) + '"]');
      if (row) document.getElementById("nodes").replaceChildren(row);
    });
    Conflux.charts("/api/v1/nodes/" + encodeURIComponent(name) + "/history");
  },

  // The network's history page: live totals, and the charts of every node summed.
  network: function () {
    Conflux.live(function (data) {
      document.getElementById("totals").innerHTML = data.totals;
    });
    Conflux.charts("/api/v1/network/history");
  },

  // Three history charts from `url` (?range=hour|day|month|year), with the range buttons.
  charts: function (url) {
    var charts = [];
    function draw(range) {
      fetch(url + "?range=" + range, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (h) {
          charts.forEach(function (c) { c.destroy(); });
          charts = [];
          var width = Math.max(360, document.querySelector(".charts figure").clientWidth - 16);
          function chart(id, series, data, unit) {
            var el = document.getElementById(id);
            charts.push(new uPlot(Conflux.chartOptions(width, series, unit, range), [h.ts].concat(data), el));
          }
          chart("chart-resources", [{ label: "CPU %", stroke: "#b42318" }, { label: "Memory %", stroke: "#1f5fa8" }], [h.cpu, h.memory], "%");
          chart("chart-network", [{ label: "in", stroke: "#1f7a3a" }, { label: "out", stroke: "#9a6700" }],
                [h.net_in.map(Conflux.bits), h.net_out.map(Conflux.bits)], "bit/s");
          chart("chart-usage", [{ label: "users", stroke: "#5b2a86" }, { label: "meetings", stroke: "#1d1d1b" }], [h.users, h.meetings], "");
          Conflux.shown = charts;
          document.getElementById("points").textContent = h.ts.length + " points";
          document.body.dataset.chart = range;
          document.querySelectorAll(".ranges button").forEach(function (b) {
            b.classList.toggle("active", b.dataset.range === range);
          });
        });
    }
    document.querySelectorAll(".ranges button").forEach(function (b) {
      b.addEventListener("click", function () { draw(b.dataset.range); });
    });
    draw("hour");
  },

  // Bytes a second as bits a second (what network people read).
  bits: function (v) { return v == null ? v : v * 8; },

  // A figure in few characters, with an SI prefix: 1234567 -> "1.2M" (never "1,234,567",
  // which the axis cuts).
  compact: function (v) {
    if (v == null) return "";
    var a = Math.abs(v), units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (var i = 0; i < units.length; i++) {
      if (a >= units[i][0]) return +(v / units[i][0]).toFixed(1) + units[i][1];
    }
    return String(+v.toFixed(a < 10 ? 1 : 0));
  },

  // uPlot options for a history chart: a y axis wide enough for its compact labels (with the
  // unit), and an x axis that spans the chosen range even when there are one or two points
  // (uPlot would otherwise spread a single point over years).
  chartOptions: function (width, series, unit, range) {
    var spans = { hour: 3600, day: 86400, month: 30 * 86400, year: 365 * 86400 };
    return {
      width: width, height: 220, series: [{}].concat(series),
      scales: { x: { time: true, range: function (u, min, max) {
        var span = spans[range] || 3600;
        return max - min >= span / 10 ? [min, max] : [max - span, max];
      } } },
      axes: [{}, { size: 64, values: function (u, ticks) {
        return ticks.map(function (t) { return Conflux.compact(t) + (unit ? " " + unit : ""); });
      } }],
    };
  },

  // The usage report's chart, from the table on the page (one row per day).
  report: function () {
    var rows = Array.prototype.slice.call(document.querySelectorAll("#report tbody tr"));
    var ts = rows.map(function (r) { return Date.parse(r.cells[0].textContent + "T00:00:00Z") / 1000; });
    var col = function (i) { return rows.map(function (r) { return Number(r.cells[i].textContent); }); };
    var el = document.getElementById("chart-usage");
    var options = Conflux.chartOptions(Math.max(360, el.clientWidth || 900),
      [{ label: "participant-minutes", stroke: "#5b2a86" }, { label: "peak users", stroke: "#1f7a3a" }], "", "month");
    Conflux.shown = [new uPlot(options, [ts, col(4), col(3)], el)];
    document.body.dataset.chart = "report";
  }
};

// No inline script anywhere (the pages' Content-Security-Policy forbids it): the page to start
// is named by the script tag, and forms that ask first say what in data-confirm.
(function () {
  var page = document.currentScript && document.currentScript.dataset.page;
  if (page && Conflux[page]) Conflux[page]();
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
