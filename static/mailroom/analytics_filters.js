// The analytics period: choosing a From or To date switches the Period select to Custom,
// and choosing a preset period (7, 30, 90 days) clears the dates, before HTMX sends the
// form. Capture phase, so this runs before htmx's own change handler on the form.
// (Without JavaScript the server does the same: explicit dates mean a custom period.)
(function () {
  document.addEventListener(
    "change",
    function (event) {
      var field = event.target;
      var form = field && field.closest ? field.closest("[data-testid=analytics-filters]") : null;
      if (!form) return;
      var range = form.querySelector("[name=range]");
      var dates = form.querySelectorAll("[name=since], [name=until]");
      if (!range) return;
      if (field.name === "since" || field.name === "until") {
        if (field.value) range.value = "custom";
      } else if (field === range && range.value !== "custom") {
        dates.forEach(function (input) { input.value = ""; });
      }
    },
    true
  );
})();
