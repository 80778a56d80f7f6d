import { startHubServer } from "./test/io/hub_server.ts";
import { parquetWriteBuffer } from "hyparquet-writer";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os"; import { join } from "node:path";
const rows = readFileSync("../shared/data/sst2.train.jsonl","utf8").split("\n").filter(Boolean).slice(0,5200).map(l=>JSON.parse(l));
const pq = (rs:any[]) => new Uint8Array(parquetWriteBuffer({columnData:[{name:"sentence",data:rs.map(r=>r.text),type:"STRING"},{name:"label",data:rs.map(r=>r.label==="positive"?1n:0n),type:"INT64"}]}));
const s = startHubServer({repos:{"stanfordnlp/sst2":{type:"dataset",files:{"data/train-00000-of-00001.parquet":pq(rows.slice(0,5150)),"data/validation-00000-of-00001.parquet":pq(rows.slice(5150))}}}});
const home = mkdtempSync(join(tmpdir(),"scratch-"));
for (let i=0;i<2;i++){
const p = Bun.spawn(["bun","src/cli/main.ts","eval","--model","../shared/models/babygpt2","--task","sst2","--test-queries","4","--micro-batch","8","--out",join(home,"e.json")],{env:{...process.env,HF_ENDPOINT:s.url,HF_HOME:home},stdout:"inherit",stderr:"inherit"});
await p.exited; }
const p2 = Bun.spawn(["bun","src/cli/main.ts","eval","--model","../shared/models/babygpt2","--task","trec","--test-queries","4"],{env:{...process.env,HF_ENDPOINT:s.url,HF_HOME:home},stdout:"inherit",stderr:"inherit"});
await p2.exited;
const p3 = Bun.spawn(["bun","src/cli/main.ts","eval","--model","../shared/models/babygpt2","--task","sst2","--data","hf://datasets/x"],{env:{...process.env,HF_ENDPOINT:s.url,HF_HOME:home},stdout:"inherit",stderr:"inherit"});
await p3.exited;
s.stop();
