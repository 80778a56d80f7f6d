// The abft version, from package.json (inlined into the compiled binary by the bundler).
import pkg from "../../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
