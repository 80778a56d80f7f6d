// The benchmark suites' few options: `--name value` pairs after the suite's name.

/** The value after `name`, or `dflt` when absent. */
export function stringOption(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
  return v;
}

/** A positive number after `name`, or `dflt`. */
export function numberOption(args: string[], name: string, dflt: number): number {
  const raw = stringOption(args, name, String(dflt));
  const v = Number(raw);
  if (!(v > 0)) throw new Error(`${name} must be a positive number (got '${raw}')`);
  return v;
}

/** A comma-separated list after `name` (each entry one of `known`), or `dflt`. */
export function listOption(args: string[], name: string, dflt: string[], known: string[]): string[] {
  const raw = stringOption(args, name, "");
  if (!raw) return dflt;
  const list = raw.split(",").map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((s) => !known.includes(s));
  if (bad.length) throw new Error(`${name}: unknown ${bad.join(", ")} (known: ${known.join(", ")})`);
  return list;
}
