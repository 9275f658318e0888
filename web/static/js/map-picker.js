// Place picker for forms with latitude/longitude inputs: a Leaflet map (served from this site)
// on an element with data-lat-input / data-lon-input.  Tap the map to set the inputs; typing in
// them moves the marker.  Without a tile server the map is a blank grid and typing still works;
// without JavaScript the inputs alone work.
(function () {
  "use strict";
  var el = document.querySelector("[data-lat-input]");
  if (!el || typeof L === "undefined") { return; }
  var latInput = document.getElementById(el.dataset.latInput);
  var lonInput = document.getElementById(el.dataset.lonInput);
  var hint = document.getElementById("map-hint");
  var locate = document.getElementById("use-location");
  el.hidden = false;
  if (hint && hint.textContent.trim()) { hint.hidden = false; }

  L.Icon.Default.imagePath = el.dataset.iconPath;
  var map = L.map(el, { worldCopyJump: true });
  if (el.dataset.tileUrl) {
    L.tileLayer(el.dataset.tileUrl, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
  }
  var marker = null;

  function current() {
    var lat = parseFloat(latInput.value), lon = parseFloat(lonInput.value);
    if (isFinite(lat) && isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) {
      return L.latLng(lat, lon);
    }
    return null;
  }
  function place(latlng, pan) {
    if (marker) { marker.setLatLng(latlng); } else { marker = L.marker(latlng, { keyboard: false }).addTo(map); }
    if (pan) { map.setView(latlng, Math.max(map.getZoom() || 0, 16)); }
  }
  function fill(latlng) {
    var wrapped = latlng.wrap();
    latInput.value = wrapped.lat.toFixed(6);
    lonInput.value = wrapped.lng.toFixed(6);
  }

  var start = current();
  if (start) { map.setView(start, 16); place(start, false); } else { map.setView([20, 0], 2); }
  map.on("click", function (e) { place(e.latlng, false); fill(e.latlng); });
  [latInput, lonInput].forEach(function (input) {
    input.addEventListener("change", function () { var p = current(); if (p) { place(p, true); } });
  });

  if (locate && navigator.geolocation) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      locate.disabled = true;
      navigator.geolocation.getCurrentPosition(function (pos) {
        var p = L.latLng(pos.coords.latitude, pos.coords.longitude);
        place(p, true); fill(p); locate.disabled = false;
      }, function () {
        locate.disabled = false;
        locate.textContent = "Location not available: tap the map or type the coordinates";
      }, { enableHighAccuracy: true, timeout: 15000 });
    });
  }
})();
