// Generates src/analysis/font_data.ts: the glyph outlines, advance widths and kerning pairs of
// the few characters the figures draw (printable ASCII plus a handful of symbols), read from
// DejaVu Sans and DejaVu Sans Bold (TrueType, Bitstream Vera license + public-domain DejaVu
// changes). The figures draw text as SVG paths built from these outlines, so they need no font
// installed at run time (src/analysis/font.ts).
//
//   bun scripts/gen_font.ts [REGULAR.ttf BOLD.ttf]     (default: Debian's fonts-dejavu-core)
//
// The TrueType reader below handles what DejaVu uses: cmap formats 4 and 12, simple and composite
// glyf outlines (quadratic), hmtx, and the legacy kern table (format 0). Outlines are written as
// path strings in font units, y up: "M x y L x y Q cx cy x y Z".
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const DEFAULT_DIR = "/usr/share/fonts/truetype/dejavu";
const EXTRA = "−×±·…‖′θΔαβγηλμσ≤≥→←↵␣°²³₀₁₂ÄÖÜäöüéèàçñ–—‘’“”ĠĊ▁"; // beyond printable ASCII

interface Face {
  unitsPerEm: number;
  ascender: number;
  descender: number;
  glyphs: Record<string, [number, string]>;
  kern: Record<string, number>;
}

