// CPU reference for kernels/transpose.wgsl: [rows, cols] → [cols, rows] on the host, for f32 values
// or 16-bit patterns (bits are moved, never converted).

export function transpose2d<A extends Float32Array | Uint16Array>(src: A, rows: number, cols: number): A {
  const out = new (src.constructor as { new (n: number): A })(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return out;
}
