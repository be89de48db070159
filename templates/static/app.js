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
          function chart(id, series, data) {
            var el = document.getElementById(id);
            charts.push(new uPlot({ width: width, height: 220, series: [{}].concat(series) }, [h.ts].concat(data), el));
          }
          chart("chart-resources", [{ label: "CPU %", stroke: "#b42318" }, { label: "Memory %", stroke: "#1f5fa8" }], [h.cpu, h.memory]);
          chart("chart-network", [{ label: "in", stroke: "#1f7a3a" }, { label: "out", stroke: "#9a6700" }], [h.net_in, h.net_out]);
          chart("chart-usage", [{ label: "users", stroke: "#5b2a86" }, { label: "meetings", stroke: "#1d1d1b" }], [h.users, h.meetings]);
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

  // The usage report's chart, from the table on the page (one row per day).
  report: function () {
    var rows = Array.prototype.slice.call(document.querySelectorAll("#report tbody tr"));
    var ts = rows.map(function (r) { return Date.parse(r.cells[0].textContent + "T00:00:00Z") / 1000; });
    var col = function (i) { return rows.map(function (r) { return Number(r.cells[i].textContent); }); };
    var el = document.getElementById("chart-usage");
    new uPlot({ width: Math.max(360, el.clientWidth || 900), height: 220, series: [{},
      { label: "participant-minutes", stroke: "#5b2a86" }, { label: "peak users", stroke: "#1f7a3a" }] },
      [ts, col(4), col(3)], el);
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
