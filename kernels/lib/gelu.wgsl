// gelu_new's inner argument, shared by kernels/gelu_forward.wgsl and kernels/gelu_backward.wgsl:
//   u = sqrt(2/pi) * x * (1 + 0.044715 * x^2),   gelu_new(x) = 0.5 * x * (1 + tanh(u))

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_A: f32 = 0.044715;

fn gelu_u(x: f32) -> f32 {
  return SQRT_2_OVER_PI * x * (1.0 + GELU_A * x * x);
}
