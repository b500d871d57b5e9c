// Campaign calendar: drag a scheduled campaign onto another day to reschedule it. The day
// under the pointer gets .is-drop-target (styled in calendar.css) while a campaign is
// dragged. The server re-checks (state, permission, not in the past), answers JSON, and a
// moved campaign goes back to draft (it needs a new approval).
(function () {
  function setup() {
    var root = document.querySelector('[data-testid="campaign-calendar"]');
    if (!root) return;
    var message = root.querySelector('[data-testid="calendar-message"]');
    var cells = root.querySelectorAll("[data-day]");
    var dragged = null;

    function clearTargets() {
      cells.forEach(function (cell) { cell.classList.remove("is-drop-target"); });
    }
    function fail(text) {
      message.textContent = text;
      message.classList.add("is-error");
    }

    root.addEventListener("dragstart", function (event) {
      var item = event.target.closest && event.target.closest("[data-campaign][draggable=true]");
      if (!item) return;
      dragged = item;
      item.classList.add("is-dragged");
      root.classList.add("is-dragging");
      event.dataTransfer.setData("text/plain", item.getAttribute("data-campaign"));
      event.dataTransfer.effectAllowed = "move";
    });
    root.addEventListener("dragend", function () {
      if (dragged) dragged.classList.remove("is-dragged");
      dragged = null;
      root.classList.remove("is-dragging");
      clearTargets();
    });

    cells.forEach(function (cell) {
      cell.addEventListener("dragover", function (event) {
        if (!dragged) return; // only our campaigns, not text or files dragged in
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        if (!cell.classList.contains("is-drop-target")) {
          clearTargets();
          cell.classList.add("is-drop-target");
        }
      });
      cell.addEventListener("dragleave", function (event) {
        if (!cell.contains(event.relatedTarget)) cell.classList.remove("is-drop-target");
      });
      cell.addEventListener("drop", function (event) {
        event.preventDefault();
        clearTargets();
        var id = event.dataTransfer.getData("text/plain") || (dragged && dragged.getAttribute("data-campaign"));
        if (!id) return;
        if (dragged && dragged.closest("[data-day]") === cell) return; // dropped where it was
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
            else { fail(result.data.error || root.getAttribute("data-error-refused")); }
          })
          .catch(function () { fail(root.getAttribute("data-error-network")); });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", setup);
})();
