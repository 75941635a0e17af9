// attnflow live: the page's program. It runs SA/USA on the sphere with WebGPU on the kernels
// attnflow embedded (#attnflow-data, written by src/live.rs: the spec-dialect WGSL of every
// specialisation the controls reach), replaying the GPU backend's RK4 step
// (src/backend/gpu/mod.rs, attention.rs; src/integrate/stepper.rs), and draws the tokens with
// three.js (vendored). Without WebGPU it plays a precomputed run. Nothing here reaches the
// network.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const $ = (id) => document.getElementById(id);
const DATA = JSON.parse($('attnflow-data').textContent);

function fail(msg) {
  $('error').textContent = msg;
  console.error('attnflow live: ' + msg);
}

function bytesOf(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const FLAG = Object.fromEntries(DATA.flags);
const STRUCTS = Object.fromEntries(DATA.structs.map((s) => [s.wgsl, s]));
const WG = DATA.workgroup;
const aligned = (size, align) => Math.ceil(size / align) * align;

// The bytes of a WGSL struct from its fields by name, at the offsets attnflow's Rust mirrors
// have (gpu::kernels::contract, checked against naga's layout). Unknown names are an error.
function pack(name, values) {
  const s = STRUCTS[name];
  const buf = new ArrayBuffer(s.size);
  const dv = new DataView(buf);
  const known = new Set(s.fields.map((f) => f.name));
  for (const k of Object.keys(values)) if (!known.has(k)) throw new Error(`${name} has no field ${k}`);
  for (const f of s.fields) {
    const v = values[f.name] ?? 0;
    if (f.ty === 'u32') dv.setUint32(f.offset, v, true);
    else if (f.ty === 'f32') dv.setFloat32(f.offset, v, true);
    else if (f.ty === '[f32; 4]') for (let i = 0; i < 4; i++) dv.setFloat32(f.offset + 4 * i, (v && v[i]) || 0, true);
    else if (!/^\[u32; \d+\]$/.test(f.ty)) throw new Error(`${name}.${f.name}: type ${f.ty}`);
  }
  return buf;
}

// ---------------------------------------------------------------------------------------
// The planner: a port of gpu::plan::plan for one system without a measured speed (the
// native backend's plan on a software adapter, and on a hardware one before calibration),
// checked against the native plans embedded for a set of n before anything runs.
const TARGET_GROUPS = 2048, MAX_SPLITS = 64, MIN_SPLIT_KEYS = 1024;
function plan(spec, n, software, maxGroups) {
  const tk = Math.max(spec.tile_keys, 1), qb = Math.max(spec.queries_per_group, 1);
  const blocks = Math.ceil(n / qb);
  const byGroups = Math.ceil(TARGET_GROUPS / Math.max(blocks, 1));
  const byKeys = Math.max(Math.floor(n / Math.max(MIN_SPLIT_KEYS, tk)), 1);
  const wanted = Math.min(Math.max(Math.min(byGroups, byKeys), 1), MAX_SPLITS, n);
  const splitKeys = Math.min(Math.ceil(Math.ceil(n / wanted) / tk) * tk, n);
  const splits = Math.ceil(n / splitKeys);
  let k = splitKeys;
  if (software) k = Math.min(k, Math.max(Math.floor(spec.software_chunk_keys / tk), 1) * tk);
  k = Math.min(Math.max(k, 1), splitKeys);
  const chunks = Math.ceil(splitKeys / k);
  const groupsX = Math.max(Math.min(blocks, maxGroups), 1);
  const zBlocks = Math.ceil(blocks / groupsX);
  if (zBlocks * splits > maxGroups) throw new Error(`n = ${n} needs ${zBlocks * splits} workgroups along z`);
  const slots = [];
  for (let c = 0; c < chunks; c++) {
    const off = c * k;
    slots.push([off, Math.min(k, splitKeys - off), c === 0, groupsX, zBlocks]);
  }
  return { splits, splitKeys, slots };
}

function checkPlans() {
  let checked = 0;
  const bad = [];
  for (const [i, spec] of DATA.specs.entries()) {
    for (const p of spec.plans) {
      const mine = plan(spec, p.n, p.software, 65535);
      const same = mine.splits === p.splits && mine.splitKeys === p.split_keys &&
        JSON.stringify(mine.slots) === JSON.stringify(p.slots);
      checked++;
      if (!same) bad.push(`spec ${i} n ${p.n} software ${p.software}`);
    }
  }
  if (bad.length) fail(`the page's planner differs from attnflow's for ${bad.join('; ')}`);
  return { checked, mismatches: bad.length };
}

// ---------------------------------------------------------------------------------------
// Tokens: uniform on the sphere from a seed, by the counter-based generator of model::rng
// (the PCG hash of shaders/common.wgsl) and Box-Muller. Not the ChaCha stream of
// `attnflow run --init uniform`.
function pcg(x) {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}
function hash(seed, a, index) {
  let h = pcg(index);
  h = pcg(h ^ a);
  h = pcg(h ^ 7);
  return pcg(h ^ (seed >>> 0));
}
function uniformTokens(n, d, seed) {
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let r2 = 0;
    const v = [];
    for (let e = 0; e < d; e++) {
      const u1 = ((hash(seed, i, 2 * e) >>> 8) + 1) / 16777216;
      const u2 = ((hash(seed, i, 2 * e + 1) >>> 8) + 1) / 16777216;
      const g = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      v.push(g); r2 += g * g;
    }
    const r = Math.sqrt(r2);
    for (let e = 0; e < d; e++) x[i * d + e] = v[e] / r;
  }
  return x;
}

