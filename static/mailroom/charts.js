// Draws every plotly figure the server embedded with json_script (no inline script, so
// pages keep their CSP): analytics, campaign/automation reports and the growth report.
// Runs on load and after each HTMX swap, redrawing only the swapped part.
(function () {
  function draw(root) {
    if (typeof Plotly === "undefined") return;
    root.querySelectorAll("[data-plotly-figure]").forEach(function (target) {
      var source = document.getElementById(target.dataset.plotlyFigure);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      Plotly.react(target, figure.data, figure.layout, { displayModeBar: false, responsive: true });
      target.dataset.drawn = "yes";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    // An outerHTML swap settles on an element that left the page: redraw from the document.
    draw(event.target && event.target.isConnected ? event.target : document);
  });
})();
