// Progress for long work: a cli-progress bar on a terminal, plain lines in logs (stderr not a TTY),
// at most one line per ~10% so that logs stay readable.
import cliProgress from "cli-progress";

export interface Progress {
  update(done: number, info?: string): void;
  stop(): void;
}

export function progress(label: string, total: number, unit = "items"): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} ${unit} | {percentage}% | eta {eta_formatted} {info}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { info: "" });
    return {
      update: (done, info = "") => bar.update(done, { info }),
      stop: () => bar.stop(),
    };
  }
  const t0 = performance.now();
  let lastTenth = -1;
  return {
    update(done, info = "") {
      const tenth = Math.floor((10 * done) / Math.max(total, 1));
      if (tenth === lastTenth && done !== total) return;
      lastTenth = tenth;
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      console.error(`${label}: ${done}/${total} ${unit} (${s}s)${info ? ` ${info}` : ""}`);
    },
    stop() {},
  };
}

/** One line to stderr (status, warnings), so that stdout stays clean for --json output. */
export function say(line: string): void {
  console.error(line);
}
