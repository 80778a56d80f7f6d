// Labelled text examples from local files: JSONL, CSV/TSV and Parquet.
//
// Every reader returns the same thing: one DataRecord per row, with the row's text, its label as a
// string (numbers and booleans are written with String()), and `where` ("path:line" for text formats,
// "path: row N" for Parquet, both 1-based) so that every later error can name the row.
//
// Conventions (decisions):
// - The format comes from the extension: .jsonl/.ndjson (one JSON object a line; blank lines skipped),
//   .csv (comma), .tsv/.tab (tab), .parquet. Anything else is an error.
// - CSV/TSV: the first record is the header. A field that starts with a double quote is quoted
//   (RFC 4180: "" inside is one quote; quoted fields may span lines); a quote inside an unquoted field
//   is an ordinary character (GLUE's TSVs have such quotes). `quote: false` turns quoting off.
//   CRLF and LF line ends both work; a UTF-8 BOM is dropped; blank lines are skipped.
// - Parquet is read through hyparquet (the whole file in memory; SNAPPY and uncompressed pages are
//   built in, other codecs need hyparquet-compressors, which is not a dependency).
// - Columns: `textColumn` / `labelColumn` when given (an error if absent), else the first present of
//   TEXT_COLUMNS / LABEL_COLUMNS (or the caller's own candidate lists). For JSONL the candidates are
//   looked up in the first row; every row must then have both fields.
// - The text is trimmed (the prompt template puts its own spaces around it); so is the label. A
//   missing or null text or label, or a text that is not a string, is an error naming the row.
import { readFileSync, existsSync } from "node:fs";
import { extname } from "node:path";
import { parquetMetadata, parquetReadObjects, parquetSchema } from "hyparquet";
import { AbftError } from "../gpu/errors.ts";

export interface DataRecord {
  text: string;
  /** the label as written in the file (a class name, or an id written as a decimal string) */
  label: string;
  /** "path:line" (JSONL, CSV, TSV) or "path: row N" (Parquet), 1-based */
  where: string;
}

export type DataFormat = "jsonl" | "csv" | "tsv" | "parquet";

export interface ReadOptions {
  /** the text column; an error if the file has no such column */
  textColumn?: string;
  /** the label column; an error if the file has no such column */
  labelColumn?: string;
  /** candidates tried in order when textColumn is not given (default TEXT_COLUMNS) */
  textCandidates?: readonly string[];
  /** candidates tried in order when labelColumn is not given (default LABEL_COLUMNS) */
  labelCandidates?: readonly string[];
  /** CSV/TSV: honour double-quoted fields (default true) */
  quote?: boolean;
  /** overrides the format found from the extension */
  format?: DataFormat;
}

export const TEXT_COLUMNS = ["text", "sentence", "content", "question", "tweet", "review", "input"] as const;
export const LABEL_COLUMNS = ["label", "label_id", "coarse_label", "labels", "target", "class"] as const;

export class DataError extends AbftError {
  constructor(message: string, hint?: string) {
    super(message, "BAD_DATA", hint);
  }
}

export function detectFormat(path: string): DataFormat {
  const ext = extname(path).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  if (ext === ".csv") return "csv";
  if (ext === ".tsv" || ext === ".tab") return "tsv";
  if (ext === ".parquet") return "parquet";
  throw new DataError(
    `${path}: unknown data format "${ext || "(no extension)"}"`,
    "use .jsonl, .csv, .tsv or .parquet files",
  );
}

/** Reads a file's labelled examples (see the header for the conventions). */
export async function readRecords(path: string, opts: ReadOptions = {}): Promise<DataRecord[]> {
  if (!existsSync(path)) throw new DataError(`${path}: no such file`);
  const format = opts.format ?? detectFormat(path);
  if (format === "parquet") return readParquetRecords(path, opts);
  const text = stripBom(readFileSync(path, "utf8"));
  if (format === "jsonl") return jsonlRecords(text, path, opts);
  return delimitedRecords(text, path, format === "csv" ? "," : "\t", opts);
}

// ---------------------------------------------------------------------------------------------
// JSONL

