// The attention figure (Fig. 16; figures.ts has the shared pieces): one prompt, one layer, the
// last token's attention of every head over the prompt's tokens, label tokens marked, plus how a
// token is shown (whitespace made visible, long tokens cut) and the white-to-blue colour map.
import { axesIn, categoryTicks, finish, LABEL_H, margins, PlotInputError, requireFinite, titleOf, toCsv, yLabelOffset, type FigureOptions, type FigureOutput } from "./figures.ts";
import { measureText } from "./font.ts";
import { Path } from "./path.ts";
import { colorBar } from "./scales.ts";
import { COLUMN_WIDTH, Figure, FONT, hexToRgb } from "./svg.ts";

// ---------------------------------------------------------------------------------------------
// attention (Fig. 16)

export interface AttentionData {
  /** the prompt's tokens as text */
  tokens: string[];
  /** [heads][tokens]: the last token's attention of every head of the layer */
  attention: number[][];
  /** positions of all label tokens, and of the correct labels' tokens */
  labelPositions: number[];
  correctPositions: number[];
  layer: number;
}

/** The text, cut with an ellipsis so that it is at most `max` points wide. */
export function fitText(t: string, size: number, max: number): string {
  if (measureText(t, size, true) <= max) return t;
  const chars = [...t];
  while (chars.length > 1 && measureText(chars.join("") + "…", size, true) > max) chars.pop();
  return chars.join("") + "…";
}

const correctBold = (_t: string) => true; // measure as bold: the correct labels are drawn bold

/** A token as it is drawn: whitespace made visible where it would vanish. */
export function displayToken(t: string): string {
  // byte-level BPE (GPT-2: Ġ space, Ċ newline) and SentencePiece (▁ space) markers, if raw
  const s = t.replace(/[Ġ▁]/g, " ").replace(/Ċ|\r?\n/g, "↵").replace(/\t/g, "→");
  return s.trim() === "" ? s.replace(/ /g, "␣") || "∅" : s;
}

// white to dark blue, for attention (most weights are near zero; zero prints as paper)
const BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"].map(hexToRgb);
export function blues(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (BLUES.length - 1);
  const i = Math.min(BLUES.length - 2, Math.floor(x));
  const f = x - i;
  const c = BLUES[i].map((a, k) => a + (BLUES[i + 1][k] - a) * f);
  return "#" + c.map((v) => Math.round(v * 255).toString(16).padStart(2, "0")).join("");
}

export function attentionFigure(d: AttentionData, opts: FigureOptions = {}): FigureOutput {
  const T = d.tokens.length;
  const NH = d.attention.length;
  if (!T) throw new PlotInputError("attention: no tokens");
  if (!NH) throw new PlotInputError("attention: no heads (attention is empty)");
  d.attention.forEach((row, h) => {
    if (row.length !== T) throw new PlotInputError(`attention: head ${h} has ${row.length} values for ${T} tokens`);
    requireFinite(`attention: head ${h}`, row);
  });
  for (const p of [...d.labelPositions, ...d.correctPositions]) {
    if (!Number.isInteger(p) || p < 0 || p >= T) throw new PlotInputError(`attention: label position ${p} is outside the ${T} tokens`);
  }
  const title = titleOf(opts, `Last-token attention per head, layer ${d.layer}`);
  const tokenFont = FONT.tick - 0.5;
  const shown = d.tokens.map((t) => fitText(displayToken(t), tokenFont, 60));
  const cellW = 6.2;
  const cellH = NH <= 16 ? 7 : NH <= 32 ? 5 : 3.5;
  const longest = Math.max(...shown.map((t) => measureText(t, tokenFont, correctBold(t))));
  const headTicks = categoryTicks(NH, NH <= 16 ? 16 : 12);
  const yLabels = headTicks.map(String);
  const m = margins(title, yLabels, { right: 44, bottomExtra: 0 });
  m.bottom = 3.5 + longest + 4 + LABEL_H + 5;
  const plotW = Math.max(COLUMN_WIDTH - m.left - m.right, T * cellW);
  const fig = new Figure(m.left + plotW + m.right, m.top + NH * cellH + m.bottom);
  const ax = axesIn(fig, m);
  ax.setX(-0.5, T - 0.5).setY(NH - 0.5, -0.5);
  const vmax = Math.max(1e-12, ...d.attention.flat());
  ax.heatmap(d.attention.map((row) => row.map((v) => blues(v / vmax))));
  // label tokens: dotted lines on both sides of each run of label positions
  const labels = new Set(d.labelPositions);
  const correct = new Set(d.correctPositions);
  const p = new Path();
  for (const pos of [...labels].sort((a, b) => a - b)) {
    if (!labels.has(pos - 1)) p.moveTo(ax.x.map(pos - 0.5), ax.top).lineTo(ax.x.map(pos - 0.5), ax.bottom);
    if (!labels.has(pos + 1)) p.moveTo(ax.x.map(pos + 0.5), ax.top).lineTo(ax.x.map(pos + 0.5), ax.bottom);
  }
  fig.stroke(p, "#d62728", { width: 0.6, dash: [1, 1], round: false });
  ax.frame();
  // token labels, rotated, correct labels in red and bold
  const tick = new Path();
  shown.forEach((t, i) => {
    const x = ax.x.map(i);
    tick.moveTo(x, ax.bottom).lineTo(x, ax.bottom + 2);
    const color = correct.has(i) ? "#d62728" : labels.has(i) ? "#9a3412" : "#222222";
    fig.text(t, x, ax.bottom + 3.5, { size: tokenFont, anchor: "end", baseline: "middle", rotate: -90, color, bold: correct.has(i) });
  });
  fig.stroke(tick, "#222222", { width: 0.5, round: false });
  ax.yTicks(headTicks);
  ax.yLabel("head", yLabelOffset(yLabels));
  fig.text("token (dotted: label tokens; red: the correct label)", ax.left + ax.width / 2, ax.bottom + 3.5 + longest + 4, {
    size: FONT.label,
    anchor: "middle",
    baseline: "top",
  });
  if (title) ax.title(title);
  colorBar(fig, ax.right + 6, ax.top, 5, Math.max(30, ax.height), 0, vmax, (t) => blues(t), "attention");
  const csv = toCsv(
    ["position", "token", "is_label", "is_correct", ...d.attention.map((_, h) => `head_${h}`)],
    d.tokens.map((t, i) => [i, t, labels.has(i) ? 1 : 0, correct.has(i) ? 1 : 0, ...d.attention.map((row) => row[i])]),
  );
  return finish(fig, opts, csv, {
    figure: "attention",
    title,
    layer: d.layer,
    tokens: d.tokens,
    attention: d.attention,
    label_positions: d.labelPositions,
    correct_positions: d.correctPositions,
  });
}
