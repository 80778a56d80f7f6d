// Loading labelled examples: JSONL, CSV/TSV with quoted fields, Parquet (a fixture written at test
// time with hyparquet-writer), column choice, and one-line errors that name the file and line/row.
import { describe, expect, test, beforeAll, afterAll } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { readRecords, parseDelimited, DataError } from "../../src/icl/data.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "abft-data-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string | ArrayBuffer): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === "string" ? content : new Uint8Array(content));
  return p;
}

async function expectDataError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DataError);
  expect((err as Error).message).toMatch(pattern);
  expect((err as Error).message).not.toContain("\n");
}

describe("JSONL", () => {
  test("reads text and label, trims, skips blank lines, numbers become strings", async () => {
    const p = write("a.jsonl", '{"text": "  hello world ", "label": "pos"}\n\n{"text": "bye", "label": 1}\r\n');
    const r = await readRecords(p);
    expect(r).toEqual([
      { text: "hello world", label: "pos", where: `${p}:1` },
      { text: "bye", label: "1", where: `${p}:3` },
    ]);
  });
  test("default columns are looked up by name; explicit columns win", async () => {
    const p = write("b.jsonl", '{"sentence": "s1", "text": "t1", "coarse_label": 3, "label_id": 0}\n');
    expect((await readRecords(p))[0]).toMatchObject({ text: "t1", label: "0" });
    expect((await readRecords(p, { textColumn: "sentence", labelColumn: "coarse_label" }))[0]).toMatchObject({ text: "s1", label: "3" });
  });
  test("errors name the file and line", async () => {
    const bad = write("bad.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1\n');
    await expectDataError(readRecords(bad), new RegExp(`${bad}:2: invalid JSON`));
    const noLabel = write("nolabel.jsonl", '{"text": "a", "label": 0}\n{"text": "b"}\n');
    await expectDataError(readRecords(noLabel), new RegExp(`${noLabel}:2: no label value`));
    const notStr = write("notstr.jsonl", '{"text": 5, "label": 0}\n');
    await expectDataError(readRecords(notStr), /notstr.jsonl:1: the text value is not a string/);
    const noCol = write("nocol.jsonl", '{"body": "a", "label": 0}\n');
    await expectDataError(readRecords(noCol), /no text column among "text", "sentence".*\(columns: body, label\)/);
    await expectDataError(readRecords(noCol, { textColumn: "words" }), /no text column "words"/);
    const arr = write("arr.jsonl", "[1, 2]\n");
    await expectDataError(readRecords(arr), /arr.jsonl:1: expected a JSON object/);
  });
});

describe("CSV / TSV", () => {
  test("quoted fields: delimiters, doubled quotes and newlines inside, CRLF line ends, BOM", async () => {
    const csv = '\ufefftext,label\r\n"a, b",0\r\n"she said ""hi""",1\r\n"two\nlines",0\r\nplain text,1\r\n';
    const p = write("a.csv", csv);
    const r = await readRecords(p);
    expect(r.map((x) => x.text)).toEqual(["a, b", 'she said "hi"', "two\nlines", "plain text"]);
    expect(r.map((x) => x.label)).toEqual(["0", "1", "0", "1"]);
    // the line a record starts on
    expect(r.map((x) => x.where)).toEqual([`${p}:2`, `${p}:3`, `${p}:4`, `${p}:6`]);
  });
  test("TSV, GLUE layout: quotes inside unquoted fields are ordinary characters, the header can be in any order", async () => {
    const p = write("a.tsv", 'label\ttext\n0\tit \'s a "fun" movie \n1\t"quoted"\n');
    const r = await readRecords(p);
    expect(r.map((x) => x.text)).toEqual(['it \'s a "fun" movie', "quoted"]);
    expect((await readRecords(p, { quote: false }))[1].text).toBe('"quoted"');
  });
  test("parseDelimited keeps empty fields and the last line without a newline", () => {
    const { header, rows } = parseDelimited("a,b,c\n1,,3\n,,\nx,y,z", "mem", ",");
    expect(header).toEqual(["a", "b", "c"]);
    expect(rows.map((r) => r.fields)).toEqual([["1", "", "3"], ["", "", ""], ["x", "y", "z"]]);
  });
  test("errors name the file and line", async () => {
    const p1 = write("unterminated.csv", 'text,label\nok,0\n"never closed,1\nmore,0\n');
    await expectDataError(readRecords(p1), /unterminated.csv:3: unterminated quoted field/);
    const p2 = write("fields.csv", "text,label\nok,0\na,b,1\n");
    await expectDataError(readRecords(p2), /fields.csv:3: 3 fields, but the header has 2/);
    const p3 = write("afterquote.csv", 'text,label\n"x"y,0\n');
    await expectDataError(readRecords(p3), /afterquote.csv:2: unexpected "y" after a closing quote/);
    const p4 = write("empty.csv", "");
    await expectDataError(readRecords(p4), /empty.csv: empty file/);
  });
});

describe("Parquet", () => {
  test("reads a SNAPPY Parquet file written by hyparquet-writer, with integer labels", async () => {
    const texts = ["first text", "  second, with comma ", "ünïcödé ✓ 🎉", "last"];
    const buf = parquetWriteBuffer({
      columnData: [
        { name: "idx", data: [10, 11, 12, 13], type: "INT32" },
        { name: "sentence", data: texts, type: "STRING" },
        { name: "label", data: [0, 1, 1, 0], type: "INT32" },
      ],
    });
    const p = write("a.parquet", buf);
    const r = await readRecords(p);
    expect(r.map((x) => x.text)).toEqual(texts.map((t) => t.trim()));
    expect(r.map((x) => x.label)).toEqual(["0", "1", "1", "0"]);
    expect(r[2].where).toBe(`${p}: row 3`);
  });
  test("string labels, and errors naming the row or the columns", async () => {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: "text", data: ["a", "b", "c"], type: "STRING" },
        { name: "label_text", data: ["pos", null, "neg"], type: "STRING" },
      ],
    });
    const p = write("b.parquet", buf);
    await expectDataError(readRecords(p), /no label column among .*\(columns: text, label_text\)/);
    await expectDataError(readRecords(p, { labelColumn: "label_text" }), new RegExp(`${p}: row 2: no label_text value`));
    const junk = write("junk.parquet", "this is not parquet at all");
    await expectDataError(readRecords(junk), /junk.parquet: not a readable Parquet file/);
  });
});

test("unknown extensions and missing files are errors", async () => {
  await expectDataError(readRecords(write("x.txt", "a")), /unknown data format ".txt"/);
  await expectDataError(readRecords(join(dir, "nope.jsonl")), /nope.jsonl: no such file/);
});
