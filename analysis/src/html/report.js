// Span details are built on first open from the embedded JSON, never with innerHTML: every
// value comes from the traced application and is inserted as text.
(function () {
  "use strict";
  var dataElement = document.getElementById("tracelab-data");
  var data = dataElement ? JSON.parse(dataElement.textContent) : { traces: {} };

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function ms(v) {
    return (v === 0 ? "0" : v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)) + " ms";
  }

  function list(pairs) {
    var dl = el("dl");
    pairs.forEach(function (pair) {
      dl.appendChild(el("dt", pair[0]));
      dl.appendChild(el("dd", pair[1]));
    });
    return dl;
  }

  function buildDetails(span, spanId) {
    var box = el("div", null, "span-details");
    box.appendChild(list([
      ["kind", span.kind],
      ["status", span.status + (span.message ? " — " + span.message : "")],
      ["starts at", "+" + ms(span.start_ms)],
      ["duration", ms(span.duration_ms)],
      ["self time", ms(span.self_ms)],
      ["on critical path", ms(span.critical_ms)],
      ["parent", span.parent || "(root)"]
    ]));
    box.appendChild(el("h4", "Attributes"));
    box.appendChild(span.attributes.length ? list(span.attributes) : el("p", "none", "meta"));
    span.events.forEach(function (ev) {
      box.appendChild(el("h4", "Event " + ev.name + " at +" + ms(ev.at_ms)));
      if (ev.attributes.length) box.appendChild(list(ev.attributes));
    });
    span.links.forEach(function (link) {
      box.appendChild(el("h4", "Link"));
      box.appendChild(list([["trace", link.trace_id], ["span", link.span_id]].concat(link.attributes)));
    });
    var permalink = el("a", "link to this span", "permalink");
    permalink.href = "#span=" + spanId;
    box.appendChild(permalink);
    return box;
  }

  function toggle(row) {
    var next = row.nextElementSibling;
    var details;
    if (next && next.classList.contains("span-details")) {
      details = next;
      details.hidden = !details.hidden;
    } else {
      var section = row.closest("section.trace");
      var trace = section && data.traces[section.getAttribute("data-trace-id")];
      var span = trace && trace.spans[Number(row.getAttribute("data-index"))];
      if (!span) return;
      details = buildDetails(span, row.getAttribute("data-span-id"));
      details.style.setProperty("--depth", row.style.getPropertyValue("--depth"));
      row.after(details);
    }
    row.setAttribute("aria-expanded", String(!details.hidden));
  }

  document.addEventListener("click", function (event) {
    var row = event.target.closest(".span-row");
    if (row) toggle(row);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" && event.key !== " ") return;
    var row = event.target.closest && event.target.closest(".span-row");
    if (!row) return;
    event.preventDefault();
    toggle(row);
  });
  document.addEventListener("change", function (event) {
    var box = event.target.closest("label.only-critical");
    if (!box) return;
    box.closest("section.trace").classList.toggle("only-critical", event.target.checked);
  });

  // A link ending in `#span=<16 hex>` opens that span's details and scrolls to it, so a span
  // can be shared by its address. The id is checked against a pattern before it reaches a
  // selector, because the address is not ours to trust.
  function openLinkedSpan() {
    var match = /^#span=([0-9a-fA-F]{16})$/.exec(window.location.hash);
    if (!match) return;
    var row = document.querySelector('.span-row[data-span-id="' + match[1].toLowerCase() + '"]');
    if (!row) return;
    var section = row.closest("section.trace");
    if (section && !row.classList.contains("critical")) {
      section.classList.remove("only-critical");
      var box = section.querySelector("label.only-critical input");
      if (box) box.checked = false;
    }
    if (row.getAttribute("aria-expanded") !== "true") toggle(row);
    row.scrollIntoView({ block: "center" });
    row.focus({ preventScroll: true });
  }
  window.addEventListener("hashchange", openLinkedSpan);
  openLinkedSpan();
})();