/** Parses JSONL text: one object a line (blank lines skipped), with its 1-based line number. */
export function parseJsonl(text: string, source: string): { row: Record<string, unknown>; line: number }[] {
  const out: { row: Record<string, unknown>; line: number }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new DataError(`${source}:${i + 1}: invalid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new DataError(`${source}:${i + 1}: expected a JSON object, got ${Array.isArray(v) ? "an array" : JSON.stringify(v)}`);
    }
    out.push({ row: v as Record<string, unknown>, line: i + 1 });
  }
  return out;
}

function jsonlRecords(text: string, path: string, opts: ReadOptions): DataRecord[] {
  const rows = parseJsonl(text, path);
  if (rows.length === 0) return [];
  const keys = Object.keys(rows[0].row);
  const textCol = pickColumn(keys, opts.textColumn, opts.textCandidates ?? TEXT_COLUMNS, "text", `${path}:${rows[0].line}`);
  const labelCol = pickColumn(keys, opts.labelColumn, opts.labelCandidates ?? LABEL_COLUMNS, "label", `${path}:${rows[0].line}`);
  return rows.map(({ row, line }) => toRecord(row[textCol], row[labelCol], textCol, labelCol, `${path}:${line}`, textCol in row, labelCol in row));
}

// ---------------------------------------------------------------------------------------------
// CSV / TSV

/**
 * Parses delimited text into a header and records, each with the 1-based line its record starts on.
 * Quoted fields (starting with `"`) follow RFC 4180; see the file header.
 */
export function parseDelimited(
  text: string,
  source: string,
  delimiter: string,
  quote = true,
): { header: string[]; rows: { fields: string[]; line: number }[] } {
  const records: { fields: string[]; line: number }[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    // one record
    for (;;) {
      let field = "";
      if (quote && text[i] === '"') {
        const openLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new DataError(`${source}:${openLine}: unterminated quoted field`);
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === "\n") line++;
          field += c;
          i++;
        }
        const next = text[i];
        if (!(i >= n || next === delimiter || next === "\n" || (next === "\r" && text[i + 1] === "\n"))) {
          throw new DataError(`${source}:${line}: unexpected ${JSON.stringify(next)} after a closing quote (a quote inside a quoted field is written "")`);
        }
      } else {
        const start = i;
        while (i < n && text[i] !== delimiter && text[i] !== "\n") i++;
        field = text.slice(start, i);
        if (field.endsWith("\r") && (i >= n || text[i] === "\n")) field = field.slice(0, -1);
      }
      fields.push(field);
      if (i < n && text[i] === delimiter) {
        i++;
        continue;
      }
      // end of record: newline or end of text
      if (text[i] === "\r") i++;
      if (text[i] === "\n") {
        i++;
        line++;
      }
      break;
    }
    if (fields.length === 1 && fields[0] === "") continue; // blank line
    records.push({ fields, line: startLine });
  }
  if (records.length === 0) throw new DataError(`${source}: empty file (no header row)`);
  const header = records[0].fields.map((h) => h.trim());
  const rows = records.slice(1);
  for (const r of rows) {
    if (r.fields.length !== header.length) {
      throw new DataError(`${source}:${r.line}: ${r.fields.length} fields, but the header has ${header.length} (${header.join(", ")})`);
    }
  }
  return { header, rows };
}

function delimitedRecords(text: string, path: string, delimiter: string, opts: ReadOptions): DataRecord[] {
  const { header, rows } = parseDelimited(text, path, delimiter, opts.quote ?? true);
  const textCol = pickColumn(header, opts.textColumn, opts.textCandidates ?? TEXT_COLUMNS, "text", `${path}:1`);
  const labelCol = pickColumn(header, opts.labelColumn, opts.labelCandidates ?? LABEL_COLUMNS, "label", `${path}:1`);
  const ti = header.indexOf(textCol);
  const li = header.indexOf(labelCol);
  return rows.map((r) => toRecord(r.fields[ti], r.fields[li], textCol, labelCol, `${path}:${r.line}`, true, true));
}

// ---------------------------------------------------------------------------------------------
// Parquet

async function readParquetRecords(path: string, opts: ReadOptions): Promise<DataRecord[]> {
  const bytes = readFileSync(path);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let columns: string[];
  let metadata;
  try {
    metadata = parquetMetadata(file);
    columns = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (e) {
    throw new DataError(`${path}: not a readable Parquet file (${(e as Error).message})`);
  }
  const textCol = pickColumn(columns, opts.textColumn, opts.textCandidates ?? TEXT_COLUMNS, "text", path);
  const labelCol = pickColumn(columns, opts.labelColumn, opts.labelCandidates ?? LABEL_COLUMNS, "label", path);
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file, metadata, columns: [textCol, labelCol] });
  } catch (e) {
    throw new DataError(
      `${path}: cannot read columns "${textCol}", "${labelCol}" (${(e as Error).message})`,
      "only SNAPPY-compressed or uncompressed Parquet files are supported",
    );
  }
  return rows.map((row, r) => toRecord(row[textCol], row[labelCol], textCol, labelCol, `${path}: row ${r + 1}`, true, true));
}

// ---------------------------------------------------------------------------------------------
// Helpers

function pickColumn(
  available: readonly string[],
  wanted: string | undefined,
  candidates: readonly string[],
  what: string,
  where: string,
): string {
  if (wanted !== undefined) {
    if (available.includes(wanted)) return wanted;
    throw new DataError(`${where}: no ${what} column "${wanted}" (columns: ${available.join(", ") || "none"})`);
  }
  for (const c of candidates) if (available.includes(c)) return c;
  throw new DataError(
    `${where}: no ${what} column among ${candidates.map((c) => `"${c}"`).join(", ")} (columns: ${available.join(", ") || "none"})`,
    `name the ${what} column explicitly`,
  );
}

function toRecord(
  text: unknown,
  label: unknown,
  textCol: string,
  labelCol: string,
  where: string,
  hasText: boolean,
  hasLabel: boolean,
): DataRecord {
  if (!hasText || text === undefined || text === null) throw new DataError(`${where}: no ${textCol} value`);
  if (typeof text !== "string") throw new DataError(`${where}: the ${textCol} value is not a string (${JSON.stringify(text)})`);
  if (!hasLabel || label === undefined || label === null) throw new DataError(`${where}: no ${labelCol} value`);
  let l: string;
  if (typeof label === "string") l = label.trim();
  else if (typeof label === "number" || typeof label === "boolean" || typeof label === "bigint") l = String(label);
  else throw new DataError(`${where}: the ${labelCol} value is not a string or number (${JSON.stringify(label)})`);
  return { text: text.trim(), label: l, where };
}

function stripBom(s: string): string {
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}