// ---------------------------------------------------------------------------------------
// WebGPU: the adapter, its profile (as gpu::profiles::profile_for picks it), the kernels.
const gpu = { device: null, adapter: null, profile: null, info: null, pipelines: new Map() };

function pickProfile(info, limits, features) {
  const named = (n) => DATA.profiles.find((p) => p.name === n);
  const rule = DATA.profile_rule;
  if (info.isFallbackAdapter) return named(rule.software);
  if (limits.maxComputeWorkgroupStorageSize < DATA.portable_workgroup_bytes) return named(rule.small);
  if (!features.has('subgroups')) return named(rule.no_subgroups);
  return DATA.profiles.find((p) => p.vendor && p.vendor === info.vendor) || named(rule.fallback);
}

async function openGpu() {
  if (!navigator.gpu) return 'this browser has no WebGPU (navigator.gpu is missing)';
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return 'this browser has WebGPU but offers no adapter';
  const a = adapter.limits;
  const features = [];
  // The adapter's own limits, as the native backend asks for them.
  const requiredLimits = {
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
  };
  const profile = pickProfile(adapter.info, a, adapter.features);
  if (profile.subgroups && adapter.features.has('subgroups')) features.push('subgroups');
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  device.lost.then((e) => { if (e.reason !== 'destroyed') fail('the GPU device was lost: ' + e.message); });
  device.addEventListener('uncapturederror', (e) => fail('WebGPU error: ' + e.error.message));
  Object.assign(gpu, { device, adapter, profile, info: adapter.info, features: new Set(features) });
  return null;
}

const KIND = { u: { type: 'uniform' }, d: { type: 'uniform', hasDynamicOffset: true },
               r: { type: 'read-only-storage' }, w: { type: 'storage' } };

async function pipeline(kernel) {
  const text = DATA.texts[kernel.text];
  const key = kernel.layout + '\n' + text;
  if (gpu.pipelines.has(key)) return gpu.pipelines.get(key);
  const device = gpu.device;
  const layout = device.createBindGroupLayout({
    label: kernel.name,
    entries: [...kernel.layout].map((k, i) => ({ binding: i, visibility: GPUShaderStage.COMPUTE, buffer: KIND[k] })),
  });
  const module = device.createShaderModule({ label: kernel.name, code: text });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length) throw new Error(`${kernel.name}: ${errors.map((m) => `line ${m.lineNum}: ${m.message}`).join('; ')}`);
  const pipe = await device.createComputePipelineAsync({
    label: kernel.name,
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: 'main' },
  });
  const out = { pipe, layout };
  gpu.pipelines.set(key, out);
  return out;
}

