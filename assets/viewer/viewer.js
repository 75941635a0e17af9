// attnflow view: the page's program. It reads the data attnflow embedded (the JSON in
// #attnflow-data, written by src/view.rs), draws the tokens with three.js (vendored,
// assets/viewer/three/) and recomputes attention weights from the tokens and the model
// (docs/model.md §1). Nothing here reaches the network.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const $ = (id) => document.getElementById(id);

function fail(msg) {
  $('error').textContent = msg;
  console.error('attnflow view: ' + msg);
}

function bytesOf(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const D = JSON.parse($('attnflow-data').textContent);
const F = D.times.length, B = D.batch, M = D.shown, d = D.d;
const pos16 = new Int16Array(bytesOf(D.positions).buffer);
const lab16 = new Uint16Array(bytesOf(D.labels).buffer);
const tokenIndex = D.token_index ? Int32Array.from(D.token_index) : null;
const origIndex = (j) => (tokenIndex ? tokenIndex[j] : j);

const state = { frame: F - 1, system: 0, colour: 'index', proj: 'end', coords: [0, 1, 2],
                clicked: -1, playing: false, weights: null };

// ---------------------------------------------------------------------------------------
// Data access: the tokens of a snapshot and a system, in f64.
function tokens(f, s) {
  const start = (f * B + s) * M * d;
  const x = new Float64Array(M * d);
  for (let i = 0; i < M * d; i++) x[i] = pos16[start + i] * D.scale;
  return x;
}
function labels(f, s) {
  const start = (f * B + s) * M;
  return lab16.subarray(start, start + M);
}

// The 3 directions tokens are drawn along: the axes for d <= 3, else principal directions
// (or chosen coordinates).
function directions(s) {
  if (d <= 3) return null;
  if (state.proj === 'coords') {
    return state.coords.map((c) => {
      const v = new Float64Array(d);
      v[Math.min(Math.max(c | 0, 0), d - 1)] = 1;
      return v;
    });
  }
  const flat = (state.proj === 'start' ? D.pca_start : D.pca_end)[s];
  return [0, 1, 2].map((k) => Float64Array.from(flat.slice(k * d, (k + 1) * d)));
}

// ---------------------------------------------------------------------------------------
// Colour maps.
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function seq(t, out, o) {
  t = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
  const k = Math.min(Math.floor(t), VIRIDIS.length - 2), u = t - k;
  for (let c = 0; c < 3; c++) out[o + c] = (VIRIDIS[k][c] * (1 - u) + VIRIDIS[k + 1][c] * u) / 255;
}
const TAB10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
               '#7f7f7f', '#bcbd22', '#17becf'].map((h) => new THREE.Color(h));
function categorical(k) {
  if (k < TAB10.length) return TAB10[k];
  return new THREE.Color().setHSL((k * 0.618034) % 1, 0.65, 0.5);
}

