/* wsshadow HTML report. Data comes from the JSON island; every value reaches
   the page through textContent, never innerHTML. Streams are built on demand. */
(function () {
  "use strict";
  var R = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 50;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]);
    return parent;
  }
  function num(n) { return (typeof n === "number") ? n.toLocaleString("en-US") : "-"; }
  function pct(n, total) { return total > 0 ? (100 * n / total).toFixed(1) + "%" : "-"; }
  function compact(v) {
    if (v === null || v === undefined) return "(absent)";
    var s = JSON.stringify(v);
    return s.length > 300 ? s.slice(0, 299) + "\u2026" : s;
  }
  function tokens(path) { return path ? (String(path).match(/[^.\[\]]+/g) || []) : []; }
  function marked(path, fields) {
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i], ok = path.length >= f.length;
      for (var j = 0; ok && j < f.length; j++) ok = path[j] === f[j];
      if (ok) return true;
    }
    return false;
  }
  /* Pretty JSON as lines tagged with field paths (same layout as the Python renderers). */
  function prettyLines(value) {
    var out = [];
    function walk(v, path, depth, prefix, comma) {
      var pad = new Array(depth + 1).join("  ");
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) {
        out.push({ t: pad + prefix + "{", p: path });
        var keys = Object.keys(v);
        keys.forEach(function (k, i) {
          walk(v[k], path.concat([k]), depth + 1, JSON.stringify(k) + ": ", i < keys.length - 1 ? "," : "");
        });
        out.push({ t: pad + "}" + comma, p: path });
      } else if (Array.isArray(v) && v.length) {
        out.push({ t: pad + prefix + "[", p: path });
        v.forEach(function (c, i) { walk(c, path.concat([String(i)]), depth + 1, "", i < v.length - 1 ? "," : ""); });
        out.push({ t: pad + "]" + comma, p: path });
      } else {
        out.push({ t: pad + prefix + JSON.stringify(v === undefined ? null : v) + comma, p: path });
      }
    }
    walk(value, [], 0, "", "");
    return out;
  }
  function sideValue(side) {
    if (!side) return null;
    if (side.format === "binary") return "<binary> base64:" + side.payload;
    return side.payload;
  }

  /* ---------------------------------------------------------------- data */
  var S = R.sessions || {};
  var groups = (R.differences || []).slice().sort(function (a, b) {
    return (b.count || 0) - (a.count || 0) || (b.occurrences || 0) - (a.occurrences || 0) ||
      (a.signature < b.signature ? -1 : a.signature > b.signature ? 1 : 0);
  });
  var noise = (R.noise || []).slice().sort(function (a, b) { return (b.count || 0) - (a.count || 0); });
  var sessions = R.session_details || [];
  if (!sessions.length) {
    var seen = {};
    groups.forEach(function (g) {
      (g.sessions || []).forEach(function (sid) {
        if (!seen[sid]) { seen[sid] = { session: sid, route: g.route, verdict: "divergent", differences: [], rows: null }; sessions.push(seen[sid]); }
        seen[sid].differences.push({ signature: g.signature, kind: g.kind });
      });
    });
  }
  var sigSessions = {};
  groups.forEach(function (g) {
    var set = {};
    (g.sessions || []).forEach(function (s) { set[s] = true; });
    sigSessions[g.signature] = set;
  });

  /* ---------------------------------------------------------------- header */
  var v = document.getElementById("verdict");
  v.textContent = R.verdict;
  v.className = "verdict " + (R.verdict === "equivalent" || R.verdict === "inconclusive" ? R.verdict : "divergent");
  /* why the evidence falls short of equivalence (schema_version 2): first, under the verdict */
  var fid = (R.fidelity && typeof R.fidelity === "object") ? R.fidelity : {};
  var reasonsBox = document.getElementById("reasons");
  (Array.isArray(fid.reasons) ? fid.reasons : []).forEach(function (r) {
    if (typeof r === "string") reasonsBox.appendChild(el("li", null, r));
  });
  if (fid.measured && fid.sessions) {
    var fs = fid.sessions;
    var line = el("p", "fidelity", "fidelity: " + (fs.reproduced || 0) + " of " + (fs.total || 0) +
      " sessions reproduced by the baseline replay");
    reasonsBox.parentNode.insertBefore(line, reasonsBox.nextSibling);
    (Array.isArray(fid.causes) ? fid.causes : []).slice(0, 5).forEach(function (c) {
      if (c && typeof c.cause === "string") reasonsBox.appendChild(el("li", "cause", (c.count || 0) + " \u00d7 " + c.cause));
    });
  }
  var meta = document.getElementById("meta");
  function metaItem(label, value) {
    if (value === undefined || value === null || value === "") return;
    var s = el("span", null, label + " ");
    add(s, el("b", null, value));
    meta.appendChild(s);
  }
  function target(side) { return side ? (side.target || "-") + (side.run ? " (run " + side.run + ")" : "") : null; }
  metaItem("baseline", target(R.baseline));
  metaItem("candidate", target(R.candidate));
  metaItem("capture", R.capture);
  metaItem("noise runs", (R.noise_runs || []).join(", "));
  metaItem("generated", R.generated_at);
  /* each route's dialect(s) (report.dialects, route -> names), as the other formats show them */
  function dialectsText(d) {
    if (!d || typeof d !== "object" || Array.isArray(d)) return null;
    var parts = Object.keys(d).sort().map(function (route) {
      var names = d[route];
      return route + " " + (Array.isArray(names) ? names.map(String).join(", ") : String(names));
    });
    return parts.length ? parts.join(" \u00b7 ") : null;
  }
  metaItem("dialects", dialectsText(R.dialects));

  /* ---------------------------------------------------------------- summary */
  function setCount(id, n) { document.getElementById(id).textContent = num(n); }
  setCount("count-total", S.total); setCount("count-equivalent", S.equivalent);
  setCount("count-divergent", S.divergent); setCount("count-errored", S.errored);
  setCount("count-groups", groups.length);
  setCount("count-noise", noise.length);
  var bar = document.getElementById("bar");
  ["equivalent", "divergent", "errored"].forEach(function (k) {
    var s = el("span", k);
    s.style.width = (S.total ? 100 * (S[k] || 0) / S.total : 0) + "%";
    s.title = k + ": " + num(S[k]);
    bar.appendChild(s);
  });
  var tbody = document.getElementById("timing-body");
  var T = R.timing || {};
  ["p50", "p95"].forEach(function (p) {
    var b = T["baseline_" + p + "_ms"], c = T["candidate_" + p + "_ms"];
    var tr = el("tr");
    add(tr, el("td", null, p),
      el("td", "num", typeof b === "number" ? b.toFixed(1) + " ms" : "-"),
      el("td", "num", typeof c === "number" ? c.toFixed(1) + " ms" : "-"));
    var r = (typeof b === "number" && typeof c === "number" && b > 0) ? c / b : null;
    add(tr, el("td", "num ratio " + (r === null ? "" : r >= 1.5 ? "slow" : "ok"), r === null ? "" : "\u00d7" + r.toFixed(2)));
    tbody.appendChild(tr);
  });

  /* ---------------------------------------------------------------- groups */
  var gbody = document.getElementById("groups-body");
  function kindChip(kind) { return el("span", "kind " + (kind || ""), kind || "?"); }
  groups.forEach(function (g, i) {
    var tr = el("tr", "group");
    tr.setAttribute("data-signature", g.signature);
    var sigCell = el("td");
    add(sigCell, kindChip(g.kind), el("span", "sig", g.signature));
    var shareCell = el("td", "num");
    var sh = el("div", "share");
    var track = el("i"), fill = el("b");
    fill.style.width = (S.total ? Math.min(100, 100 * (g.count || 0) / S.total) : 0) + "%";
    add(track, fill);
    add(sh, el("span", null, pct(g.count || 0, S.total)), track);
    shareCell.appendChild(sh);
    var ex = (g.examples && g.examples[0] && g.examples[0].session) || (g.sessions || [])[0];
    var exCell = el("td");
    if (ex) {
      var b = el("button", "link", ex);
      b.addEventListener("click", function (e) { e.stopPropagation(); openSession(ex, g.signature); });
      exCell.appendChild(b);
    }
    add(tr, el("td", "num muted", i + 1), sigCell, el("td", "num", num(g.count)),
      el("td", "num", num(g.occurrences)), shareCell, exCell);
    tr.addEventListener("click", function () {
      sigSelect.value = (sigSelect.value === g.signature) ? "" : g.signature;
      applyFilters();
    });
    gbody.appendChild(tr);
  });
  if (!groups.length) {
    var tr0 = el("tr"); var td0 = el("td", "muted", "No differences: the candidate matched the baseline.");
    td0.colSpan = 6; tr0.appendChild(td0); gbody.appendChild(tr0);
  }

  var nbody = document.getElementById("noise-body");
  noise.forEach(function (n) {
    var tr = el("tr");
    var sc = el("td"); add(sc, kindChip(n.kind), el("span", "sig", n.signature));
    add(tr, sc, el("td", "num", num(n.count)), el("td", "num", num(n.candidate_sessions)),
      el("td", "num", num(n.noise_sessions)), el("td", "muted", n.reason || ""));
    nbody.appendChild(tr);
  });
  document.getElementById("noise-total").textContent =
    noise.length + " signature" + (noise.length === 1 ? "" : "s") + ", " +
    num(noise.reduce(function (a, n) { return a + (n.count || 0); }, 0)) + " occurrences suppressed";

  /* ---------------------------------------------------------------- filters */
  var routeSelect = document.getElementById("f-route");
  var sigSelect = document.getElementById("f-signature");
  var verdictSelect = document.getElementById("f-verdict");
  var search = document.getElementById("f-search");
  var routes = {};
  sessions.forEach(function (s) { routes[s.route || "-"] = true; });
  groups.forEach(function (g) { if (g.route) routes[g.route] = true; });
  Object.keys(routes).sort().forEach(function (r) { routeSelect.appendChild(el("option", null, r)).value = r; });
  groups.forEach(function (g) { sigSelect.appendChild(el("option", null, g.signature)).value = g.signature; });
  /* multi-user scenarios (session_details[].scenario): a filter when there are any */
  var scenarioSelect = document.getElementById("f-scenario");
  var scenarios = {};
  sessions.forEach(function (s) { if (s.scenario) scenarios[s.scenario] = (scenarios[s.scenario] || 0) + 1; });
  Object.keys(scenarios).sort().forEach(function (k) {
    scenarioSelect.appendChild(el("option", null, k + " (" + scenarios[k] + " sessions)")).value = k;
  });
  if (Object.keys(scenarios).length) document.getElementById("f-scenario-label").hidden = false;

  var filtered = sessions, page = 0, openIds = {};
  function applyFilters() {
    var r = routeSelect.value, sig = sigSelect.value, vd = verdictSelect.value, q = search.value.trim().toLowerCase();
    var sc = scenarioSelect.value;
    var set = sig ? (sigSessions[sig] || {}) : null;
    filtered = sessions.filter(function (s) {
      if (r && (s.route || "-") !== r) return false;
      if (vd && s.verdict !== vd) return false;
      if (sc && s.scenario !== sc) return false;
      if (q && String(s.session).toLowerCase().indexOf(q) < 0) return false;
      if (set && !set[s.session]) {
        var hit = (s.differences || []).some(function (d) { return d.signature === sig; });
        if (!hit) return false;
      }
      return true;
    });
    Array.prototype.forEach.call(gbody.querySelectorAll("tr.group"), function (tr) {
      tr.classList.toggle("active", tr.getAttribute("data-signature") === sig);
    });
    page = 0;
    renderSessions();
  }
  [routeSelect, sigSelect, verdictSelect, scenarioSelect].forEach(function (s) { s.addEventListener("change", applyFilters); });
  search.addEventListener("input", applyFilters);

  /* ---------------------------------------------------------------- sessions */
  var sbody = document.getElementById("sessions-body");
  function renderSessions() {
    while (sbody.firstChild) sbody.removeChild(sbody.firstChild);
    var pages = Math.max(1, Math.ceil(filtered.length / PAGE));
    if (page >= pages) page = pages - 1;
    filtered.slice(page * PAGE, page * PAGE + PAGE).forEach(function (s) {
      var tr = el("tr", "session");
      tr.setAttribute("data-session", s.session);
      var idc = el("td", "nowrap"); var b = el("button", "link", s.session);
      b.setAttribute("aria-expanded", "false");
      b.addEventListener("click", function () { toggle(s, tr, b); });
      idc.appendChild(b);
      var sigs = [];
      (s.differences || []).forEach(function (d) { if (sigs.indexOf(d.signature) < 0) sigs.push(d.signature); });
      var sc = el("td", "sig muted", sigs.slice(0, 2).join("; ") + (sigs.length > 2 ? "; \u2026" : ""));
      var rc = el("td", "sig nowrap", s.route || "-");
      if (s.dialect) rc.appendChild(el("span", "dialect", String(s.dialect)));
      add(tr, idc, rc, add(el("td"), el("span", "badge " + s.verdict, s.verdict)),
        el("td", "num", num((s.differences || []).length)), sc);
      sbody.appendChild(tr);
      if (openIds[s.session]) toggle(s, tr, b, true);
    });
    document.getElementById("page-info").textContent = "page " + (page + 1) + " of " + pages;
    document.getElementById("prev").disabled = page === 0;
    document.getElementById("next").disabled = page >= pages - 1;
    document.getElementById("shown").textContent = num(filtered.length) + " of " + num(sessions.length) + " sessions";
  }
  document.getElementById("prev").addEventListener("click", function () { page--; renderSessions(); });
  document.getElementById("next").addEventListener("click", function () { page++; renderSessions(); });

  function toggle(s, tr, button, force) {
    var next = tr.nextSibling;
    if (!force && next && next.classList && next.classList.contains("detail-row")) {
      sbody.removeChild(next); tr.classList.remove("open"); delete openIds[s.session];
      button.setAttribute("aria-expanded", "false");
      return;
    }
    var dr = el("tr", "detail-row"); var td = el("td", "detail"); td.colSpan = 5;
    td.appendChild(renderDetail(s));
    dr.appendChild(td);
    sbody.insertBefore(dr, tr.nextSibling);
    tr.classList.add("open"); openIds[s.session] = true;
    button.setAttribute("aria-expanded", "true");
  }

  function openSession(sid, sig) {
    routeSelect.value = ""; verdictSelect.value = ""; search.value = sid;
    sigSelect.value = sig || "";
    applyFilters();
    var s = null;
    for (var i = 0; i < filtered.length; i++) if (filtered[i].session === sid) { s = filtered[i]; break; }
    var tr = sbody.querySelector("tr.session");
    if (s && tr && !openIds[sid]) toggle(s, tr, tr.querySelector("button"));
    document.getElementById("sessions").scrollIntoView();
  }

  function pairTable(title, pair, fields) {
    var t = el("table");
    var h = el("tr"); add(h, el("th", null, title), el("th", null, "baseline"), el("th", null, "candidate"));
    t.appendChild(h);
    var b = (pair && pair.baseline) || {}, c = (pair && pair.candidate) || {};
    fields.forEach(function (f) {
      var tr = el("tr"), bv = b[f], cv = c[f], same = JSON.stringify(bv) === JSON.stringify(cv);
      add(tr, el("td", "muted", f), el("td", same ? "" : "diff", bv === undefined || bv === null ? "-" : bv),
        el("td", same ? "" : "diff", cv === undefined || cv === null ? "-" : cv));
      t.appendChild(tr);
    });
    return t;
  }

  function cell(side, cls, fields, absentText) {
    var c = el("div", "cell " + cls);
    if (!side) { c.className += " absent"; c.textContent = absentText; return c; }
    var m = "seq " + side.seq + " \u00b7 " + (typeof side.t === "number" ? side.t.toFixed(3) + " s" : "-") + " \u00b7 " + side.format;
    c.appendChild(el("div", "m", m));
    var pre = el("pre");
    prettyLines(sideValue(side)).forEach(function (line) {
      pre.appendChild(el("span", marked(line.p, fields) ? "mark" : null, line.t));
    });
    c.appendChild(pre);
    return c;
  }

  function renderDetail(s) {
    var box = el("div");
    if (s.error) box.appendChild(el("div", "errorbox", s.error));
    if (s.cause) box.appendChild(el("div", "causebox", "not reproduced by the baseline replay: " + s.cause));
    var unmet = Array.isArray(s.unmet_links) ? s.unmet_links : [];
    if (unmet.length) {
      var links = el("ul", "unmet");
      unmet.forEach(function (u) { links.appendChild(el("li", null, "unmet link: " + u)); });
      box.appendChild(links);
    }
    if (s.dialect) box.appendChild(el("div", "note dialect-note", "Decoded as " + s.dialect));
    var diffs = s.differences || [];
    if (diffs.length) {
      var ul = el("ul", "diffs");
      diffs.forEach(function (d) {
        var li = el("li");
        add(li, kindChip(d.kind), el("span", "sig", d.signature));
        var vals = el("span", "vals");
        add(vals, el("span", null, " expected "), el("span", "exp", compact(d.expected)),
          el("span", null, " \u2192 actual "), el("span", "act", compact(d.actual)),
          typeof d.row === "number" ? el("span", null, " (row " + d.row + ")") : null);
        li.appendChild(vals);
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    var pairs = el("div", "pairs");
    add(pairs, pairTable("handshake", s.handshake, ["status", "subprotocol"]),
      pairTable("close", s.close, ["code", "reason", "by"]));
    box.appendChild(pairs);
    if (s.noise && s.noise.length) {
      box.appendChild(el("div", "note", "Noise suppressed in this session: " + s.noise.join("; ")));
    }
    var rows = s.rows;
    box.appendChild(el("h3", null, "Server \u2192 client streams, aligned"));
    if (!rows) {
      box.appendChild(el("div", "note", "Streams not kept in this report (only divergent and errored sessions, and a sample of equivalent ones, carry them)."));
      return box;
    }
    var flagged = {};
    diffs.forEach(function (d) { if (typeof d.row === "number") flagged[d.row] = true; });
    var toggles = el("div", "toggles");
    var streams = el("div", "streams");
    function check(label, cls) {
      var l = el("label"), cb = el("input"); cb.type = "checkbox";
      cb.addEventListener("change", function () { streams.classList.toggle(cls, cb.checked); });
      add(l, cb, document.createTextNode(" " + label));
      return l;
    }
    add(toggles, check("hide equal rows", "hide-equal"), check("hide noise rows", "hide-noise"),
      el("span", null, rows.length + " rows" + (s.rows_truncated ? " (truncated to the first rows)" : "")));
    box.appendChild(toggles);
    var head = el("div", "srow head");
    function sideHead(label, sid) {
      var d = el("div", null, label);
      if (sid) d.appendChild(el("span", "sid", sid));
      return d;
    }
    add(head, sideHead("baseline", s.baseline_session), el("div", null, "status"),
      sideHead("candidate", s.candidate_session));
    streams.appendChild(head);
    rows.forEach(function (r, i) {
      var st = r.status || "equal";
      var row = el("div", "srow " + st + (flagged[i] ? " flagged" : ""));
      row.setAttribute("data-row", i);
      var fields = (r.fields || []).map(tokens);
      var stc = el("div", "st"); stc.appendChild(el("span", null, st));
      stc.title = r.key ? "key: " + r.key : "";
      add(row, cell(r.baseline, "b", fields, "not in baseline"), stc,
        cell(r.candidate, "c", fields, st === "missing" ? "missing from candidate" : "\u2014"));
      streams.appendChild(row);
    });
    box.appendChild(streams);
    return box;
  }

  applyFilters();
  var h = decodeURIComponent((location.hash || "").replace(/^#/, ""));
  if (h.indexOf("session=") === 0) openSession(h.slice(8));
  document.documentElement.setAttribute("data-ready", "1");
})();
