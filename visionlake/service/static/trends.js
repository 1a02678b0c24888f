/* visionlake web UI: the trend dashboard. Registers PAGES.trends on window.VL (see app.js).
   Charts use Plotly from the installed Python package, served at /static/vendor/plotly.min.js. */
"use strict";

(() => {
  const { S, api, el, $, toast, fail, empty, head, fmt, PAGES } = window.VL;
  const COLORS = ["#2456d3", "#e4572e", "#17a398", "#f3a712", "#8e44ad", "#5d6d7e", "#c0392b", "#1e8e5a"];
  const T = { tables: [], source: sessionStorage.getItem("vl_trend_source") || "" };
  const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);
  const pts = (v) => (v === null || v === undefined ? "–" : `${v >= 0 ? "+" : "−"}${Math.abs(100 * v).toFixed(1)} pts`);
  const pval = (p) => (p === null || p === undefined ? "–" : p < 0.001 ? "< 0.001" : p.toFixed(3));
  const LABEL_CLASS = { emerging: "ok", rising: "ok", stable: "", seasonal: "", declining: "bad", fading: "bad", insufficient: "warn" };

  function sourceOptions() {
    const cols = S.collections.filter((c) => c.purpose === "fashion")
      .map((c) => ({ value: `collection:${c.name}`, text: `Collection · ${c.name}` }));
    const tabs = T.tables.map((t) => ({ value: `table:${t.table_id}`, text: `Table · ${t.name} (${fmt(t.rows)} rows)` }));
    return [...tabs, ...cols];
  }

  function currentTable(value) {
    return value.startsWith("table:") ? T.tables.find((t) => `table:${t.table_id}` === value) : null;
  }

  PAGES.trends = async (main) => {
    T.tables = await api("/trends/tables");
    const dl = (format) => el("button", { class: "btn", type: "button", id: `trend-report-${format}`, onclick: () => download(format) },
      format === "pdf" ? "Download PDF" : "Download HTML report");
    main.replaceChildren(head("Trends", "Share of looks showing each value over time, with 95% intervals, signals and forecasts.", dl("html"), dl("pdf")));

    /* ---- source form */
    const source = el("select", { id: "trend-source" });
    const time = el("select", { id: "trend-time" });
    const by = el("select", { id: "trend-by" }, ["month", "season", "week", "year"].map((p) => el("option", { value: p }, p)));
    const support = el("input", { type: "number", id: "trend-support", min: 1, value: 10 });
    const chips = el("div", { class: "chips", id: "trend-attrs" });
    const file = el("input", { type: "file", id: "trend-file", accept: ".csv,.parquet,.pq,text/csv" });
    const tableFields = el("div", { class: "row" },
      el("div", { class: "field" }, el("label", { for: "trend-time" }, "Time column"), time),
      el("div", { class: "field spacer" }, el("label", {}, "Attributes"), chips));

    const fillSource = () => {
      const opts = sourceOptions();
      source.replaceChildren(...(opts.length ? opts.map((o) => el("option", { value: o.value }, o.text))
        : [el("option", { value: "" }, "No source yet: upload a table")]));
      if (opts.some((o) => o.value === T.source)) source.value = T.source;
      T.source = source.value;
      fillTableFields();
    };
    const fillTableFields = () => {
      const t = currentTable(source.value);
      tableFields.hidden = !t;
      if (!t) return;
      time.replaceChildren(...t.columns.map((c) => el("option", { value: c, selected: c === t.suggested_time }, c)));
      // default: the colour, category and pattern labels when the table has them, else its first labels
      const chosen = new Set([/colou?r/i, /categor|type/i, /pattern|print/i]
        .map((re) => t.suggested_attributes.find((a) => re.test(a))).filter(Boolean));
      for (const a of t.suggested_attributes) if (chosen.size < 2) chosen.add(a);
      chips.replaceChildren(...t.suggested_attributes.map((a) => el("button", {
        type: "button", class: "chip" + (chosen.has(a) ? " on" : ""), "data-attr": a, "aria-pressed": String(chosen.has(a)),
        onclick: (ev) => { const b = ev.currentTarget; b.classList.toggle("on"); b.setAttribute("aria-pressed", String(b.classList.contains("on"))); },
      }, a)));
    };
    source.addEventListener("change", () => { T.source = source.value; sessionStorage.setItem("vl_trend_source", source.value); fillTableFields(); });

    const query = () => {
      const v = source.value;
      if (!v) throw new Error("Choose a source: upload a table or tag a fashion collection first");
      const q = { by: by.value, min_support: Number(support.value) || 10 };
      if (v.startsWith("collection:")) return { ...q, collection: v.slice(11) };
      const t = currentTable(v);
      const attributes = [...chips.querySelectorAll(".chip.on")].map((b) => b.dataset.attr);
      if (!attributes.length) throw new Error("Choose at least one attribute");
      return { ...q, table_id: t.table_id, time: time.value, attributes, id_column: t.suggested_id_column };
    };

    const upload = async () => {
      if (!file.files.length) return toast("Choose a CSV or Parquet file first", true);
      const fd = new FormData(); fd.append("file", file.files[0]);
      const btn = $("#trend-upload"); btn.disabled = true; btn.textContent = "Uploading…";
      try {
        const t = await api("/trends/tables", { method: "POST", form: fd });
        T.tables = await api("/trends/tables");
        T.source = `table:${t.table_id}`; sessionStorage.setItem("vl_trend_source", T.source);
        fillSource();
        toast(`Uploaded ${t.name}: ${fmt(t.rows)} rows, ${t.columns.length} columns`);
      } catch (e) { fail(e); } finally { btn.disabled = false; btn.textContent = "Upload"; }
    };

    const form = el("form", { class: "card stack", id: "trend-form", onsubmit: (ev) => { ev.preventDefault(); show(); } },
      el("div", { class: "row" },
        el("div", { class: "field spacer" }, el("label", { for: "trend-source" }, "Source"), source),
        el("div", { class: "field" }, el("label", { for: "trend-by" }, "Period"), by),
        el("div", { class: "field narrow" }, el("label", { for: "trend-support" }, "Min. looks"), support),
        el("div", { class: "field" }, el("label", {}, "\u00a0"), el("button", { class: "btn primary", type: "submit", id: "trend-show" }, "Show trends"))),
      tableFields,
      el("div", { class: "row upload-row" }, el("span", { class: "muted" }, "Add a table of labelled looks (CSV or Parquet, one row per look):"),
        file, el("button", { class: "btn small", type: "button", id: "trend-upload", onclick: upload }, "Upload")));

    const kpis = el("div", { class: "kpis", id: "trend-kpis" });
    const chart = el("div", { class: "chart", id: "trend-chart" });
    const chartCard = el("div", { class: "card" }, el("div", { class: "card-head" }, el("h2", {}, "Share of looks"),
      el("span", { class: "muted", id: "trend-chart-note" }, "")), chart);
    const signals = el("div", { class: "card table-card", id: "trend-signals" });
    const lifts = el("div", { class: "card table-card", id: "trend-lift" });
    const sections = el("div", { class: "card", id: "trend-sections" });
    const results = el("div", { class: "stack", id: "trend-results" },
      el("div", { class: "card" }, empty("No trends yet", "Choose a source and press “Show trends”.")));
    main.append(form, el("div", { style: "height:16px" }), results);
    fillSource();

    let shown = [];
    let last = null;
    async function show() {
      let q;
      try { q = query(); } catch (e) { toast(e.message, true); return; }
      const btn = $("#trend-show"); btn.disabled = true; btn.textContent = "Computing…";
      results.replaceChildren(el("div", { class: "card" }, empty("Computing…", "Aggregating looks, testing trends and forecasting.")));
      try {
        const sig = await api("/trends/signals", { method: "POST", json: { ...q, top: 40 } });
        const movers = [...sig.rising, ...sig.falling].map((r) => r.unique_id);
        const series = await api("/trends/series", { method: "POST", json: { ...q, top: 200 } });
        const largest = [...new Set(series.rows.map((r) => r.unique_id))]
          .map((id) => [id, series.rows.filter((r) => r.unique_id === id).reduce((a, r) => a + r.n * (r.y || 0), 0)])
          .sort((a, b) => b[1] - a[1]).map(([id]) => id);
        shown = [...new Set([...movers, ...largest])].slice(0, 5);
        last = { q, sig, series };
        renderKpis(sig, series);
        results.replaceChildren(kpis, sections, chartCard, el("div", { class: "grid cols-even" }, signals, lifts));
        renderSections(sig);
        renderSignals(sig);
        renderLift(sig);
        await renderChart();
      } catch (e) {
        fail(e);
        results.replaceChildren(el("div", { class: "card" }, empty("Could not compute trends", e.message)));
      } finally { btn.disabled = false; btn.textContent = "Show trends"; }
    }

    function renderKpis(sig, series) {
      const n = (k) => sig.labels[k] || 0;
      const kpi = (v, k) => el("div", { class: "card kpi" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k));
      kpis.replaceChildren(kpi(fmt(series.series), "series"), kpi(fmt(series.periods), `${series.by}s`),
        kpi(fmt(n("rising") + n("emerging")), "rising or emerging"), kpi(fmt(n("declining") + n("fading")), "declining or fading"),
        kpi(fmt(n("seasonal")), "seasonal"));
    }

    function signalRows(rows) {
      return rows.map((r) => el("tr", { class: "clickable" + (shown.includes(r.unique_id) ? " selected" : ""), "data-id": r.unique_id,
        title: "Show or hide this series in the chart", onclick: () => toggle(r.unique_id) },
        el("td", {}, el("strong", {}, r.value ?? r.unique_id), el("div", { class: "muted small" }, [r.attribute, ...Object.values(r.segments || {})].filter(Boolean).join(" · "))),
        el("td", {}, el("span", { class: `badge ${LABEL_CLASS[r.label] ?? ""}`, title: r.summary || "" }, r.label === "insufficient" ? "low support" : r.label)),
        el("td", { class: "num" }, pct(r.last_share)), el("td", { class: "num" }, pts(r.slope_per_year)), el("td", { class: "num" }, pval(r.trend_p))));
    }

    function renderSignals(sig) {
      const rows = [...sig.rising, ...sig.falling];
      // then the largest other series: a buyer scans the big values first
      const extra = sig.signals.filter((r) => !rows.some((x) => x.unique_id === r.unique_id)).sort((a, b) => b.looks * (b.share || 0) - a.looks * (a.share || 0));
      const all = [...rows, ...extra].slice(0, 14);
      signals.replaceChildren(el("div", { class: "card-head padded" }, el("h2", {}, "Signals"),
        el("span", { class: "muted" }, "Mann–Kendall trend test; slope in share points per year")),
      all.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Value"), el("th", {}, "Signal"),
        el("th", { class: "num" }, "Last"), el("th", { class: "num" }, "Slope / yr"), el("th", { class: "num" }, "p"))),
      el("tbody", {}, signalRows(all))) : empty("No signals", "Too few supported periods to test a trend."));
    }

    function renderSections(sig) {
      // the report's sections, from the same signals table: each value links to its row's sentence
      const byId = Object.fromEntries(sig.signals.map((r) => [r.unique_id, r]));
      const names = ["Rising", "Emerging", "Falling", "Seasonal", "Low support"];
      sections.replaceChildren(el("div", { class: "card-head" }, el("h2", {}, "What moves"),
        el("span", { class: "muted" }, "rising/falling: Mann–Kendall significant at 95% with adequate support")),
      ...names.map((name) => {
        const ids = sig.sections?.[name] ?? [];
        return el("div", { class: "trend-section", "data-section": name }, el("h3", {}, name),
          ids.length ? el("div", { class: "chips" }, ids.map((id) => el("button", { type: "button", class: "chip", "data-id": id,
            "data-label": byId[id]?.label ?? "", title: byId[id]?.summary ?? "", onclick: () => toggle(id) }, byId[id]?.value ?? id)))
            : el("p", { class: "muted small" }, name === "Low support" ? "Every value has enough looks." : `No value is ${name.toLowerCase()} at 95% confidence.`));
      }));
    }

    function renderLift(sig) {
      lifts.replaceChildren(el("div", { class: "card-head padded" }, el("h2", {}, "Values that go together"),
        el("span", { class: "muted" }, "lift > 1: together more often than chance")),
      sig.lift.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Combination"), el("th", { class: "num" }, "Looks"), el("th", { class: "num" }, "Lift"))),
        el("tbody", {}, sig.lift.slice(0, 10).map((r) => el("tr", { title: r.items.replaceAll(" x ", " + ") },
          el("td", {}, r.items.split(" x ").map((it) => it.split("=").slice(1).join("=")).join(" + ")),
          el("td", { class: "num" }, fmt(r.looks)), el("td", { class: "num" }, r.lift.toFixed(2))))))
        : empty("No frequent combinations", "Lower the minimum looks or add attributes."));
    }

    async function toggle(id) {
      shown = shown.includes(id) ? shown.filter((x) => x !== id) : [...shown, id].slice(-8);
      for (const tr of signals.querySelectorAll("tr[data-id]")) tr.classList.toggle("selected", shown.includes(tr.dataset.id));
      await renderChart();
    }

    async function renderChart() {
      if (!window.Plotly) { chart.replaceChildren(empty("Charts unavailable", "Plotly could not be loaded.")); return; }
      const { q, series } = last;
      let fc = { rows: [] };
      if (shown.length) {
        try { fc = await api("/trends/forecast", { method: "POST", json: { ...q, ids: shown, horizon: q.by === "week" ? 26 : q.by === "year" ? 2 : q.by === "season" ? 4 : 6 } }); }
        catch (e) { if (e.status !== 400) throw e; }  // too little history to forecast: show the curves alone
      }
      const traces = [];
      shown.forEach((id, i) => {
        // a value that is a named colour is drawn in that colour (white with a dark outline)
        const [c, outline] = series.colours?.[id] ?? [COLORS[i % COLORS.length], COLORS[i % COLORS.length]];
        const band = c.toLowerCase() === "#ffffff" ? "#888888" : c;
        const all = series.rows.filter((r) => r.unique_id === id);
        const rows = all.filter((r) => r.n > 0);
        if (!rows.length) return;
        // one band per run of periods with looks: an interval is never drawn across an empty period
        const runs = [];
        let run = [];
        for (const r of all) {
          if (r.n > 0) run.push(r); else if (run.length) { runs.push(run); run = []; }
        }
        if (run.length) runs.push(run);
        for (const rr of runs) {
          const rx = rr.map((r) => r.ds);
          traces.push({ x: [...rx, ...rx.slice().reverse()], y: [...rr.map((r) => r.hi), ...rr.map((r) => r.lo).reverse()],
            fill: "toself", fillcolor: hexA(band, 0.14), line: { width: 0 }, mode: "lines", hoverinfo: "skip", showlegend: false,
            legendgroup: id, type: "scatter", meta: "band" });
        }
        const x = all.map((r) => r.ds);
        const y = all.map((r) => (r.n > 0 ? r.y : null));
        if (outline !== c) {
          traces.push({ x, y, type: "scatter", mode: "lines", line: { color: outline, width: 5 }, hoverinfo: "skip",
            showlegend: false, legendgroup: id, connectgaps: false, meta: "outline" });
        }
        traces.push({ x, y, name: id, legendgroup: id, type: "scatter", mode: "lines+markers", connectgaps: false, meta: "curve",
          line: { color: c, width: 2.5 }, marker: { size: 6, color: all.map((r) => (r.low_support ? "#b8c0cc" : c)), line: { color: outline, width: 1 } },
          customdata: all.map((r) => [r.count, r.n]), hovertemplate: "%{x|%b %Y}: %{y:.1%} (%{customdata[0]} of %{customdata[1]} looks)<extra>" + id + "</extra>" });
        const f = fc.rows.filter((r) => r.unique_id === id);
        if (f.length) {
          const fx = [x[x.length - 1], ...f.map((r) => r.ds)];
          const lastY = rows[rows.length - 1].y;
          traces.push({ x: [...fx, ...fx.slice().reverse()], y: [lastY, ...f.map((r) => r.hi_80), ...[lastY, ...f.map((r) => r.lo_80)].reverse()],
            fill: "toself", fillcolor: hexA(band, 0.08), line: { width: 0 }, mode: "lines", hoverinfo: "skip", showlegend: false, legendgroup: id, type: "scatter" });
          traces.push({ x: fx, y: [lastY, ...f.map((r) => r.mean)], name: `${id} (forecast)`, legendgroup: id, showlegend: false, type: "scatter",
            mode: "lines", line: { color: c, width: 2, dash: "dot" }, hovertemplate: "%{x|%b %Y}: %{y:.1%} forecast<extra></extra>" });
        }
      });
      $("#trend-chart-note").textContent = shown.length
        ? `${shown.length} series · shaded: 95% interval; dotted: forecast with 80% interval; grey points: fewer than ${q.min_support} looks`
        : "Click a signal to show its series";
      const layout = { margin: { l: 56, r: 16, t: 8, b: 40 }, height: 420, hovermode: "closest", paper_bgcolor: "#fff", plot_bgcolor: "#fff",
        font: { family: getComputedStyle(document.documentElement).fontFamily, size: 12, color: "#1c2430" },
        yaxis: { tickformat: ".0%", rangemode: "tozero", gridcolor: "#edf0f4", zeroline: false },
        xaxis: { gridcolor: "#f3f5f8" }, legend: { orientation: "h", y: -0.14 } };
      await window.Plotly.react(chart, traces, layout, { displaylogo: false, responsive: true,
        modeBarButtonsToRemove: ["lasso2d", "select2d"] });
    }

    async function download(format) {
      let q;
      try { q = query(); } catch (e) { toast(e.message, true); return; }
      const btn = $(`#trend-report-${format}`); btn.disabled = true; const label = btn.textContent; btn.textContent = "Preparing…";
      try {
        const r = await api("/trends/report", { method: "POST", json: { ...q, format }, raw: true });
        const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || `trends.${format}`;
        const a = el("a", { href: URL.createObjectURL(await r.blob()), download: name });
        document.body.append(a); a.click(); a.remove();
        toast(`Report ready: ${name}`);
      } catch (e) { fail(e); } finally { btn.disabled = false; btn.textContent = label; }
    }

    if (source.value) await show();
  };

  function hexA(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
  }
})();
