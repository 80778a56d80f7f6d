// embedding_forward: token (and optional learned position) embedding gather.
//   out[t, c] = wte[ids[t], c] + (usePos ? wpe[pos[t], c] : 0)      t < N, c < C
// Shapes: ids, pos u32 [N]; wte [V, C]; wpe [P, C]; out f32 [N, C].
// Tables are bound as array<u32> and decoded by the entry point:
//   forward_f32:  one f32 per word (bitcast)
//   forward_bf16: two bf16 per word, element 2j in the low 16 bits (little-endian, as safetensors);
//                 value = bitcast<f32>(bits << 16)
//   forward_f16:  two IEEE halves per word, same packing; unpack2x16float (core WGSL, needs no
//                 shader-f16)
// wte and wpe share one dtype. Ids and positions are clamped to V-1 and P-1 so a bad id never reads
// out of bounds (the host checks ids before upload; clamping only keeps the GPU safe). When usePos
// is 0, wpe and pos are not read (bind any buffers, e.g. wte and ids again: both are read-only).
// A table larger than one storage binding is bound a slice at a time: the binding holds table rows
// [row0, row0 + rows) (row0 at an aligned byte offset), and a dispatch writes only the tokens whose
// id falls in that slice; one dispatch per slice covers every token once. Unsliced: row0 = 0, rows = V.
// Bindings: 0 Params {N, C, V, P, usePos, row0, rows}, 1 ids (read), 2 pos (read), 3 wte (read),
//           4 wpe (read), 5 out (write).
// Workgroup: 256 threads; thread i of the flattened grid owns 4 consecutive channels of one token
//   (t = i / ceil(C/4)), so a warp reads and writes contiguous rows. 2-D grid (see grid1d) for
//   N*ceil(C/4) beyond 65535 workgroups.
// Embeddings are frozen in this project: there is no embedding_backward.

struct Params { N: u32, C: u32, V: u32, P: u32, usePos: u32, row0: u32, rows: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read> wte: array<u32>;
@group(0) @binding(4) var<storage, read> wpe: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

// (token, first channel, channels in this thread) or n = 0 when the thread is past the end
struct Slot { t: u32, c0: u32, n: u32 }

fn slot(gid: vec3<u32>, nwg: vec3<u32>) -> Slot {
  let i = gid.x + gid.y * nwg.x * WG;
  let C4 = (p.C + 3u) / 4u;
  if (i >= p.N * C4) {
    return Slot(0u, 0u, 0u);
  }
  let t = i / C4;
  let c0 = (i - t * C4) * 4u;
  return Slot(t, c0, min(4u, p.C - c0));
}

fn store(s: Slot, v: vec4<f32>) {
  let o = s.t * p.C + s.c0;
  if (s.n == 4u) {
    out[o] = v.x;
    out[o + 1u] = v.y;
    out[o + 2u] = v.z;
    out[o + 3u] = v.w;
  } else {
    for (var k = 0u; k < s.n; k++) {
      out[o + k] = v[k];
    }
  }
}

// the (clamped) id of token t, as a row of the bound slice; rows past the slice when not in it
fn rowOf(t: u32) -> u32 {
  return min(ids[t], p.V - 1u) - p.row0; // wraps to a huge value below the slice
}

fn inSlice(t: u32) -> bool {
  return rowOf(t) < p.rows;
}

fn posOf(t: u32) -> u32 {
  return min(pos[t], p.P - 1u);
}

// ---- f32 -----------------------------------------------------------------------------------

fn loadF32(useWpe: bool, e: u32, n: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < n; k++) {
    if (useWpe) {
      v[k] = bitcast<f32>(wpe[e + k]);
    } else {
      v[k] = bitcast<f32>(wte[e + k]);
    }
  }
  return v;
}

@compute @workgroup_size(WG)
fn forward_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = slot(gid, nwg);
  if (s.n == 0u || !inSlice(s.t)) {
    return;
  }
  var v = loadF32(false, rowOf(s.t) * p.C + s.c0, s.n);
  if (p.usePos != 0u) {
    v += loadF32(true, posOf(s.t) * p.C + s.c0, s.n);
  }
  store(s, v);
}

// ---- bf16 / f16 ------------------------------------------------------------------------------

fn word(useWpe: bool, w: u32) -> u32 {
  if (useWpe) {
    return wpe[w];
  }
  return wte[w];
}

// The 16 bits of half-element e: low half of word e/2 for even e, high half for odd e.
fn halfBits(useWpe: bool, e: u32) -> u32 {
  return (word(useWpe, e >> 1u) >> ((e & 1u) * 16u)) & 0xffffu;
}

// Raw 16-bit patterns of elements e .. e+n-1 (n <= 4), two per word when e is even.
fn loadHalves(useWpe: bool, e: u32, n: u32) -> vec4<u32> {
  var h = vec4<u32>(0u);
  if ((e & 1u) == 0u && n == 4u) {
    let w0 = word(useWpe, e >> 1u);
    let w1 = word(useWpe, (e >> 1u) + 1u);
    h = vec4<u32>(w0 & 0xffffu, w0 >> 16u, w1 & 0xffffu, w1 >> 16u);
  } else {
    for (var k = 0u; k < n; k++) {
      h[k] = halfBits(useWpe, e + k);
    }
  }
  return h;
}

fn bf16ToF32(h: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(h << vec4<u32>(16u));
}

fn f16ToF32(h: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(h.x | (h.y << 16u)), unpack2x16float(h.z | (h.w << 16u)));
}

@compute @workgroup_size(WG)
fn forward_bf16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = slot(gid, nwg);
  if (s.n == 0u || !inSlice(s.t)) {
    return;
  }
  var v = bf16ToF32(loadHalves(false, rowOf(s.t) * p.C + s.c0, s.n));
  if (p.usePos != 0u) {
    v += bf16ToF32(loadHalves(true, posOf(s.t) * p.C + s.c0, s.n));
  }
  store(s, v);
}

@compute @workgroup_size(WG)
fn forward_f16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = slot(gid, nwg);
  if (s.n == 0u || !inSlice(s.t)) {
    return;
  }
  var v = f16ToF32(loadHalves(false, rowOf(s.t) * p.C + s.c0, s.n));
  if (p.usePos != 0u) {
    v += f16ToF32(loadHalves(true, posOf(s.t) * p.C + s.c0, s.n));
  }
  store(s, v);
}