// ---------------------------------------------------------------------------------------
// One simulation: the GPU backend's buffers and dispatches for batch 1 and one head.
class Sim {
  static async create(cfg) {
    const s = new Sim();
    await s.build(cfg);
    return s;
  }

  async build(cfg) {
    const device = gpu.device, lim = device.limits;
    const { n, d, mask, model, beta, h } = cfg;
    this.cfg = cfg;
    // Tests force another profile's kernels with cfg.profile (as GpuOptions::target does).
    this.profile = cfg.profile ? DATA.profiles.find((p) => p.name === cfg.profile) : gpu.profile;
    if (!this.profile) throw new Error(`no adapter profile ${cfg.profile}`);
    const specIndex = DATA.choose[`${this.profile.name}/${d}/${mask}`];
    const spec = DATA.specs[specIndex];
    if (spec.workgroup_bytes > lim.maxComputeWorkgroupStorageSize)
      throw new Error(`the attention kernel needs ${spec.workgroup_bytes} bytes of workgroup memory, this adapter offers ${lim.maxComputeWorkgroupStorageSize}`);
    if (spec.subgroups && !gpu.features.has('subgroups'))
      throw new Error('the kernel of this profile needs subgroups, which this device lacks');
    this.spec = spec; this.specIndex = specIndex;
    const K = {};
    for (const k of spec.kernels) K[k.name] = await pipeline(k);
    const maxGroups = lim.maxComputeWorkgroupsPerDimension;
    const software = !!gpu.info.isFallbackAdapter;
    const p = plan(spec, n, software, maxGroups);
    this.plan = p;
    const grid = (items) => { const g = Math.max(Math.ceil(items / WG), 1); const x = Math.min(g, maxGroups); return [x, Math.ceil(g / x)]; };
    const [tx, ty] = grid(n), [ex, ey] = grid(n * d), [hx] = grid(n);
    const DV = Math.ceil(d / 4);
    const align = lim.minUniformBufferOffsetAlignment;
    const U = GPUBufferUsage;
    const buffers = [];
    const buf = (label, size, usage, data) => {
      const b = device.createBuffer({ label, size: Math.max(aligned(size, 4), 4), usage: usage | (data ? U.COPY_DST : 0) });
      if (data) device.queue.writeBuffer(b, 0, data);
      buffers.push(b);
      return b;
    };
    const f32 = (a) => Float32Array.from(a);
    // The flags of gpu::kernels::flags for this model.
    const ident = (m) => m.every((v, i) => v === (Math.floor(i / d) === i % d ? 1 : 0));
    const Q = cfg.q || null, Kq = cfg.k || null, V = cfg.v || null;
    let score = null;
    if (Q && Kq) { // M = K^T Q, summed as Weights::score_matrix does (in f64).
      score = new Float64Array(d * d);
      for (let t = 0; t < d; t++) for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) score[r * d + c] += Kq[t * d + r] * Q[t * d + c];
    }
    const scoreM = score || Array.from({ length: d * d }, (_, i) => (Math.floor(i / d) === i % d ? 1 : 0));
    const valueM = V || Array.from({ length: d * d }, (_, i) => (Math.floor(i / d) === i % d ? 1 : 0));
    let flags = FLAG.FLAG_SPHERE;
    if (model === 'usa') flags |= FLAG.FLAG_USA;
    if (mask === 'causal') flags |= FLAG.FLAG_CAUSAL;
    if (ident(Array.from(scoreM))) flags |= FLAG.FLAG_IDENTITY_SCORES;
    if (ident(Array.from(valueM))) flags |= FLAG.FLAG_IDENTITY_VALUES;
    const params = pack('Params', {
      n_queries: n, n_keys: n, batch: 1, flags, token_groups_x: tx, element_groups_x: ex,
      output_scale: 0, alibi_slope: 0, mlp_hidden: 0, hidden_groups_x: hx,
      splits: p.splits, split_keys: p.splitKeys,
    });
    const headStride = aligned(STRUCTS.Head.size, align);
    const chunkStride = aligned(STRUCTS.Chunk.size, align);
    const combineStride = aligned(STRUCTS.Combine.size, align);
    const bytes = 4 * n * d;
    const storage = U.STORAGE | U.COPY_SRC | U.COPY_DST;
    const b = {
      params: buf('params', params.byteLength, U.UNIFORM, params),
      heads: buf('heads', headStride, U.UNIFORM, pack('Head', { index: 0, accumulate: 0, weight: 1, first_token: 0, tokens: n })),
      betas: buf('betas', 4, U.STORAGE, f32([beta])),
      score: buf('score_matrix', 4 * d * d, U.STORAGE, f32(scoreM)),
      value: buf('value_matrix', 4 * d * d, U.STORAGE, f32(valueM)),
      // log Z_i of USA: log |J(i)| (Model::usa_log_normaliser without ALiBi).
      logNorm: buf('log_normaliser', 4 * n, U.STORAGE, f32(Array.from({ length: n }, (_, i) => Math.log(mask === 'causal' ? i + 1 : n)))),
      q: buf('queries', 16 * DV * n, storage),
      acc: buf('softmax_acc', 16 * DV * n * p.splits, storage),
      ml: buf('softmax_max_sum', 8 * n * p.splits, storage),
      state: buf('state', bytes, storage),
      stage: buf('stage', bytes, storage),
      k: [0, 1, 2, 3].map((s) => buf('k' + s, bytes, storage)),
      status: buf('status', 4, storage),
      step: buf('step', STRUCTS.Step.size, U.UNIFORM | U.COPY_DST),
      coeffs: buf('rk_coefficients', combineStride * 4, U.UNIFORM | U.COPY_DST),
      readback: buf('readback', bytes, U.MAP_READ | U.COPY_DST),
    };
    const chunkBytes = new Uint8Array(chunkStride * p.slots.length);
    p.slots.forEach(([keyOffset, keyCount, first, groupsX], i) => {
      chunkBytes.set(new Uint8Array(pack('Chunk', { key_offset: keyOffset, key_count: keyCount, first: first ? 1 : 0, first_block: 0, groups_x: groupsX, first_system: 0 })), i * chunkStride);
    });
    b.chunks = buf('chunks', chunkBytes.byteLength, U.UNIFORM, chunkBytes);
    this.b = b; this.buffers = buffers;
    this.n = n; this.d = d; this.tx = tx; this.ty = ty;
    const whole = (x) => ({ buffer: x });
    const group = (kernel, label, resources) => device.createBindGroup({
      label, layout: K[kernel].layout, entries: resources.map((r, i) => ({ binding: i, resource: r })),
    });
    const slotOf = (x, T) => ({ buffer: x, size: STRUCTS[T].size });
    // grid(tokens, per_token, groups_x) of AttentionPass::ops.
    const pieceGrid = (perToken) => { const g = Math.max(Math.ceil(n * perToken / WG), 1); const x = Math.min(g, Math.max(ex, 1)); return [x, Math.ceil(g / x), 1]; };
    // The dispatches of one field evaluation reading z and writing out (AttentionPass::ops,
    // then tangent_project: the ODE on the sphere).
    const field = (z, out) => {
      const ops = [];
      ops.push([K.queries.pipe, group('queries', 'queries', [whole(b.params), slotOf(b.heads, 'Head'), whole(b.betas), whole(b.score), whole(z), whole(b.q)]), [0], pieceGrid(d)]);
      const attention = group('attention', 'attention', [whole(b.params), slotOf(b.chunks, 'Chunk'), whole(b.q), whole(z), whole(b.acc), whole(b.ml)]);
      p.slots.forEach(([, , , groupsX, zBlocks], i) => ops.push([K.attention.pipe, attention, [i * chunkStride], [groupsX, 1, zBlocks * p.splits]]));
      ops.push([K.attention_merge.pipe, group('attention_merge', 'attention_merge', [whole(b.params), whole(b.acc), whole(b.ml), whole(b.logNorm)]), null, [ex, ey, 1]]);
      ops.push([K.attention_finish.pipe, group('attention_finish', 'attention_finish', [whole(b.params), slotOf(b.heads, 'Head'), whole(b.value), whole(b.acc), whole(out)]), [0], pieceGrid(d)]);
      ops.push([K.tangent_project.pipe, group('tangent_project', 'tangent_project', [whole(b.params), whole(z), whole(out)]), null, [tx, ty, 1]]);
      return ops;
    };
    const combineGroup = group('rk_combine', 'rk_combine', [slotOf(b.coeffs, 'Combine'), whole(b.step), whole(b.state), whole(b.stage), ...b.k.map(whole), whole(b.status)]);
    // The Stepper's sequence for the RK4 tableau: stage s evaluates the field at the state
    // (s = 0) or at stage = state + h sum_j a[s][j] k_j; the step ends with
    // state = renormalise(state + h sum_s b[s] k_s).
    const { a, b: weights } = DATA.tableau;
    const combines = [];
    const coeffBytes = new Uint8Array(combineStride * 4);
    const combine = (terms, toState) => {
      const coeffs = [0, 0, 0, 0];
      let count = 0;
      for (const [j, c] of terms) { coeffs[j] = c; count = Math.max(count, j + 1); }
      const slot = combines.length;
      coeffBytes.set(new Uint8Array(pack('Combine', {
        coeffs, terms: count, to_state: toState ? 1 : 0, renormalise: toState ? 1 : 0, tokens: n,
        groups_x: tx, noise_amplitude: 0, noise_common: 0, seed_lo: 0, seed_hi: 0, n, sphere: 1,
      })), slot * combineStride);
      combines.push(slot);
      return [K.rk_combine.pipe, combineGroup, [slot * combineStride], [tx, ty, 1]];
    };
    const ops = [];
    const stages = weights.length;
    for (let s = 0; s < stages; s++) {
      if (s === 0) ops.push(...field(b.state, b.k[0]));
      else {
        const terms = a[s].map((v, j) => [j, h * v]).filter(([, v]) => v !== 0);
        ops.push(combine(terms, false));
        ops.push(...field(b.stage, b.k[s]));
      }
    }
    ops.push(combine(weights.map((v, j) => [j, h * v]).filter(([, v]) => v !== 0), true));
    device.queue.writeBuffer(b.coeffs, 0, coeffBytes);
    this.ops = ops;
    this.layer = 0;
    this.t = 0;
    // Pair interactions of one step: four evaluations over the pairs the mask keeps.
    this.pairsPerStep = stages * (mask === 'causal' ? n * (n + 1) / 2 : n * n);
    this.dispatches = ops.length;
    device.queue.writeBuffer(b.state, 0, cfg.tokens);
  }

  // Records and submits `count` steps, one submission per step as the native backend does.
  steps(count) {
    const device = gpu.device;
    for (let i = 0; i < count; i++) {
      device.queue.writeBuffer(this.b.step, 0, pack('Step', { layer: this.layer }));
      const enc = device.createCommandEncoder({ label: 'step' });
      const pass = enc.beginComputePass({ label: 'rk4' });
      for (const [pipe, group, offsets, g] of this.ops) {
        pass.setPipeline(pipe);
        if (offsets) pass.setBindGroup(0, group, offsets); else pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(g[0], g[1], g[2]);
      }
      pass.end();
      device.queue.submit([enc.finish()]);
      this.layer++;
      this.t += this.cfg.h;
    }
  }

  async read() {
    const device = gpu.device, rb = this.b.readback;
    const enc = device.createCommandEncoder({ label: 'read' });
    enc.copyBufferToBuffer(this.b.state, 0, rb, 0, 4 * this.n * this.d);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const x = new Float32Array(rb.getMappedRange().slice(0));
    rb.unmap();
    return x;
  }

  destroy() { for (const b of this.buffers) b.destroy(); }
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
const circle = (() => {
  const pts = [];
  for (let k = 0; k <= 256; k++) { const t = (2 * Math.PI * k) / 256; pts.push(new THREE.Vector3(Math.cos(t), Math.sin(t), 0)); }
  return new THREE.Line(new THREE.BufferGeometry().setFromPoints(pts), new THREE.LineBasicMaterial({ color: 0x999999 }));
})();
const sphere = new THREE.Mesh(new THREE.SphereGeometry(0.995, 32, 16),
  new THREE.MeshBasicMaterial({ color: 0xb0b0b0, wireframe: true, transparent: true, opacity: 0.13 }));