// ---------------------------------------------------------------------------------------
// Attention weights of query i against every shown token (docs/model.md §1): scores
// beta <Q x_i, K x_j> - slope (i - j), softmax (SA) or exp(score) / |J(i)| (USA), keys j <= i
// under the causal mask. Indices i, j are the folder's token indices.
function usaLogNormaliser(i, nKeys) {
  const A = D.attention;
  const seen = A.mask === 'causal' ? i + 1 : nKeys;
  const a = A.alibi_slope;
  if (A.alibi_excludes_self && a > 0) {
    if (seen <= 1) return 0;
    return -a + Math.log(-Math.expm1(-a * (seen - 1)) / -Math.expm1(-a));
  }
  if (a === 0) return Math.log(seen);
  return Math.log(-Math.expm1(-a * seen) / -Math.expm1(-a));
}
function attentionRow(x, s, i) {
  const A = D.attention, beta = D.betas[s];
  const Q = A.q[s], K = A.k[s];
  const xi = x.subarray(i * d, (i + 1) * d);
  const q = new Float64Array(d), u = new Float64Array(d);
  for (let a = 0; a < d; a++) { let v = 0; for (let b = 0; b < d; b++) v += Q[a * d + b] * xi[b]; q[a] = v; }
  // u = K^T q, so that <Q x_i, K x_j> = <u, x_j>.
  for (let b = 0; b < d; b++) { let v = 0; for (let a = 0; a < d; a++) v += K[a * d + b] * q[a]; u[b] = v; }
  const oi = origIndex(i);
  const w = new Float64Array(M);
  let mx = -Infinity;
  for (let j = 0; j < M; j++) {
    const oj = origIndex(j);
    if (A.mask === 'causal' && oj > oi) { w[j] = NaN; continue; }
    let dot = 0;
    for (let b = 0; b < d; b++) dot += u[b] * x[j * d + b];
    const sc = beta * dot - A.alibi_slope * (oi - Math.min(oj, oi));
    w[j] = sc;
    if (sc > mx) mx = sc;
  }
  if (A.kind === 'sa') {
    let total = 0;
    for (let j = 0; j < M; j++) if (!Number.isNaN(w[j])) { w[j] = Math.exp(w[j] - mx); total += w[j]; }
    for (let j = 0; j < M; j++) if (!Number.isNaN(w[j])) w[j] /= total;
  } else {
    const logZ = usaLogNormaliser(oi, D.n);
    for (let j = 0; j < M; j++) if (!Number.isNaN(w[j])) w[j] = Math.exp(w[j] - logZ);
  }
  return w;
}

// ---------------------------------------------------------------------------------------
// The scene.
const stage = $('stage');
let renderer;
try {
  renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
} catch (e) {
  fail('this browser cannot draw with WebGL2 (' + e.message + '): the page needs WebGL2');
  throw e;
}
renderer.setPixelRatio(window.devicePixelRatio || 1);
renderer.setClearColor(0xffffff, 1);
stage.appendChild(renderer.domElement);
const scene = new THREE.Scene();
const camera = new THREE.PerspectiveCamera(35, 1, 0.01, 100);
const controls = new OrbitControls(camera, renderer.domElement);
controls.enableDamping = false;
const onSphere = D.geometry === 'sphere';
let radius = 1;
if (d === 2) {
  camera.position.set(0, 0, 4.2);
  controls.enableRotate = false;
  if (onSphere) {
    const pts = [];
    for (let k = 0; k <= 256; k++) { const t = (2 * Math.PI * k) / 256; pts.push(new THREE.Vector3(Math.cos(t), Math.sin(t), 0)); }
    scene.add(new THREE.Line(new THREE.BufferGeometry().setFromPoints(pts),
      new THREE.LineBasicMaterial({ color: 0x999999 })));
  }
} else {
  camera.position.set(2.2, 1.5, 2.8);
  if (onSphere) {
    const sphere = new THREE.Mesh(new THREE.SphereGeometry(0.995, 32, 16),
      new THREE.MeshBasicMaterial({ color: 0xb0b0b0, wireframe: true, transparent: true, opacity: 0.13 }));
    scene.add(sphere);
  }
}

controls.target.set(0, 0, 0);
controls.update();

const geometry = new THREE.BufferGeometry();
const posAttr = new THREE.BufferAttribute(new Float32Array(M * 3), 3);
const colAttr = new THREE.BufferAttribute(new Float32Array(M * 3), 3);
const sizeAttr = new THREE.BufferAttribute(new Float32Array(M), 1);
geometry.setAttribute('position', posAttr);
geometry.setAttribute('acolor', colAttr);
geometry.setAttribute('asize', sizeAttr);
const baseSize = M <= 256 ? 9 : M <= 2048 ? 6 : M <= 16384 ? 4 : 2.5;
// Back-face fading as in the PNGs: on the sphere in d = 3, tokens on the far side are pale.
const material = new THREE.ShaderMaterial({
  uniforms: { fade: { value: d === 3 && onSphere ? 1 : 0 }, pixelRatio: { value: renderer.getPixelRatio() } },
  vertexShader: `
    attribute vec3 acolor; attribute float asize;
    uniform float fade; uniform float pixelRatio;
    varying vec3 vColor; varying float vAlpha;
    void main() {
      vColor = acolor;
      float facing = dot(normalize(position), normalize(cameraPosition));
      vAlpha = fade > 0.5 ? (facing >= 0.0 ? 1.0 : 0.22) : 1.0;
      gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0);
      gl_PointSize = asize * pixelRatio;
    }`,
  fragmentShader: `
    varying vec3 vColor; varying float vAlpha;
    void main() {
      vec2 p = gl_PointCoord - vec2(0.5);
      if (dot(p, p) > 0.25) discard;
      gl_FragColor = vec4(vColor, vAlpha);
    }`,
  transparent: true,
  depthWrite: false,
});
const points = new THREE.Points(geometry, material);
points.frustumCulled = false;
scene.add(points);

