/* Study viewer: scroll through every slice/frame of a series with a window preset. Images are
   rendered on demand by the server (de-identified pixels, role-checked). */
(function () {
  "use strict";
  function init() {
    var root = document.getElementById("viewer");
    if (!root) { return; }
    var data = JSON.parse(document.getElementById("viewer-data").textContent || "[]");
    var urlTemplate = root.getAttribute("data-image-url");
    var seriesSel = document.getElementById("viewer-series");
    var presetSel = document.getElementById("viewer-preset");
    var slider = document.getElementById("viewer-slice");
    var img = document.getElementById("viewer-image");
    var pos = document.getElementById("viewer-pos");
    var current = { series: 0, index: 0 };
    var pending = null;

    function frames() { return (data[current.series] || { frames: [] }).frames; }
    function show() {
      var list = frames();
      if (!list.length) { img.removeAttribute("src"); pos.textContent = "0 / 0"; return; }
      current.index = Math.max(0, Math.min(current.index, list.length - 1));
      slider.max = String(list.length - 1);
      slider.value = String(current.index);
      pos.textContent = (current.index + 1) + " / " + list.length;
      var item = list[current.index];
      var url = urlTemplate.replace("999999999", String(item[0])) + "?frame=" + item[1] +
        "&preset=" + encodeURIComponent(presetSel.value);
      clearTimeout(pending);
      pending = setTimeout(function () { img.src = url; }, 40);
    }
    seriesSel.addEventListener("change", function () { current.series = +seriesSel.value; current.index = Math.floor(frames().length / 2); show(); });
    presetSel.addEventListener("change", show);
    slider.addEventListener("input", function () { current.index = +slider.value; show(); });
    img.addEventListener("wheel", function (e) { e.preventDefault(); current.index += e.deltaY > 0 ? 1 : -1; show(); }, { passive: false });
    document.addEventListener("keydown", function (e) {
      if (e.target && /input|textarea|select/i.test(e.target.tagName)) { return; }
      if (e.key === "ArrowDown" || e.key === "ArrowRight") { current.index += 1; show(); e.preventDefault(); }
      if (e.key === "ArrowUp" || e.key === "ArrowLeft") { current.index -= 1; show(); e.preventDefault(); }
    });
    Array.prototype.forEach.call(document.querySelectorAll(".key-image"), function (a) {
      a.addEventListener("click", function () {
        current.series = +a.getAttribute("data-series");
        current.index = +a.getAttribute("data-index");
        seriesSel.value = String(current.series);
        show();
      });
    });
    // Fit the image to the frame: a small image (a 64×64 MR) is scaled up by a whole factor, its pixels kept
    // square and sharp (nearest neighbour), never wider than the frame nor taller than the view allows;
    // the aspect ratio is kept. A large image is scaled down smoothly as before.
    var frame = img.parentNode;
    function fit() {
      var w = img.naturalWidth, h = img.naturalHeight;
      if (!w || !h || !frame) { return; }
      var availW = frame.clientWidth || w;
      var availH = Math.max(320, Math.round(window.innerHeight * 0.7));
      var fitScale = Math.min(availW / w, availH / h);
      var scale = fitScale >= 2 ? Math.floor(fitScale) : Math.min(1, fitScale);
      img.style.width = Math.round(w * scale) + "px";
      img.style.height = Math.round(h * scale) + "px";
      img.classList.toggle("upscaled", scale > 1);
      img.setAttribute("data-scale", String(scale));
    }
    img.addEventListener("load", fit);
    window.addEventListener("resize", fit);
    current.index = Math.floor(frames().length / 2);
    show();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
