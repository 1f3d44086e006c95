// Risk-distribution charts (Chart.js 4). Data comes from a json_script element; labels from data-* attributes.
(function () {
  function draw() {
    if (typeof Chart === "undefined") return;
    var dataEl = document.getElementById("risk-distribution-data");
    if (!dataEl) return;
    var d = JSON.parse(dataEl.textContent);
    var levels = document.getElementById("risk-level-chart");
    if (levels && !levels.dataset.drawn) {
      levels.dataset.drawn = "1";
      new Chart(levels, {
        type: "bar",
        data: {
          labels: JSON.parse(levels.dataset.labels),
          datasets: [
            {label: levels.dataset.combined, data: d.levels.risk_level, backgroundColor: "#1d4ed8"},
            {label: levels.dataset.scorecard, data: d.levels.scorecard_risk_level, backgroundColor: "#15803d"},
            {label: levels.dataset.llm, data: d.levels.llm_risk_level, backgroundColor: "#b45309"},
            {label: levels.dataset.final, data: d.levels.final_risk_level, backgroundColor: "#6b7280"}
          ]
        },
        options: {responsive: true, animation: false, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}
      });
    }
    var hist = document.getElementById("pd-histogram");
    if (hist && !hist.dataset.drawn) {
      hist.dataset.drawn = "1";
      var labels = [];
      for (var i = 0; i < 10; i++) labels.push((i * 10) + "–" + ((i + 1) * 10) + "%");
      new Chart(hist, {
        type: "bar",
        data: {labels: labels, datasets: [{label: hist.dataset.label, data: d.pd_histogram, backgroundColor: "#15803d"}]},
        options: {responsive: true, animation: false, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw); else draw();
})();
