// The shop: the browser's own requests to /api/* (same origin, passed to
// the gateway unchanged), so its HTTP cache, ETags and 304s are real.
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };

  // Where a response came from. Resource Timing tells a response from the
  // browser's cache (no bytes transferred) from one that crossed the
  // network; after a revalidation the browser merges the 304's headers
  // into its stored copy, and the console marks a 304 from the gateway.
  function provenance(url, resp) {
    var abs = new URL(url, location.href).href;
    var entries = performance.getEntriesByName(abs);
    var e = entries[entries.length - 1];
    var from;
    if (e && e.transferSize === 0 && e.decodedBodySize > 0) from = "your browser's cache (no request sent)";
    else if (resp.headers.get("X-Console-Upstream-Status") === "304") from = "304 Not Modified (revalidated with If-None-Match; body from your browser's cache)";
    else from = "the network (" + resp.status + ")";
    var h = function (k) { return resp.headers.get(k) || "—"; };
    return "from " + from + " · X-Served-By " + h("X-Served-By") + " · X-Served-From " + h("X-Served-From") +
      " · ETag " + h("ETag") + " · Cache-Control " + h("Cache-Control");
  }

  function text(el, s) { el.textContent = s; }
  function price(cents, cur) { return (cents / 100).toFixed(2) + " " + (cur || ""); }

  var cursor = "", query = {};
  function list(next) {
    var p = new URLSearchParams({ limit: "8" });
    if (query.q) p.set("q", query.q);
    if (query.category) p.set("category", query.category);
    if (next) p.set("cursor", next);
    var url = "/api/products?" + p.toString();
    fetch(url).then(function (r) {
      return r.json().then(function (body) {
        text($("list-provenance"), provenance(url, r));
        var ul = $("products");
        ul.innerHTML = "";
        (body.items || []).forEach(function (it) {
          var li = document.createElement("li");
          var a = document.createElement("a");
          a.href = "#/products/" + it.id;
          a.dataset.product = it.id;
          text(a, it.name);
          li.appendChild(a);
          li.appendChild(document.createTextNode(" · " + price(it.price_cents, it.currency) + " · " + it.category));
          ul.appendChild(li);
        });
        cursor = body.next_cursor || "";
        $("next-page").hidden = !cursor;
      });
    });
  }

  var current = null;
  function show(id) {
    var url = "/api/products/" + encodeURIComponent(id);
    fetch(url).then(function (r) {
      return r.json().then(function (p) {
        if (!r.ok) { text($("product-name"), p.title || "error"); return; }
        current = p;
        $("product").hidden = false;
        $("product").dataset.product = p.id;
        text($("product-name"), p.name);
        text($("product-description"), p.description || "");
        text($("product-price"), price(p.price_cents, p.currency));
        text($("product-stock"), String(p.stock));
        text($("product-sku"), p.sku);
        var t = $("product-attributes");
        t.innerHTML = "";
        Object.keys(p.attributes || {}).forEach(function (k) {
          var tr = t.insertRow(), th = document.createElement("th");
          text(th, k); tr.appendChild(th);
          text(tr.insertCell(), JSON.stringify(p.attributes[k]));
        });
        var prov = provenance(url, r);
        text($("product-provenance"), prov);
      });
    });
  }

  function token() {
    var t = sessionStorage.getItem("scaleshop-token");
    if (t) return Promise.resolve(t);
    var customer = "shop-" + Math.random().toString(36).slice(2, 10);
    return fetch("/api/auth/dev-token", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ customer_id: customer, role: "customer" })
    }).then(function (r) {
      if (!r.ok) throw new Error("dev tokens are off (the stack is not in dev mode)");
      return r.json();
    }).then(function (b) { sessionStorage.setItem("scaleshop-token", b.token); return b.token; });
  }

  function step(label, t0) {
    var li = document.createElement("li");
    text(li, label + " at +" + Math.round(performance.now() - t0) + " ms");
    $("order-steps").appendChild(li);
  }

  function order() {
    if (!current) return;
    var qty = Number($("quantity").value) || 1;
    var t0 = performance.now();
    $("order-status").hidden = false;
    $("order-steps").innerHTML = "";
    text($("order-trace"), "");
    token().then(function (tok) {
      var auth = { Authorization: "Bearer " + tok };
      return fetch("/api/orders", {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() }, auth),
        body: JSON.stringify({ items: [{ product_id: current.id, quantity: qty }] })
      }).then(function (r) {
        var trace = r.headers.get("X-Trace-Id");
        if (trace) {
          var a = document.createElement("a");
          a.href = "/traces/" + trace; a.id = "order-trace-link";
          text(a, "its trace " + trace);
          $("order-trace").appendChild(a);
        }
        return r.json().then(function (o) {
          if (r.status !== 202) { setState("failed: " + (o.detail || o.title || r.status)); return; }
          text($("order-id"), o.id);
          setState(o.status);
          step("accepted (202, " + o.status + ")", t0);
          poll(o.id, auth, t0);
        });
      });
    }).catch(function (err) { setState("failed: " + err.message); });
  }

  function setState(s) { var b = $("order-state"); text(b, s); b.dataset.state = s; }

  // The long poll: the orders API answers as soon as the order is final,
  // or after wait with it still pending.
  function poll(id, auth, t0) {
    fetch("/api/orders/" + encodeURIComponent(id) + "?wait=10s", { headers: auth, cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (o) {
        if (o.status === "pending") { step("still pending", t0); poll(id, auth, t0); return; }
        setState(o.status);
        step(o.status + (o.reason ? " (" + o.reason + ")" : ""), t0);
      })
      .catch(function () { setTimeout(function () { poll(id, auth, t0); }, 1000); });
  }

  $("shop-search").addEventListener("submit", function (ev) {
    ev.preventDefault();
    query = { q: this.q.value.trim(), category: this.category.value.trim() };
    list("");
  });
  $("next-page").addEventListener("click", function () { list(cursor); });
  $("view-again").addEventListener("click", function () { if (current) show(current.id); });
  $("order").addEventListener("click", order);
  function route() {
    var m = location.hash.match(/^#\/products\/(\d+)$/);
    if (m) show(m[1]);
  }
  window.addEventListener("hashchange", route);
  list("");
  route();
})();
