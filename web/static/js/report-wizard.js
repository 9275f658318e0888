// The lost/found report wizard: one step at a time, and every photo checked as soon as it is
// chosen ("dog found in this photo" / "no dog found in this photo — try another").  Refused
// photos are taken out of the file input, so only accepted ones are sent.  Without JavaScript
// the whole form shows at once and the server checks everything when it is sent.
(function () {
  "use strict";
  var form = document.querySelector("form.wizard");
  if (!form) { return; }
  var steps = Array.prototype.slice.call(form.querySelectorAll("fieldset.step"));
  var progress = document.getElementById("wizard-steps");
  var input = form.querySelector("input[type=file]");
  var species = form.querySelector("select[name=species]");
  var checks = document.getElementById("photo-checks");
  var token = document.querySelector("meta[name=csrf-token]").content;
  var maxPhotos = parseInt(form.dataset.maxPhotos || "5", 10);
  var accepted = [];  // {file, item}
  var pending = 0;
  var current = 0;

  function problem(step, text) {
    var p = step.querySelector(".step-problem");
    if (!p) { return; }
    p.textContent = text || "";
    p.hidden = !text;
  }

  function show(index, focus) {
    current = index;
    steps.forEach(function (step, i) { step.hidden = i !== index; });
    if (progress) {
      Array.prototype.forEach.call(progress.children, function (li, i) {
        if (i === index) { li.setAttribute("aria-current", "step"); } else { li.removeAttribute("aria-current"); }
      });
    }
    // Leaflet measures its box on window resize: the map was laid out while hidden.
    window.dispatchEvent(new Event("resize"));
    var legend = steps[index].querySelector("legend");
    if (legend && focus !== false) { legend.setAttribute("tabindex", "-1"); legend.focus(); }
  }

  function value(name) {
    var el = form.elements[name];
    return el ? String(el.value || "").trim() : "";
  }

  function stepProblem(index) {
    var step = steps[index];
    if (input && step.contains(input)) {
      if (pending) { return "Wait a moment: a photo is still being checked."; }
      if (!accepted.length) { return "Add at least one photo in which the animal is clearly visible."; }
    }
    if (form.elements.lat && step.contains(form.elements.lat)) {
      var lat = parseFloat(value("lat")), lon = parseFloat(value("lon"));
      if (!isFinite(lat) || !isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
        return "Tap the map or type the latitude and longitude of the place.";
      }
    }
    var required = step.querySelectorAll("[required]:not([type=file])");
    for (var i = 0; i < required.length; i += 1) {
      if (!String(required[i].value || "").trim()) {
        var label = form.querySelector("label[for='" + required[i].id + "']");
        return "Fill in: " + (label ? label.textContent.trim() : required[i].name) + ".";
      }
    }
    return "";
  }

  function syncInput() {
    if (!input || typeof DataTransfer === "undefined") { return; }
    var dt = new DataTransfer();
    accepted.forEach(function (a) { dt.items.add(a.file); });
    input.files = dt.files;
  }

  function item(file) {
    var li = document.createElement("li");
    var img = document.createElement("img");
    img.src = URL.createObjectURL(file);
    img.alt = "";
    img.width = 72;
    var text = document.createElement("span");
    text.className = "check-text";
    text.textContent = file.name + ": checking…";
    li.appendChild(img);
    li.appendChild(text);
    checks.appendChild(li);
    return { li: li, text: text };
  }

  function remover(entry) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = "Remove";
    button.addEventListener("click", function () {
      accepted = accepted.filter(function (a) { return a !== entry; });
      entry.item.li.remove();
      syncInput();
    });
    entry.item.li.appendChild(button);
  }

  function check(file, shown) {
    pending += 1;
    var data = new FormData();
    data.append("photo", file, file.name);
    data.append("species", species ? species.value : "dog");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.checkUrl);
    xhr.setRequestHeader("X-CSRFToken", token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      pending -= 1;
      if (xhr.status === 200 && body && body.found) {
        if (accepted.length >= maxPhotos) {
          shown.li.className = "problem";
          shown.text.textContent = file.name + ": " + maxPhotos + " photos are enough; this one was left out";
        } else {
          shown.li.className = "ok";
          shown.text.textContent = file.name + ": ✓ " + body.message.charAt(0).toUpperCase() + body.message.slice(1);
          var entry = { file: file, item: shown };
          accepted.push(entry);
          remover(entry);
        }
      } else {
        shown.li.className = "problem";
        shown.text.textContent = file.name + ": ✗ " + ((body && (body.message || body.error)) ||
          "could not be checked (" + xhr.status + "); try again");
      }
      syncInput();
      problem(steps[0], "");
    };
    xhr.onerror = function () {
      pending -= 1;
      shown.li.className = "problem";
      shown.text.textContent = file.name + ": the connection failed; choose it again";
      syncInput();
    };
    xhr.send(data);
  }

  if (input && checks) {
    input.addEventListener("change", function () {
      var picked = Array.prototype.slice.call(input.files);
      picked.forEach(function (file) { check(file, item(file)); });
      syncInput();  // until checked, only the photos already accepted stay chosen
    });
    if (species) {
      species.addEventListener("change", function () {
        var again = accepted.map(function (a) { a.item.li.remove(); return a.file; });
        accepted = [];
        syncInput();
        again.forEach(function (file) { check(file, item(file)); });
      });
    }
  }

  var when = form.querySelector("input[type=datetime-local]");
  if (when && !when.value) {
    var now = new Date();
    now.setSeconds(0, 0);
    var local = new Date(now.getTime() - now.getTimezoneOffset() * 60000);
    when.value = local.toISOString().slice(0, 16);
  }

  form.addEventListener("click", function (e) {
    var target = e.target;
    if (target.hasAttribute("data-next")) {
      var text = stepProblem(current);
      problem(steps[current], text);
      if (!text) { show(current + 1); }
    } else if (target.hasAttribute("data-back")) {
      show(current - 1);
    }
  });

  form.addEventListener("submit", function (e) {
    for (var i = 0; i < steps.length; i += 1) {
      var text = stepProblem(i);
      if (text) { e.preventDefault(); show(i); problem(steps[i], text); return; }
    }
    var offset = form.elements.utc_offset;
    if (offset && when && when.value) {
      offset.value = String(-new Date(when.value).getTimezoneOffset());
    }
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; button.textContent = "Checking the photos and searching…"; }
  });

  Array.prototype.forEach.call(form.querySelectorAll(".wizard-nav, [data-back]"), function (el) { el.hidden = false; });
  if (progress) { progress.hidden = false; }
  show(0, false);
})();
