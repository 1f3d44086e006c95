// Upload widget: refuse files over the size limit before sending them, with a clear message.
document.addEventListener("change", function (event) {
  var input = event.target;
  if (!input.matches || !input.matches("input[type=file][data-max-bytes]")) return;
  var max = parseInt(input.dataset.maxBytes, 10);
  var box = input.closest(".upload-widget");
  var out = box ? box.querySelector(".upload-error") : null;
  var total = 0, names = [];
  for (var i = 0; i < input.files.length; i++) { total += input.files[i].size; names.push(input.files[i].name); }
  if (out) out.textContent = "";
  if (total > max) {
    if (out) out.textContent = (input.dataset.tooBig || "Too large") + ": " + names.join(", ") +
      " (" + (total / 1048576).toFixed(1) + " MB > " + (max / 1048576).toFixed(0) + " MB)";
    input.value = "";
  }
});
