// Campaign calendar: drag a scheduled campaign onto another day to reschedule it. The
// server re-checks (state, permission, not in the past) and answers JSON.
(function () {
  function setup() {
    var root = document.querySelector('[data-testid="campaign-calendar"]');
    if (!root) return;
    var message = root.querySelector('[data-testid="calendar-message"]');
    root.addEventListener("dragstart", function (event) {
      var item = event.target.closest("[data-campaign][draggable=true]");
      if (!item) return;
      event.dataTransfer.setData("text/plain", item.getAttribute("data-campaign"));
      event.dataTransfer.effectAllowed = "move";
    });
    root.querySelectorAll("[data-day]").forEach(function (cell) {
      cell.addEventListener("dragover", function (event) { event.preventDefault(); cell.classList.add("ring-2"); });
      cell.addEventListener("dragleave", function () { cell.classList.remove("ring-2"); });
      cell.addEventListener("drop", function (event) {
        event.preventDefault();
        cell.classList.remove("ring-2");
        var id = event.dataTransfer.getData("text/plain");
        if (!id) return;
        var body = new URLSearchParams({ date: cell.getAttribute("data-day") });
        fetch(root.getAttribute("data-reschedule-url").replace("{id}", id), {
          method: "POST",
          headers: { "X-CSRFToken": root.getAttribute("data-csrf"), "Content-Type": "application/x-www-form-urlencoded" },
          body: body,
          credentials: "same-origin",
        })
          .then(function (response) { return response.json().then(function (data) { return { ok: response.ok, data: data }; }); })
          .then(function (result) {
            if (result.ok) { window.location.reload(); }
            else { message.textContent = result.data.error || "Refused"; message.classList.add("text-red-600"); }
          })
          .catch(function () { message.textContent = "Network error"; });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", setup);
})();