let current = null; // f64 tokens of the shown snapshot and system

function updatePositions() {
  current = tokens(state.frame, state.system);
  const p = posAttr.array;
  const dirs = directions(state.system);
  let r = 0;
  for (let i = 0; i < M; i++) {
    const xi = current.subarray(i * d, (i + 1) * d);
    if (dirs) {
      for (let k = 0; k < 3; k++) { let v = 0; for (let b = 0; b < d; b++) v += dirs[k][b] * xi[b]; p[i * 3 + k] = v; }
    } else {
      p[i * 3] = xi[0]; p[i * 3 + 1] = xi[1]; p[i * 3 + 2] = d === 3 ? xi[2] : 0;
    }
    r = Math.max(r, Math.hypot(p[i * 3], p[i * 3 + 1], p[i * 3 + 2]));
  }
  posAttr.needsUpdate = true;
  if (!onSphere && r > 0 && Math.abs(r - radius) / radius > 0.5) {
    radius = r;
    camera.position.setLength(4.2 * r);
    controls.update();
  }
}

function updateColours() {
  const c = colAttr.array, sz = sizeAttr.array;
  sz.fill(baseSize);
  const note = [];
  if (state.colour === 'cluster') {
    const lab = labels(state.frame, state.system);
    for (let i = 0; i < M; i++) { const col = categorical(lab[i]); c[i * 3] = col.r; c[i * 3 + 1] = col.g; c[i * 3 + 2] = col.b; }
  } else if (state.colour === 'attention' && state.clicked >= 0 && D.attention.available) {
    const w = attentionRow(current, state.system, state.clicked);
    state.weights = w;
    let mx = 0;
    for (let j = 0; j < M; j++) if (w[j] > mx) mx = w[j];
    for (let j = 0; j < M; j++) {
      if (Number.isNaN(w[j])) { c[j * 3] = c[j * 3 + 1] = c[j * 3 + 2] = 0.85; continue; }
      seq(mx > 0 ? w[j] / mx : 0, c, j * 3);
    }
    const i = state.clicked;
    c[i * 3] = 1; c[i * 3 + 1] = 0; c[i * 3 + 2] = 0;
    sz[i] = baseSize * 2.2;
    showWeights(w);
  } else {
    for (let i = 0; i < M; i++) seq(M > 1 ? i / (M - 1) : 0, c, i * 3);
    if (state.colour === 'attention') note.push(D.attention.available ? 'Click a token.' : '');
  }
  colAttr.needsUpdate = true;
  sizeAttr.needsUpdate = true;
}

function showWeights(w) {
  let sum = 0, keys = 0;
  const order = [];
  for (let j = 0; j < M; j++) if (!Number.isNaN(w[j])) { sum += w[j]; keys++; order.push(j); }
  order.sort((a, b) => w[b] - w[a]);
  const top = order.slice(0, 5).map((j) => `token ${origIndex(j)}: ${w[j].toFixed(4)}`).join('<br>');
  const info = $('attn-info');
  info.dataset.sum = String(sum);
  info.dataset.token = String(origIndex(state.clicked));
  const what = D.attention.kind === 'sa' ? 'sum of the weights' : 'sum of the weights (USA: not normalised)';
  info.innerHTML = `Token ${origIndex(state.clicked)} attends to ${keys} token${keys === 1 ? '' : 's'} ` +
    `(${D.attention.kind.toUpperCase()}, ${D.attention.mask} mask, beta = ${fmt(D.betas[state.system])}` +
    `${D.attention.note ? ', ' + D.attention.note : ''}); ${what}: <b id="attn-sum">${sum.toFixed(6)}</b>.` +
    `<br>Largest:<br>${top}`;
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'unknown';
  return Number(v.toPrecision(6)).toString();
}

