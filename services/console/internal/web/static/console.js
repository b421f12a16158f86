// The console's live parts: every element with data-live is re-fetched
// from its URL every data-every ms and replaced (server-rendered HTML),
// and Break it's buttons post without leaving the page.
"use strict";
document.querySelectorAll("[data-live]").forEach(function (el) {
  var busy = false;
  setInterval(function () {
    if (busy || document.hidden) return;
    busy = true;
    fetch(el.dataset.live, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { el.innerHTML = html; el.classList.remove("stale"); })
      .catch(function () { el.classList.add("stale"); })
      .finally(function () { busy = false; });
  }, Number(el.dataset.every) || 1000);
});
document.querySelectorAll("form[data-action-form]").forEach(function (form) {
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    fetch("/break/actions?fragment=1", { method: "POST", body: new URLSearchParams(new FormData(form)) })
      .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, text: t }; }); })
      .then(function (res) {
        var tl = document.getElementById("timeline");
        if (res.ok && tl) tl.outerHTML = res.text;
        else if (!res.ok) alert(res.text);
      });
  });
});