scene.add(circle, sphere);
const material = new THREE.ShaderMaterial({
  uniforms: { fade: { value: 1 }, pixelRatio: { value: renderer.getPixelRatio() }, size: { value: 4 } },
  vertexShader: `
    attribute vec3 acolor;
    uniform float fade; uniform float pixelRatio; uniform float size;
    varying vec3 vColor; varying float vAlpha;
    void main() {
      vColor = acolor;
      float facing = dot(normalize(position), normalize(cameraPosition));
      vAlpha = fade > 0.5 ? (facing >= 0.0 ? 1.0 : 0.22) : 1.0;
      gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0);
      gl_PointSize = size * pixelRatio;
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
let points = null;

// Shows n tokens in dimension d (coloured by index), the circle for d = 2, the sphere for 3.
function setScene(n, d) {
  if (points) { scene.remove(points); points.geometry.dispose(); }
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute('position', new THREE.BufferAttribute(new Float32Array(n * 3), 3));
  const col = new Float32Array(n * 3);
  const c = new THREE.Color();
  for (let i = 0; i < n; i++) { c.setHSL((0.8 * i) / Math.max(n - 1, 1), 0.75, 0.45); col.set([c.r, c.g, c.b], i * 3); }
  geometry.setAttribute('acolor', new THREE.BufferAttribute(col, 3));
  points = new THREE.Points(geometry, material);
  points.frustumCulled = false;
  scene.add(points);
  material.uniforms.size.value = n <= 512 ? 8 : n <= 4096 ? 5 : n <= 16384 ? 3 : 2;
  material.uniforms.fade.value = d === 3 ? 1 : 0;
  circle.visible = d === 2;
  sphere.visible = d === 3;
  controls.enableRotate = d === 3;
  if (d === 2) camera.position.set(0, 0, 4.2); else camera.position.set(2.2, 1.5, 2.8);
  controls.target.set(0, 0, 0);
  controls.update();
}

function showTokens(x, n, d) {
  const p = points.geometry.getAttribute('position');
  for (let i = 0; i < n; i++) {
    p.array[i * 3] = x[i * d]; p.array[i * 3 + 1] = x[i * d + 1]; p.array[i * 3 + 2] = d === 3 ? x[i * d + 2] : 0;
  }
  p.needsUpdate = true;
}

function resize() {
  const w = stage.clientWidth, h = stage.clientHeight;
  renderer.setSize(w, h, false);
  camera.aspect = w / Math.max(h, 1);
  camera.updateProjectionMatrix();
}
window.addEventListener('resize', resize);
function render() { renderer.render(scene, camera); }
controls.addEventListener('change', render);

// ---------------------------------------------------------------------------------------
// The live loop: submit steps, wait for them, read the state back, draw; pairs/s from the
// wall time of the steps (submission to completion).
const live = {
  ready: false, webgpu: false, sim: null, running: true, busy: false, rate: null,
  profile: null, planChecks: null, steps: 0, stepsPerFrame: 1, error: null,
};
window.attnflowLive = live;

function parseMatrix(text, d, what) {
  const rows = text.trim().split(/\n+/).map((r) => r.trim().split(/[\s,]+/).map(Number));
  if (rows.length !== d || rows.some((r) => r.length !== d || r.some((v) => !Number.isFinite(v))))
    throw new Error(`${what} needs ${d} rows of ${d} numbers`);
  return rows.flat();
}

function config() {
  const n = Number($('n').value), d = Number($('d').value);
  const beta = Number($('beta').value), h = Number($('h').value), seed = Number($('seed').value);
  if (!(beta >= 0)) throw new Error('beta must be a number >= 0');
  if (!(h > 0)) throw new Error('the step h must be > 0');
  if (!Number.isInteger(seed) || seed < 0) throw new Error('the seed must be a whole number >= 0');
  const cfg = { n, d, beta, h, seed, model: $('model').value, mask: $('mask').value };
  if ($('qkv').value === 'given') {
    cfg.q = parseMatrix($('mq').value, d, 'Q');
    cfg.k = parseMatrix($('mk').value, d, 'K');
    cfg.v = parseMatrix($('mv').value, d, 'V');
  }
  return cfg;
}

function status() {
  const s = live.sim;
  if (!s) return;
  $('status').textContent = `step ${s.layer}, t = ${s.t.toFixed(3)}; n = ${s.n}, d = ${s.d}, ${s.cfg.model.toUpperCase()}, ${s.cfg.mask}, beta = ${s.cfg.beta}, h = ${s.cfg.h}`;
  $('rate').textContent = live.rate ? live.rate.toExponential(2) : '–';
  $('overlay').textContent = `t = ${s.t.toFixed(2)}` + (live.rate ? `   ${live.rate.toExponential(2)} pairs/s` : '');
  const sp = s.spec;
  $('kernel').textContent = `profile ${s.profile.name}; attention kernel ${sp.describe}; ` +
    `${s.plan.splits} key split(s), ${s.plan.slots.length} attention dispatch(es) per evaluation, ${s.dispatches} dispatches per step`;
}

// Starts a simulation from cfg (tokens given, or drawn from the seed).
async function start(cfg) {
  live.running = false;
  while (live.busy) await new Promise((r) => setTimeout(r, 5));
  if (live.sim) live.sim.destroy();
  live.sim = null;
  if (!(Number.isInteger(cfg.n) && cfg.n >= 1 && cfg.n <= DATA.max_n)) throw new Error(`n must be 1 to ${DATA.max_n}`);
  if (!DATA.dimensions.includes(cfg.d)) throw new Error(`d must be one of ${DATA.dimensions.join(', ')}`);
  const tokens = cfg.tokens || uniformTokens(cfg.n, cfg.d, cfg.seed);
  const sim = await Sim.create({ ...cfg, tokens: Float32Array.from(tokens) });
  live.sim = sim;
  live.rate = null;
  // The controls show what runs (the hooks may start what the controls did not ask for).
  if (![...$('n').options].some((o) => o.value === String(cfg.n))) $('n').add(new Option(String(cfg.n)));
  for (const id of ['n', 'd', 'model', 'mask', 'beta', 'h', 'seed']) $(id).value = String(cfg[id]);
  live.stepsPerFrame = 1;
  setScene(cfg.n, cfg.d);
  showTokens(sim.cfg.tokens, cfg.n, cfg.d);
  render();
  status();
  return sim;
}

// Runs `count` steps and waits for them; returns the seconds they took.
async function runSteps(count) {
  const sim = live.sim;
  const t0 = performance.now();
  sim.steps(count);
  await gpu.device.queue.onSubmittedWorkDone();
  const seconds = (performance.now() - t0) / 1000;
  live.steps += count;
  live.rate = (sim.pairsPerStep * count) / seconds;
  return seconds;
}

async function frame() {
  if (live.running && live.sim && !live.busy) {
    live.busy = true;
    try {
      const seconds = await runSteps(live.stepsPerFrame);
      // About 50 ms of steps per frame.
      live.stepsPerFrame = Math.min(Math.max(Math.round(live.stepsPerFrame * 0.05 / Math.max(seconds, 1e-4)), 1), 64);
      const x = await live.sim.read();
      showTokens(x, live.sim.n, live.sim.d);
      render();
      status();
    } catch (e) {
      live.running = false;
      fail(e.message);
    } finally {
      live.busy = false;
    }
  }
  requestAnimationFrame(frame);
}

async function restart() {
  $('error').textContent = '';
  try {
    await start(config());
    live.running = true;
    $('run').textContent = 'Pause';
  } catch (e) {
    fail(e.message);
  }
}

// The hooks tests drive: load given tokens (or the seed's) and a model, step, read back.
live.load = async (cfg) => {
  const c = { beta: 1, h: 0.1, model: 'sa', mask: 'full', seed: 0, ...cfg };
  if (c.tokens && c.tokens.length !== c.n * c.d) throw new Error('tokens must hold n * d numbers');
  return start(c).then(() => true);
};
live.step = async (count) => { while (live.busy) await new Promise((r) => setTimeout(r, 5)); live.busy = true; try { const s = await runSteps(count); status(); return s; } finally { live.busy = false; } };
live.read = async () => { while (live.busy) await new Promise((r) => setTimeout(r, 5)); return Array.from(await live.sim.read()); };
// Draws the current state (after steps taken through the hooks).
live.show = async () => { const x = await live.read(); showTokens(x, live.sim.n, live.sim.d); render(); status(); };
live.pause = async () => { live.running = false; while (live.busy) await new Promise((r) => setTimeout(r, 5)); $('run').textContent = 'Run'; };
live.resume = () => { live.running = true; $('run').textContent = 'Pause'; };

// ---------------------------------------------------------------------------------------
// Playback of the embedded run, for browsers without WebGPU.
function playback(why) {
  const P = DATA.playback;
  const x = new Float32Array(bytesOf(P.positions).buffer);
  const frames = P.times.length, per = P.n * P.d;
  $('gpu').innerHTML = '';
  const note = document.createElement('div');
  note.className = 'note';
  note.textContent = `No live simulation: ${why}. Showing a run attnflow computed when it wrote this page (playback only).`;
  $('gpu').appendChild(note);
  $('playback').hidden = false;
  $('playback-desc').textContent = `${P.model.toUpperCase()} on the sphere, n = ${P.n}, d = ${P.d}, beta = ${P.beta}, RK4 with h = ${P.h} (reference backend)`;
  const slider = $('playback-time');
  slider.max = String(frames - 1);
  setScene(P.n, P.d);
  const show = (f) => {
    showTokens(x.subarray(f * per, (f + 1) * per), P.n, P.d);
    $('playback-label').textContent = `t = ${P.times[f].toFixed(2)} (${f + 1} of ${frames})`;
    render();
  };
  slider.addEventListener('input', () => show(Number(slider.value)));
  let playing = false;
  $('playback-play').addEventListener('click', () => {
    playing = !playing;
    $('playback-play').textContent = playing ? 'Pause' : 'Play';
    const tick = () => {
      if (!playing) return;
      slider.value = String((Number(slider.value) + 1) % frames);
      show(Number(slider.value));
      setTimeout(tick, 80);
    };
    tick();
  });
  show(0);
}

async function main() {
  resize();
  $('credits').textContent = `attnflow ${DATA.attnflow}, three.js ${DATA.three}`;
  live.planChecks = checkPlans();
  const why = await openGpu().catch((e) => 'WebGPU failed to start (' + e.message + ')');
  if (why) {
    playback(why);
    live.ready = true;
    return;
  }
  live.webgpu = true;
  live.profile = gpu.profile.name;
  const info = gpu.info;
  $('gpu').textContent = `WebGPU adapter: ${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed'}` +
    `${info.isFallbackAdapter ? ' (software)' : ''}; kernels of the ${gpu.profile.name} profile (${gpu.profile.description}).`;
  $('live-controls').hidden = false;
  if (info.isFallbackAdapter) $('n').value = '1024'; else $('n').value = '16384';
  for (const id of ['n', 'd', 'model', 'mask', 'beta', 'h']) $(id).addEventListener('change', restart);
  $('qkv').addEventListener('change', () => {
    const given = $('qkv').value === 'given';
    $('matrices').hidden = !given;
    if (given && !$('mq').value) {
      const d = Number($('d').value);
      const eye = Array.from({ length: d }, (_, r) => Array.from({ length: d }, (_, c) => (r === c ? 1 : 0)).join(' ')).join('\n');
      $('mq').value = eye; $('mk').value = eye; $('mv').value = eye;
    }
    restart();
  });
  $('restart').addEventListener('click', restart);
  $('run').addEventListener('click', () => {
    if (live.running) live.pause(); else live.resume();
  });
  try {
    await start(config());
  } catch (e) {
    // WebGPU is there but cannot run the kernels: say why, and offer the playback.
    fail(`WebGPU could not run attnflow's kernels here: ${e.message}`);
    $('live-controls').hidden = true;
    playback(`WebGPU could not run attnflow's kernels (${e.message})`);
    live.ready = true;
    return;
  }
  live.ready = true;
  live.running = !new URLSearchParams(location.search).has('paused');
  $('run').textContent = live.running ? 'Pause' : 'Run';
  requestAnimationFrame(frame);
}

main().catch((e) => fail(e.message));
