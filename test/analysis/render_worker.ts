// Child process of test/analysis/text.test.ts: renders one figure (our rasteriser, and sharp from
// the figure's SVG) and the word "HHHH" (as our outlines, and as an SVG <text> that sharp draws
// with the machine's fonts), writing raw RGB files into the directory given as argument. The test
// runs it with the fonts hidden and compares.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { headsFigure } from "../../src/analysis/figures_training.ts";
import { decodePng } from "../../src/analysis/raster.ts";
import { Figure } from "../../src/analysis/svg.ts";

const out = process.argv[2];
const steps = Array.from({ length: 12 }, (_, i) => i + 1);
const fig = headsFigure([{ label: "run", steps, inductionHeads: steps.map((s) => 10 + Math.sin(s)) }], { scale: 4 });
writeFileSync(join(out, "builtin.rgb"), decodePng(fig.png).data);
const fromSvg = await sharp(Buffer.from(fig.svg), { density: 144 }).flatten({ background: "#ffffff" }).removeAlpha().raw().toBuffer();
writeFileSync(join(out, "sharp.rgb"), fromSvg);

// "HHHH" at 20 pt on 120 x 30 pt: our outlines vs the system's font through <text>
const word = new Figure(120, 30);
word.text("HHHH", 5, 22, { size: 20 });
writeFileSync(join(out, "word_paths.rgb"), decodePng(word.toPng(1)).data);
const textSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="120pt" height="30pt" viewBox="0 0 120 30"><rect width="100%" height="100%" fill="#ffffff"/><text x="5" y="22" font-family="DejaVu Sans, sans-serif" font-size="20" fill="#222222">HHHH</text></svg>`;
writeFileSync(join(out, "word_text.rgb"), await sharp(Buffer.from(textSvg), { density: 72 }).flatten({ background: "#ffffff" }).removeAlpha().raw().toBuffer());
