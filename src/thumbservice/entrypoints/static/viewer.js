// The thumbservice viewer: OpenSeadragon on a frame's IIIF tile source. Its state (the frame,
// its display options, the choices offered, the service's paths) comes from the page's
// application/json block; the token stays in the tab's sessionStorage.
"use strict";
const STATE = JSON.parse(document.getElementById("state").textContent);
const TOKEN_KEY = "thumbservice-token";
const options = Object.assign({}, STATE.options);
const status = document.getElementById("status");
window.thumbservice = {tilesLoaded: 0, fullResolutionTiles: 0, tilesFailed: 0, opened: 0};

function authorization() {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  if (!token) return null;
  return /^(Token|Bearer) /.test(token) ? token : "Token " + token;
}
function headers() {
  const value = authorization();
  return value ? {Authorization: value} : {};
}
function identifier() {
  const names = Object.keys(options).filter(n => options[n] !== "").sort();
  return [STATE.frame].concat(names.map(n => n + "=" + options[n])).join(";");
}
function fill(name) {
  const select = document.getElementById(name);
  const values = [""].concat(STATE.choices[name]);
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = value || "default";
    select.appendChild(option);
  }
  select.value = options[name] || "";
  select.addEventListener("change", () => { options[name] = select.value; load(); });
}

const viewer = OpenSeadragon({
  id: "osd",
  prefixUrl: STATE.static + "images/",
  loadTilesWithAjax: true,
  ajaxHeaders: headers(),
  showNavigator: true,
  maxZoomPixelRatio: 4,
  immediateRender: false,
});
window.thumbservice.viewer = viewer;
viewer.addHandler("tile-loaded", event => {
  window.thumbservice.tilesLoaded += 1;
  if (event.tile.level === event.tiledImage.source.maxLevel) {
    window.thumbservice.fullResolutionTiles += 1;
  }
});
viewer.addHandler("tile-load-failed", () => { window.thumbservice.tilesFailed += 1; });
viewer.addHandler("open", () => { window.thumbservice.opened += 1; });

async function load() {
  const id = identifier();
  history.replaceState(null, "", STATE.view + id);
  status.textContent = "";
  const auth = headers();
  const frame = await fetch(STATE.view + id + "/frame.json", {headers: auth});
  if (!frame.ok) {
    const answer = await frame.json().catch(() => ({}));
    status.textContent = (answer.message || ("HTTP " + frame.status))
      + (auth.Authorization ? "" : ": a proprietary frame needs your archive token");
    viewer.close();
    return;
  }
  const about = await frame.json();
  document.getElementById("basename").textContent = about.basename || STATE.frame;
  document.getElementById("proposal").textContent = about.proposal_id || "-";
  document.getElementById("color-choice").hidden = !about.color_available;
  document.getElementById("color").checked = options.color === "true";
  const info = await fetch(STATE.iiif + id + "/info.json", {headers: auth});
  if (!info.ok) {
    const answer = await info.json().catch(() => ({}));
    status.textContent = answer.message || ("HTTP " + info.status);
    viewer.close();
    return;
  }
  viewer.setAjaxHeaders(auth, true);  // the navigator too
  viewer.open(await info.json());
}

fill("stretch");
fill("cmap");
document.getElementById("color").addEventListener("change", event => {
  options.color = event.target.checked ? "true" : "";
  // A colour composite has no colour map (the service refuses one): the select is let go.
  const cmap = document.getElementById("cmap");
  cmap.disabled = event.target.checked;
  if (cmap.disabled) { cmap.value = ""; options.cmap = ""; }
  load();
});
document.getElementById("token-form").addEventListener("submit", event => {
  event.preventDefault();
  const field = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, field.value.trim());
  field.value = "";
  load();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  load();
});
load();
