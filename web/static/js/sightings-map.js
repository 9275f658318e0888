// The search page's map: the last-seen place and the search radius (the owner's own), and the
// coarse area of every shared sighting (an H3 cell outline, never a camera's place), labelled
// like the timeline and joined in time order.  Data from the page's own JSON API.  Without tiles
// the map is a blank grid with the same shapes; without JavaScript the timeline says it all.
(function () {
  "use strict";
  var el = document.getElementById("sightings-map");
  if (!el || typeof L === "undefined") { return; }
  var xhr = new XMLHttpRequest();
  xhr.open("GET", el.dataset.url);
  xhr.setRequestHeader("Accept", "application/json");
  xhr.onload = function () {
    var data = null;
    try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    if (xhr.status !== 200 || !data) { return; }
    el.hidden = false;
    L.Icon.Default.imagePath = el.dataset.iconPath;
    var map = L.map(el, { scrollWheelZoom: false });
    if (el.dataset.tileUrl) {
      L.tileLayer(el.dataset.tileUrl, { maxZoom: 19, attribution: el.dataset.attribution || "" }).addTo(map);
    }
    var seen = data.last_seen;
    L.circle([seen.lat, seen.lon], { radius: seen.radius_m, color: "#1d4f91", weight: 2,
                                             fillOpacity: 0.05 }).addTo(map);
    L.marker([seen.lat, seen.lon], { keyboard: false, title: "Last seen" }).addTo(map)
      .bindTooltip("Last seen", { permanent: true, direction: "top", offset: [0, -30] });
    var bounds = L.latLng(seen.lat, seen.lon).toBounds(seen.radius_m * 2);
    var path = [[seen.lat, seen.lon]];
    data.sightings.forEach(function (s) {
      var shape = L.polygon(s.area.boundary, { color: "#a11d1d", weight: 2, fillOpacity: 0.25 }).addTo(map);
      shape.bindTooltip("Area " + s.area_label, { permanent: true, direction: "center", className: "area-tip" });
      bounds.extend(shape.getBounds());
      path.push(s.area.center);
    });
    if (path.length > 1) {
      L.polyline(path, { color: "#7a4d00", weight: 3, dashArray: "6 6" }).addTo(map);
    }
    map.fitBounds(bounds, { padding: [20, 20], animate: false });
    el.dataset.ready = String(data.sightings.length);
  };
  xhr.send();
})();
