// Carrel console: the few things that need JavaScript. Every page works without it; this only adds
//  - live regions: <div data-live="URL" data-interval="3000"> is replaced by the HTML fragment at URL every few
//    seconds until the fragment no longer carries data-live (the thing it follows has settled);
//  - copy buttons: <button data-copy="#element-id"> copies that element's text;
//  - typed confirmations: <input data-confirm-for="#button-id" data-confirm-text="name"> enables the button only
//    when the text matches (the server checks it again).
(function () {
  "use strict";

  function follow(region) {
    var url = region.getAttribute("data-live");
    var interval = parseInt(region.getAttribute("data-interval") || "3000", 10);
    var failures = 0;
    function tick() {
      if (!region.isConnected) return;
      if (document.hidden) { setTimeout(tick, interval); return; }
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (response) {
          // A redirect (the session expired: the sign-in page) is not a fragment: load it as a page.
          if (response.redirected) { window.location.reload(); throw new Error("redirected"); }
          if (!response.ok) throw new Error(String(response.status));
          return response.text();
        })
        .then(function (html) {
          failures = 0;
          var holder = document.createElement("div");
          holder.innerHTML = html.trim();
          var fresh = holder.firstElementChild;
          if (!fresh) return;
          var focused = document.activeElement && region.contains(document.activeElement) ? document.activeElement.id : null;
          region.replaceWith(fresh);
          region = fresh;
          enhance(fresh);
          if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
          if (fresh.hasAttribute("data-live")) {
            url = fresh.getAttribute("data-live");
            setTimeout(tick, interval);
          } else if (fresh.hasAttribute("data-reload-when-done")) {
            window.location.reload();
          }
        })
        .catch(function () {
          failures += 1;
          // Back off while the server is unreachable; never faster than the interval, never slower than a minute.
          setTimeout(tick, Math.min(60000, interval * Math.pow(2, Math.min(failures, 5))));
        });
    }
    setTimeout(tick, interval);
  }

  function copy(button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = (target.value !== undefined && target.tagName === "INPUT") ? target.value : target.textContent.trim();
    var label = button.textContent;
    function copied() {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(copied);
    } else {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "absolute";
      area.style.left = "-9999px";
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); copied(); } finally { document.body.removeChild(area); }
    }
  }

  function confirmInput(input) {
    var button = document.querySelector(input.getAttribute("data-confirm-for"));
    var wanted = input.getAttribute("data-confirm-text");
    if (!button) return;
    function check() { button.disabled = input.value.trim() !== wanted; }
    input.addEventListener("input", check);
    check();
  }

  function enhance(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { copy(button); });
    });
    root.querySelectorAll("[data-confirm-for]").forEach(confirmInput);
    // A replaced live region keeps its own timer (tick); only regions inside it are followed anew.
    root.querySelectorAll("[data-live]").forEach(follow);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
})();
