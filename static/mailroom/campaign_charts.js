// Draw the server-built plotly figures (json_script "report-charts") into their targets.
// Runs on load and after HTMX swaps; plotly.js comes from our static files (no CDN).
(function () {
  function draw() {
    var data = document.getElementById("report-charts");
    if (!data || !window.Plotly) return;
    var charts = JSON.parse(data.textContent);
    Object.keys(charts).forEach(function (name) {
      var target = document.querySelector('[data-plotly-target="' + name + '"]');
      if (!target) return;
      var figure = charts[name];
      window.Plotly.react(target, figure.data, figure.layout, { displaylogo: false, responsive: true });
      target.setAttribute("data-drawn", "true");
    });
  }
  window.addEventListener("load", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