class Reader {
  readonly v: DataView;
  constructor(readonly buf: Uint8Array) {
    this.v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  u8 = (o: number) => this.v.getUint8(o);
  i8 = (o: number) => this.v.getInt8(o);
  u16 = (o: number) => this.v.getUint16(o);
  i16 = (o: number) => this.v.getInt16(o);
  u32 = (o: number) => this.v.getUint32(o);
}

type Pt = { x: number; y: number; on: boolean };

function parseFont(path: string, chars: string[]): Face {
  const r = new Reader(readFileSync(path));
  const tables = new Map<string, number>();
  const n = r.u16(4);
  for (let i = 0; i < n; i++) {
    const rec = 12 + 16 * i;
    const tag = String.fromCharCode(r.u8(rec), r.u8(rec + 1), r.u8(rec + 2), r.u8(rec + 3));
    tables.set(tag, r.u32(rec + 8));
  }
  const t = (tag: string) => {
    const o = tables.get(tag);
    if (o === undefined) throw new Error(`${path}: no ${tag} table`);
    return o;
  };
  const head = t("head");
  const unitsPerEm = r.u16(head + 18);
  const longLoca = r.i16(head + 50) === 1;
  const hhea = t("hhea");
  const ascender = r.i16(hhea + 4);
  const descender = r.i16(hhea + 6);
  const nHMetrics = r.u16(hhea + 34);
  const hmtx = t("hmtx");
  const advance = (g: number) => r.u16(hmtx + 4 * Math.min(g, nHMetrics - 1));
  const loca = t("loca");
  const glyf = t("glyf");
  const glyphRange = (g: number): [number, number] =>
    longLoca ? [r.u32(loca + 4 * g), r.u32(loca + 4 * g + 4)] : [2 * r.u16(loca + 2 * g), 2 * r.u16(loca + 2 * g + 2)];

  // cmap: code point -> glyph index, from a Unicode subtable (format 12 preferred, else 4)
  const cmap = t("cmap");
  let sub4 = -1;
  let sub12 = -1;
  for (let i = 0; i < r.u16(cmap + 2); i++) {
    const rec = cmap + 4 + 8 * i;
    const pid = r.u16(rec);
    const eid = r.u16(rec + 2);
    const off = cmap + r.u32(rec + 4);
    const fmt = r.u16(off);
    const unicode = pid === 0 || (pid === 3 && (eid === 1 || eid === 10));
    if (!unicode) continue;
    if (fmt === 4 && sub4 < 0) sub4 = off;
    if (fmt === 12 && sub12 < 0) sub12 = off;
  }
  const glyphIndex = (cp: number): number => {
    if (sub12 >= 0) {
      const groups = r.u32(sub12 + 12);
      for (let i = 0; i < groups; i++) {
        const g = sub12 + 16 + 12 * i;
        const start = r.u32(g);
        const end = r.u32(g + 4);
        if (cp >= start && cp <= end) return r.u32(g + 8) + (cp - start);
      }
      return 0;
    }
    if (sub4 < 0) throw new Error(`${path}: no Unicode cmap`);
    const segs = r.u16(sub4 + 6) / 2;
    const ends = sub4 + 14;
    const starts = ends + 2 * segs + 2;
    const deltas = starts + 2 * segs;
    const ranges = deltas + 2 * segs;
    for (let s = 0; s < segs; s++) {
      if (cp > r.u16(ends + 2 * s)) continue;
      const start = r.u16(starts + 2 * s);
      if (cp < start) return 0;
      const delta = r.i16(deltas + 2 * s);
      const ro = r.u16(ranges + 2 * s);
      if (ro === 0) return (cp + delta) & 0xffff;
      const g = r.u16(ranges + 2 * s + ro + 2 * (cp - start));
      return g === 0 ? 0 : (g + delta) & 0xffff;
    }
    return 0;
  };

  // glyf: contours of on/off-curve points, composites resolved (offsets and scales)
  const contours = (g: number, depth = 0): Pt[][] => {
    if (depth > 8) throw new Error(`${path}: composite glyph ${g} nests too deep`);
    const [a, b] = glyphRange(g);
    if (a === b) return [];
    const o = glyf + a;
    const nc = r.i16(o);
    if (nc >= 0) {
      const endPts: number[] = [];
      for (let i = 0; i < nc; i++) endPts.push(r.u16(o + 10 + 2 * i));
      const nPts = nc === 0 ? 0 : endPts[nc - 1] + 1;
      let p = o + 10 + 2 * nc;
      p += 2 + r.u16(p); // instructions
      const flags: number[] = [];
      while (flags.length < nPts) {
        const f = r.u8(p++);
        flags.push(f);
        if (f & 8) for (let k = r.u8(p++); k > 0; k--) flags.push(f);
      }
      const coord = (shortBit: number, sameBit: number): number[] => {
        const out: number[] = [];
        let v = 0;
        for (const f of flags) {
          if (f & shortBit) v += f & sameBit ? r.u8(p++) : -r.u8(p++);
          else if (!(f & sameBit)) (v += r.i16(p)), (p += 2);
          out.push(v);
        }
        return out;
      };
      const xs = coord(2, 16);
      const ys = coord(4, 32);
      const res: Pt[][] = [];
      let s = 0;
      for (const e of endPts) {
        const c: Pt[] = [];
        for (let i = s; i <= e; i++) c.push({ x: xs[i], y: ys[i], on: (flags[i] & 1) === 1 });
        res.push(c);
        s = e + 1;
      }
      return res;
    }
    const res: Pt[][] = [];
    let p = o + 10;
    for (;;) {
      const flags = r.u16(p);
      const child = r.u16(p + 2);
      p += 4;
      let dx: number;
      let dy: number;
      if (flags & 1) (dx = r.i16(p)), (dy = r.i16(p + 2)), (p += 4);
      else (dx = r.i8(p)), (dy = r.i8(p + 1)), (p += 2);
      if (!(flags & 2)) throw new Error(`${path}: composite glyph ${g} aligns points (unsupported)`);
      let [xx, xy, yx, yy] = [1, 0, 0, 1];
      const f2 = (q: number) => r.i16(q) / 16384;
      if (flags & 8) (xx = yy = f2(p)), (p += 2);
      else if (flags & 0x40) (xx = f2(p)), (yy = f2(p + 2)), (p += 4);
      else if (flags & 0x80) (xx = f2(p)), (xy = f2(p + 2)), (yx = f2(p + 4)), (yy = f2(p + 6)), (p += 8);
      for (const c of contours(child, depth + 1)) {
        res.push(c.map((q) => ({ x: xx * q.x + yx * q.y + dx, y: xy * q.x + yy * q.y + dy, on: q.on })));
      }
      if (!(flags & 0x20)) break;
    }
    return res;
  };

  // a closed quadratic contour as a path: implied on-curve points between two off-curve ones
  const pathOf = (cs: Pt[][]): string => {
    const parts: string[] = [];
    const f = (v: number) => String(Math.round(v));
    for (const c of cs) {
      if (c.length === 0) continue;
      let start = c.findIndex((q) => q.on);
      let pts = c;
      if (start < 0) {
        // all off-curve: start at the midpoint of the first two
        const m = { x: (c[0].x + c[1].x) / 2, y: (c[0].y + c[1].y) / 2, on: true };
        pts = [m, ...c.slice(1), c[0]];
        start = 0;
      } else pts = [...c.slice(start), ...c.slice(0, start)];
      parts.push(`M${f(pts[0].x)} ${f(pts[0].y)}`);
      let ctrl: Pt | null = null;
      for (let i = 1; i <= pts.length; i++) {
        const q = pts[i % pts.length];
        if (q.on) {
          parts.push(ctrl ? `Q${f(ctrl.x)} ${f(ctrl.y)} ${f(q.x)} ${f(q.y)}` : `L${f(q.x)} ${f(q.y)}`);
          ctrl = null;
        } else if (ctrl) {
          const m = { x: (ctrl.x + q.x) / 2, y: (ctrl.y + q.y) / 2 };
          parts.push(`Q${f(ctrl.x)} ${f(ctrl.y)} ${f(m.x)} ${f(m.y)}`);
          ctrl = q;
        } else ctrl = q;
      }
      parts.push("Z");
    }
    return parts.join("");
  };

  const glyphs: Record<string, [number, string]> = {};
  const gidOf = new Map<number, string>();
  for (const ch of chars) {
    const g = glyphIndex(ch.codePointAt(0)!);
    if (g === 0) continue; // not in this font
    glyphs[ch] = [advance(g), pathOf(contours(g))];
    gidOf.set(g, ch);
  }

  // legacy kern table, format 0 subtables with horizontal kerning
  const kern: Record<string, number> = {};
  const ko = tables.get("kern");
  if (ko !== undefined && r.u16(ko) === 0) {
    let p = ko + 4;
    for (let i = 0; i < r.u16(ko + 2); i++) {
      const len = r.u16(p + 2);
      const coverage = r.u16(p + 4);
      if (coverage >> 8 === 0 && (coverage & 1) === 1) {
        const pairs = r.u16(p + 6);
        for (let k = 0; k < pairs; k++) {
          const e = p + 14 + 6 * k;
          const a = gidOf.get(r.u16(e));
          const b = gidOf.get(r.u16(e + 2));
          if (a !== undefined && b !== undefined) kern[a + b] = r.i16(e + 4);
        }
      }
      p += len;
    }
  }
  return { unitsPerEm, ascender, descender, glyphs, kern };
}

const [regular = join(DEFAULT_DIR, "DejaVuSans.ttf"), bold = join(DEFAULT_DIR, "DejaVuSans-Bold.ttf")] = process.argv.slice(2);
const chars: string[] = [];
for (let c = 32; c < 127; c++) chars.push(String.fromCharCode(c));
for (const ch of EXTRA) chars.push(ch);
const faces = { regular: parseFont(regular, chars), bold: parseFont(bold, chars) };

const NOTICE = `// Glyph data generated by scripts/gen_font.ts from DejaVu Sans and DejaVu Sans Bold: a subset
// (printable ASCII and a few symbols) of outlines, advance widths and kerning pairs, renamed here
// "abft-sans" as the license asks of modified fonts. Do not edit; rerun the script.
//
// DejaVu changes are in the public domain. The Bitstream Vera fonts they derive from:
// Copyright (c) 2003 by Bitstream, Inc. All Rights Reserved. Bitstream Vera is a trademark of
// Bitstream, Inc.
// Permission is hereby granted, free of charge, to any person obtaining a copy of the fonts
// accompanying this license ("Fonts") and associated documentation files (the "Font Software"),
// to reproduce and distribute the Font Software, including without limitation the rights to use,
// copy, merge, publish, distribute, and/or sell copies of the Font Software, and to permit
// persons to whom the Font Software is furnished to do so, subject to the following conditions:
// The above copyright and trademark notices and this permission notice shall be included in all
// copies of one or more of the Font Software typefaces.
// The Font Software may be modified, altered, or added to, and in particular the designs of
// glyphs or characters in the Fonts may be modified and additional glyphs or characters may be
// added to the Fonts, only if the fonts are renamed to names not containing either the words
// "Bitstream" or the word "Vera".
// This License becomes null and void to the extent applicable to Fonts or Font Software that has
// been modified and is distributed under the "Bitstream Vera" names.
// The Font Software may be sold as part of a larger software package but no copy of one or more
// of the Font Software typefaces may be sold by itself.
// THE FONT SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
// INCLUDING BUT NOT LIMITED TO ANY WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
// PURPOSE AND NONINFRINGEMENT OF COPYRIGHT, PATENT, TRADEMARK, OR OTHER RIGHT. IN NO EVENT SHALL
// BITSTREAM OR THE GNOME FOUNDATION BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY,
// INCLUDING ANY GENERAL, SPECIAL, INDIRECT, INCIDENTAL, OR CONSEQUENTIAL DAMAGES, WHETHER IN AN
// ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF THE USE OR INABILITY TO USE THE
// FONT SOFTWARE OR FROM OTHER DEALINGS IN THE FONT SOFTWARE.
// Except as contained in this notice, the names of Gnome, the Gnome Foundation, and Bitstream
// Inc., shall not be used in advertising or otherwise to promote the sale, use or other dealings
// in this Font Software without prior written authorization from the Gnome Foundation or
// Bitstream Inc., respectively.
`;

const out = join(import.meta.dir, "..", "src", "analysis", "font_data.ts");
const body = (name: string, f: Face) =>
  `export const ${name}: FaceData = {\n` +
  `  unitsPerEm: ${f.unitsPerEm},\n  ascender: ${f.ascender},\n  descender: ${f.descender},\n` +
  `  glyphs: {\n${Object.entries(f.glyphs)
    .map(([ch, [adv, d]]) => `    ${JSON.stringify(ch)}: [${adv}, ${JSON.stringify(d)}],`)
    .join("\n")}\n  },\n` +
  `  kern: ${JSON.stringify(f.kern)},\n};\n`;
writeFileSync(
  out,
  NOTICE +
    `\n/** One face: advance widths and outlines (font units, y up), kerning by pair of characters. */\n` +
    `export interface FaceData {\n  unitsPerEm: number;\n  ascender: number;\n  descender: number;\n` +
    `  glyphs: Record<string, [advance: number, path: string]>;\n  kern: Record<string, number>;\n}\n\n` +
    body("REGULAR", faces.regular) +
    "\n" +
    body("BOLD", faces.bold),
);
const missing = chars.filter((c) => !faces.regular.glyphs[c] || !faces.bold.glyphs[c]);
console.log(
  `wrote ${out}: ${Object.keys(faces.regular.glyphs).length} glyphs, ${Object.keys(faces.regular.kern).length} kerning pairs` +
    (missing.length ? `; missing: ${missing.join("")}` : ""),
);
