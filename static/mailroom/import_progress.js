// An import job's page: poll the job's progress JSON and move the bar; reload once the job
// has ended, so the page shows its result and its error report.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("import-progress");
    if (!box || box.dataset.finished === "1") return;
    var url = box.dataset.progressUrl;
    var bar = box.querySelector(".import-progress-bar");
    var track = box.querySelector("[role=progressbar]");
    function set(name, value) {
      var node = box.querySelector('[data-field="' + name + '"]');
      if (node) node.textContent = value;
    }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { window.setTimeout(poll, 3000); return; }
          bar.style.width = data.percent + "%";
          track.setAttribute("aria-valuenow", data.percent);
          set("percent-label", data.percent + "%");
          set("status_label", data.status_label);
          set("rows_done", data.rows_done.toLocaleString("en-US"));
          set("rows_total", data.rows_total.toLocaleString("en-US"));
          set("rows_written", data.rows_written.toLocaleString("en-US"));
          set("errors", data.errors.toLocaleString("en-US"));
          if (data.finished) { window.location.reload(); return; }
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    }
    window.setTimeout(poll, 500);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