function updateText() {
  const t = D.times[state.frame];
  const folderSnap = D.snapshot_index[state.frame];
  $('timelabel').textContent = (t === null ? 'final state' : `t = ${fmt(t)}`) +
    ` (snapshot ${state.frame + 1} of ${F} shown${F < D.snapshots ? `, #${folderSnap} of the folder's ${D.snapshots}` : ''})`;
  const k = D.counts[state.frame][state.system];
  const cl = $('clusters');
  cl.dataset.count = String(k);
  cl.innerHTML = `Clusters at this time (cos &ge; ${D.cluster_cos}, union-find as the CLI): <b id="cluster-count">${k}</b>`;
  $('beta').textContent = `beta = ${fmt(D.betas[state.system])}`;
  $('overlay').textContent = `${D.shown === D.n ? `n = ${D.n}` : `${D.shown} of n = ${D.n} tokens shown`}, d = ${d}` +
    (B > 1 ? `, system ${state.system}` : '') + (t === null ? ', final' : `, t = ${fmt(t)}`) +
    (d > 3 ? `; projected on ${state.proj === 'coords' ? 'coordinates ' + state.coords.join(', ') : 'the top 3 principal directions of the ' + state.proj}` : '');
}

function render() {
  renderer.render(scene, camera);
}

function resize() {
  const w = stage.clientWidth, h = stage.clientHeight;
  renderer.setSize(w, h, false);
  camera.aspect = w / Math.max(h, 1);
  camera.updateProjectionMatrix();
  render();
}

function refresh() {
  updatePositions();
  updateColours();
  updateText();
  drawMetrics();
  drawHeatmap();
  render();
}

// ---------------------------------------------------------------------------------------
// Picking: the shown token nearest the pointer on screen (front side first on the sphere).
function screenOf(i) {
  const v = new THREE.Vector3(posAttr.array[i * 3], posAttr.array[i * 3 + 1], posAttr.array[i * 3 + 2]);
  const front = v.dot(camera.position) >= 0;
  v.project(camera);
  const rect = renderer.domElement.getBoundingClientRect();
  return { x: rect.left + (v.x + 1) / 2 * rect.width, y: rect.top + (1 - v.y) / 2 * rect.height, front };
}
function pick(cx, cy) {
  let best = -1, bestD = 12 * 12, bestFront = false;
  for (let i = 0; i < M; i++) {
    const s = screenOf(i);
    const dd = (s.x - cx) ** 2 + (s.y - cy) ** 2;
    const front = s.front || d !== 3 || !onSphere;
    if (dd < bestD || (front && !bestFront && dd < 12 * 12)) {
      if (bestFront && !front) continue;
      best = i; bestD = dd; bestFront = front;
    }
  }
  return best;
}
let down = null;
renderer.domElement.addEventListener('pointerdown', (e) => { down = [e.clientX, e.clientY]; });
renderer.domElement.addEventListener('pointerup', (e) => {
  if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > 4) return;
  const i = pick(e.clientX, e.clientY);
  if (i < 0) return;
  if (!D.attention.available) {
    $('attn-info').textContent = `Token ${origIndex(i)}: attention weights not shown: ${D.attention.reason}.`;
    return;
  }
  state.clicked = i;
  state.colour = 'attention';
  $('colour').value = 'attention';
  updateColours();
  render();
});

