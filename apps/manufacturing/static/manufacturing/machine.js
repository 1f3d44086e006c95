// Machine page charts: sensor trends with anomalies marked, remaining-life and probability history.
(function () {
  function ready(fn) { if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn); }
  ready(function () {
    var el = document.getElementById("chart-data");
    if (!el || typeof Chart === "undefined") return;
    var data = JSON.parse(el.textContent);
    var text = JSON.parse(document.getElementById("chart-text").textContent);

    function lineChart(canvas, labels, datasets, yTitle) {
      return new Chart(canvas, {
        type: "line",
        data: { labels: labels, datasets: datasets },
        options: { animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
          elements: { point: { radius: 0 } },
          plugins: { legend: { display: datasets.length > 1 } },
          scales: { y: { title: { display: !!yTitle, text: yTitle || "" } } } }
      });
    }

    // remaining life and probability over the last steps (per-step history of the latest prediction)
    var hist = data.history || [];
    if (hist.length) {
      var hl = hist.map(function (h) { return String(h.at); });
      var rulCanvas = document.getElementById("chart-rul");
      if (rulCanvas) lineChart(rulCanvas, hl, [{ label: text.rul, data: hist.map(function (h) { return h.rul_estimate; }), borderColor: "#16a34a" }], text.rul_axis);
      var pCanvas = document.getElementById("chart-probability");
      if (pCanvas) lineChart(pCanvas, hl, [
        { label: text.probability, data: hist.map(function (h) { return h.failure_probability; }), borderColor: "#dc2626" },
        { label: text.anomaly, data: hist.map(function (h) { return h.anomaly_score; }), borderColor: "#9333ea", borderDash: [4, 3] }
      ], "");
    }
    // probability across predictions
    var preds = data.predictions || [];
    var prCanvas = document.getElementById("chart-predictions");
    if (prCanvas && preds.length > 1) {
      lineChart(prCanvas, preds.map(function (p) { return p.at; }), [
        { label: text.probability, data: preds.map(function (p) { return p.p; }), borderColor: "#dc2626", pointRadius: 3 }
      ], "");
    }

    // sensor trends
    var box = document.getElementById("sensor-charts");
    var select = document.getElementById("sensor-select");
    var charts = {};
    function sensorChart(s) {
      if (charts[s.name]) return;
      var wrap = document.createElement("div");
      wrap.className = "sensor-chart";
      wrap.dataset.sensor = s.name;
      var title = document.createElement("h4");
      title.textContent = s.name + (s.description ? " — " + s.description : "") + (s.unit ? " (" + s.unit + ")" : "") + (s.driver ? " ★" : "");
      var holder = document.createElement("div");
      holder.style.height = "180px";
      var canvas = document.createElement("canvas");
      holder.appendChild(canvas);
      wrap.appendChild(title);
      wrap.appendChild(holder);
      box.appendChild(wrap);
      var marks = s.anomalies.map(function (a) { return { x: a.x, y: a.y }; });
      charts[s.name] = new Chart(canvas, {
        type: "line",
        data: { labels: s.labels, datasets: [
          { label: s.name, data: s.values, borderColor: "#2563eb", borderWidth: 1.2 },
          { type: "scatter", label: text.anomalies, data: marks, backgroundColor: "#dc2626", pointRadius: 4 }
        ] },
        options: { animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
          elements: { point: { radius: 0 } }, plugins: { legend: { display: marks.length > 0 } } }
      });
    }
    var sensors = data.sensors || [];
    var initial = sensors.filter(function (s) { return s.driver; }).slice(0, 4);
    if (!initial.length) initial = sensors.slice(0, 4);
    initial.forEach(sensorChart);
    if (select) {
      select.addEventListener("change", function () {
        var name = select.value;
        sensors.forEach(function (s) { if (s.name === name) sensorChart(s); });
      });
    }
  });
})();
