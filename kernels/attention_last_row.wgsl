// attention_last_row: gathers each sequence's last valid attention row out of the full probabilities.
//   attLast[b, h, j] = att[b, h, len_b - 1, j]   for j < T, with len_b = min(lengths[b], T)
//   attLast[b, h, j] = 0                          when len_b = 0
// This is what attention_forward writes in mode 2 ("last"), bit for bit, when att comes from its
// mode 1 ("full"): mode 1 holds the softmax of row t over c <= t and exact 0.0 for c > t and for
// padded rows t >= len_b, and mode 2 writes the same row with the same f32 arithmetic, 0.0 for
// j > len_b - 1, and all 0.0 when len_b = 0. Here values are only moved, never recomputed, so
// the attention backward (which keeps att) no longer needs a second forward pass for attLast.
// Shapes: att f32 [B, NH, T, T]; lengths u32 [B] (values above T count as T); attLast f32 [B, NH, T].
// Bindings: 0 Params {B, T, NH}, 1 att (read), 2 lengths (read), 3 attLast (write).
// Workgroup: 256 threads, one output element each (consecutive threads read and write consecutive
// j of one row: coalesced); 2-D grid (see grid1d) for B·NH·T beyond 16.7M.
// No backward: the gradient on attLast goes into attention_backward (its dattLast input).

struct Params { B: u32, T: u32, NH: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> att: array<f32>;
@group(0) @binding(2) var<storage, read> lengths: array<u32>;
@group(0) @binding(3) var<storage, read_write> attLast: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.B * p.NH * p.T) {
    return;
  }
  let bh = i / p.T;           // b * NH + h
  let j = i - bh * p.T;
  let len = min(lengths[bh / p.NH], p.T);
  var out = 0.0;
  if (len > 0u) {
    out = att[(bh * p.T + len - 1u) * p.T + j];
  }
  attLast[i] = out;
}
