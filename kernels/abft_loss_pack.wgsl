// abft_loss_pack: copies one layer's abft_loss_forward outputs into a buffer holding every layer's,
// so that the ABFT objective reads all of them back with one readback instead of three per layer.
//   packed[layer, 0, :] = loss;  packed[layer, 1, :] = mask;  packed[layer, 2, :] = S
// Shapes: loss, mask, S f32 [N] (N = B·NH); packed f32 [L, 3, N], layer < L.
// The words are moved as u32, never through float arithmetic: the copies are bit-exact (NaN
// payloads, -0 and subnormals included).
// Bindings: 0 Params {N, layer}, 1 loss (read), 2 mask (read), 3 S (read), 4 packed (write; only
//   the layer's 3·N words are touched).
// Workgroup: 64 threads, element i of each of the three inputs per thread; 2-D grid (see grid1d).
// No backward (the readback is for the host).

struct Params { N: u32, layer: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> loss: array<u32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read> S: array<u32>;
@group(0) @binding(4) var<storage, read_write> packed: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.N) {
    return;
  }
  let base = p.layer * 3u * p.N;
  packed[base + i] = loss[i];
  packed[base + p.N + i] = mask[i];
  packed[base + 2u * p.N + i] = S[i];
}
