// Launch page: when a choice changes, ask the server for the page again ("Update price") and swap the form in,
// keeping focus. Without JavaScript the "Update price" button does the same.
(function () {
  "use strict";
  var form = document.getElementById("launch-form");
  if (!form || !window.fetch || !window.DOMParser) return;
  var pending = null;
  function refresh(source) {
    var data = new FormData(form);
    data.delete("launch");
    data.set("preview", "1");
    if (pending) pending.abort();
    pending = new AbortController();
    form.setAttribute("aria-busy", "true");
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin", signal: pending.signal })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("launch-form");
        if (!fresh) return;
        var focusId = source && source.id;
        form.innerHTML = fresh.innerHTML;
        var again = focusId && document.getElementById(focusId);
        if (again) again.focus();
      })
      .catch(function () {})
      .finally(function () { form.removeAttribute("aria-busy"); });
  }
  form.addEventListener("change", function (event) {
    if (event.target.hasAttribute("data-refresh")) refresh(event.target);
  });
})();
