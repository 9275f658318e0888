// Clip upload with progress: each chosen or dropped file is sent on its own to the JSON API
// (XHR, so the browser reports upload progress), then its processing status is polled until the
// worker has finished it; the page's clip list shows each clip and its status as it changes.
// Without JavaScript the form posts all files to the page instead.
(function () {
  "use strict";
  // The clip page's "filmed from" form: the browser's offset from UTC goes with the local time typed.
  var offset = document.getElementById("offset_minutes");
  if (offset) { offset.value = String(-new Date().getTimezoneOffset()); }
  // The camera page's time zone field: offer the browser's zone when none is set yet.
  var zone = document.getElementById("time_zone");
  if (zone && !zone.value) {
    try { zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }
  }
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var input = form.querySelector("input[type=file]");
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-list");
  var token = document.querySelector("meta[name=csrf-token]").content;
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var clipList = document.getElementById("clip-list");
  var noClips = document.getElementById("no-clips");
  var POLL_MS = 2000;

  // The clip in the page's list of clips: added (newest first) or brought up to date.
  function listed(clip) {
    if (!clipList) { return; }
    var tbody = clipList.tBodies[0];
    var tr = tbody.querySelector("tr[data-clip-id='" + clip.id + "']");
    if (!tr) {
      tr = document.createElement("tr");
      tr.setAttribute("data-clip-id", String(clip.id));
      var name = document.createElement("td");
      var link = document.createElement("a");
      link.href = clipList.dataset.clipUrl.replace("{id}", String(clip.id));
      link.textContent = clip.filename;
      name.appendChild(link);
      tr.appendChild(name);
      tr.appendChild(document.createElement("td"));
      tbody.insertBefore(tr, tbody.firstChild);
    }
    tr.cells[1].className = "status-" + clip.status;
    tr.cells[1].textContent = clip.message;
    clipList.hidden = false;
    if (noClips) { noClips.hidden = true; }
  }

  function row(name) {
    var li = document.createElement("li");
    var label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    var bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + name);
    var status = document.createElement("span");
    status.className = "status";
    status.textContent = "waiting";
    li.appendChild(label); li.appendChild(bar); li.appendChild(status);
    list.appendChild(li);
    return { li: li, bar: bar, status: status };
  }

  function say(r, text, state) {
    r.status.textContent = text;
    r.li.className = state ? "status-" + state : "";
  }

  function poll(r, id) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", form.dataset.statusUrl.replace("{id}", id));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status !== 200 || !body) { say(r, "could not read the status; reload the page", "failed"); return; }
      say(r, body.message, body.status);
      listed(body);
      if (body.status === "queued" || body.status === "processing") {
        setTimeout(function () { poll(r, id); }, POLL_MS);
      }
    };
    xhr.onerror = function () { setTimeout(function () { poll(r, id); }, POLL_MS * 2); };
    xhr.send();
  }

  function send(file, done) {
    var r = row(file.name);
    if (file.size > maxBytes) {
      say(r, "too large for this server (limit " + Math.round(maxBytes / 1048576) + " MB); not sent", "failed");
      done(); return;
    }
    var data = new FormData();
    data.append("clip", file, file.name);
    data.append("modified", String(file.lastModified || ""));
    // Camera file names hold local times: the browser's zone reads them when the camera has none set.
    try { data.append("time_zone", Intl.DateTimeFormat().resolvedOptions().timeZone || ""); } catch (e) { /* old browser */ }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.apiUrl);
    xhr.setRequestHeader("X-CSRFToken", token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        r.bar.value = Math.round(100 * e.loaded / e.total);
        say(r, "uploading " + r.bar.value + "%", "");
      }
    };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      r.bar.value = 100;
      if ((xhr.status === 200 || xhr.status === 201) && body && body.clips && body.clips.length) {
        var clip = body.clips[0];
        say(r, clip.message, clip.status);
        listed(clip);
        if (clip.status === "queued" || clip.status === "processing") { poll(r, clip.id); }
      } else {
        say(r, (body && body.error) || ("upload refused (" + xhr.status + ")"), "failed");
      }
      done();
    };
    xhr.onerror = function () { say(r, "the connection failed; try again", "failed"); done(); };
    xhr.send(data);
  }

  // One upload at a time: on a phone's uplink, parallel uploads only slow each other down.
  function sendAll(files) {
    var queue = Array.prototype.slice.call(files);
    function next() { if (queue.length) { send(queue.shift(), next); } }
    next();
  }

  form.addEventListener("submit", function (e) {
    if (!input.files.length) { return; }
    e.preventDefault();
    sendAll(input.files);
    input.value = "";
  });
  input.addEventListener("change", function () { if (input.files.length) { sendAll(input.files); input.value = ""; } });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { sendAll(e.dataTransfer.files); }
  });
})();