// ---------------------------------------------------------------------------------------
// Metrics: energy (top) and mean / min cosine (bottom) against t, a cursor at the current time.
function drawMetrics() {
  const cv = $('metrics'), g = cv.getContext('2d');
  g.clearRect(0, 0, cv.width, cv.height);
  const m = D.metrics[state.system];
  if (!m || m.t.length === 0) {
    $('metrics-note').textContent = 'This folder has no metrics.csv.';
    cv.style.display = 'none';
    return;
  }
  const t = m.t, tmin = t[0], tmax = t[t.length - 1] || 1;
  const L = 58, R = 8, W = cv.width - L - R;
  const X = (v) => L + (tmax > tmin ? (v - tmin) / (tmax - tmin) : 0) * W;
  const panels = [
    { top: 6, h: 100, series: [['energy', m.energy, '#1f77b4']] },
    { top: 122, h: 100, series: [['mean cos', m.mean_cos, '#2ca02c'], ['min cos', m.min_cos, '#d62728']] },
  ];
  g.font = '10px system-ui, sans-serif';
  for (const p of panels) {
    let lo = Infinity, hi = -Infinity;
    for (const [, ys] of p.series) for (const y of ys) if (y !== null && Number.isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
    if (!(hi > lo)) { hi = lo + 1; lo -= 1; }
    const Y = (v) => p.top + p.h - ((v - lo) / (hi - lo)) * p.h;
    g.strokeStyle = '#ccc'; g.strokeRect(L, p.top, W, p.h);
    g.fillStyle = '#444';
    g.fillText(fmt(hi), 2, p.top + 9); g.fillText(fmt(lo), 2, p.top + p.h);
    let lx = L + 6;
    for (const [name, ys, colour] of p.series) {
      g.strokeStyle = colour; g.lineWidth = 1.5; g.beginPath();
      let started = false;
      for (let k = 0; k < t.length; k++) {
        if (ys[k] === null || !Number.isFinite(ys[k])) continue;
        if (!started) { g.moveTo(X(t[k]), Y(ys[k])); started = true; } else g.lineTo(X(t[k]), Y(ys[k]));
      }
      g.stroke();
      g.fillStyle = colour; g.fillText(name, lx, p.top + 12); lx += g.measureText(name).width + 12;
    }
  }
  g.fillStyle = '#444'; g.fillText(`t = ${fmt(tmin)}`, L, cv.height - 6);
  g.fillText(`${fmt(tmax)}`, L + W - 30, cv.height - 6);
  const now = D.times[state.frame] === null ? tmax : D.times[state.frame];
  g.strokeStyle = '#000'; g.lineWidth = 1; g.beginPath();
  g.moveTo(X(now), 4); g.lineTo(X(now), 224); g.stroke();
  $('metrics-note').textContent = 'The black line is the current time.';
}

// ---------------------------------------------------------------------------------------
// The attention matrix at the current time, tokens ordered by cluster (n <= 2048).
function drawHeatmap() {
  const cv = $('heat'), note = $('heat-note');
  if (D.n > 2048 || !D.attention.available) {
    cv.style.display = 'none';
    note.textContent = D.n > 2048 ? `The attention matrix is drawn for n <= 2048 tokens (this run has n = ${D.n}).`
      : `No attention matrix: ${D.attention.reason}.`;
    return;
  }
  const lab = labels(state.frame, state.system);
  const order = Array.from({ length: M }, (_, i) => i).sort((a, b) => lab[a] - lab[b] || a - b);
  const px = Math.min(M, 512);
  cv.width = px; cv.height = px;
  const g = cv.getContext('2d');
  const acc = new Float64Array(px * px), cnt = new Float64Array(px * px);
  let mx = 0;
  for (let r = 0; r < M; r++) {
    const w = attentionRow(current, state.system, order[r]);
    const pr = Math.floor((r * px) / M);
    for (let c = 0; c < M; c++) {
      const v = w[order[c]];
      if (Number.isNaN(v)) continue;
      const k = pr * px + Math.floor((c * px) / M);
      acc[k] += v; cnt[k] += 1;
    }
  }
  for (let k = 0; k < px * px; k++) if (cnt[k] > 0) { acc[k] /= cnt[k]; if (acc[k] > mx) mx = acc[k]; }
  const img = g.createImageData(px, px), rgb = [0, 0, 0];
  for (let k = 0; k < px * px; k++) {
    if (cnt[k] === 0) { img.data[k * 4] = img.data[k * 4 + 1] = img.data[k * 4 + 2] = 235; img.data[k * 4 + 3] = 255; continue; }
    seq(mx > 0 ? acc[k] / mx : 0, rgb, 0);
    img.data[k * 4] = rgb[0] * 255; img.data[k * 4 + 1] = rgb[1] * 255; img.data[k * 4 + 2] = rgb[2] * 255; img.data[k * 4 + 3] = 255;
  }
  g.putImageData(img, 0, 0);
  cv.style.display = '';
  note.textContent = `w_ij at this time (query i down, key j across), tokens ordered by cluster; ` +
    `colour from 0 to the largest weight ${fmt(mx)}${D.attention.note ? '; ' + D.attention.note : ''}.`;
}

// ---------------------------------------------------------------------------------------
// Controls.
function setFrame(k) {
  state.frame = Math.min(Math.max(k, 0), F - 1);
  $('time').value = String(state.frame);
  refresh();
}
$('time').max = String(F - 1);
$('time').value = String(state.frame);
$('time').addEventListener('input', () => setFrame(Number($('time').value)));
$('prev').addEventListener('click', () => setFrame(state.frame - 1));
$('next').addEventListener('click', () => setFrame(state.frame + 1));
let lastTick = 0, carry = 0;
function tick(now) {
  if (!state.playing) return;
  if (now - lastTick > 1000 / 15) {
    carry += Number($('speed').value);
    lastTick = now;
    if (carry >= 1) {
      const step = Math.floor(carry); carry -= step;
      const next = state.frame + step;
      setFrame(next >= F ? 0 : next);
    }
  }
  requestAnimationFrame(tick);
}
$('play').addEventListener('click', () => {
  state.playing = !state.playing;
  $('play').textContent = state.playing ? 'Pause' : 'Play';
  if (state.playing) { if (state.frame === F - 1) setFrame(0); requestAnimationFrame(tick); }
});
if (F < 2) for (const id of ['time', 'prev', 'next', 'play', 'speed']) $(id).disabled = true;
const sel = $('system');
for (let s = 0; s < B; s++) {
  const o = document.createElement('option');
  o.value = String(s); o.textContent = `${s} (beta = ${fmt(D.betas[s])})`;
  sel.appendChild(o);
}
if (B < 2) $('system-row').style.display = 'none';
sel.addEventListener('change', () => { state.system = Number(sel.value); state.clicked = -1; refresh(); });
if (d <= 3) $('proj-row').style.display = 'none';
const coordsBox = $('coords-box');
coordsBox.style.display = 'none';
$('proj').addEventListener('change', () => {
  state.proj = $('proj').value;
  coordsBox.style.display = state.proj === 'coords' ? '' : 'none';
  refresh();
});
for (const [k, id] of ['c0', 'c1', 'c2'].entries()) {
  $(id).max = String(d - 1);
  $(id).addEventListener('change', () => { state.coords[k] = Number($(id).value); refresh(); });
}
$('colour').addEventListener('change', () => { state.colour = $('colour').value; refresh(); });
if (!D.attention.available) {
  $('attn-info').textContent = `Attention weights: not shown: ${D.attention.reason}.`;
  $('colour').querySelector('option[value=attention]').disabled = true;
}
controls.addEventListener('change', render);
window.addEventListener('resize', resize);

// ---------------------------------------------------------------------------------------
// Text.
$('desc').textContent = `${D.description || D.source + ' folder'}. ${D.folder}`;
for (const n of D.notes) { const p = document.createElement('div'); p.className = 'note'; p.textContent = n; $('notes').appendChild(p); }
$('credits').textContent = `attnflow ${D.attnflow}; drawn with three.js ${D.three} (MIT licence).`;

resize();
refresh();

// For scripts (the browser tests) and the console.
window.attnflowViewer = {
  data: D, state, setFrame, screenOf, pick, render, camera, controls,
  clusterCount: () => D.counts[state.frame][state.system],
  ready: true,
};
document.body.dataset.ready = '1';
