import sharp from "sharp";
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100"><rect width="300" height="100" fill="white"/><text x="10" y="50" font-family="sans-serif" font-size="24">Hello abft 123</text><path d="M10 70 L290 70" stroke="red" stroke-width="2"/></svg>`;
const png = await sharp(Buffer.from(svg)).png().toBuffer();
await Bun.write(process.argv[2], png);
console.log(sharp.versions, png.length);
