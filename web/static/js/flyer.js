// The flyer's Print button (a script file: the site's CSP allows no inline script).
(function () {
  "use strict";
  var button = document.getElementById("print-flyer");
  if (!button || typeof window.print !== "function") { return; }
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();
