// Workgroup grids for 1-D work larger than 65535 workgroups: kernels index with
// i = gid.x + gid.y * num_workgroups.x * WG (see kernels/residual_forward.wgsl).

const MAX_DIM = 65535;

export function grid1d(n: number, workgroupSize: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / workgroupSize));
  if (groups <= MAX_DIM) return [groups, 1];
  return [MAX_DIM, Math.ceil(groups / MAX_DIM)];
}
