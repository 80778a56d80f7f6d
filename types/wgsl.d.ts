// WGSL kernel sources are imported as text (`with { type: "text" }`), which embeds them in the binary.
declare module "*.wgsl" {
  const source: string;
  export default source;
}
