// Draws the overview's charts from the JSON the page carries (no second request). The same
// figures are in a table on the page, so the charts are an addition, not the only copy.
(function () {
  "use strict";
  var holder = document.getElementById("chart-data");
  if (!holder || typeof uPlot === "undefined") { return; }
  var data = JSON.parse(holder.textContent);
  var names = ["accepted", "sent", "delivered", "failed"];
  var colours = ["#0a58ca", "#6f42c1", "#198754", "#b42318"];
  function draw(id, rows) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var series = [{}].concat(names.map(function (n, i) {
      return { label: n, stroke: colours[i], width: 2 };
    }));
    var opts = { width: Math.max(280, el.clientWidth), height: 220, series: series };
    var plot = new uPlot(opts, rows, el);
    el.setAttribute("data-drawn", "true");
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 });
    });
  }
  draw("chart-hour", data.hour);
  draw("chart-day", data.day);
})();
