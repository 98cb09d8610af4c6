// Copyright 2026 the @x/port-reserve authors. MIT license.
// Draws the capacity curve of bench/data/capacity.json (bench/capacity.sh
// writes it, then runs this) as an SVG line chart:
//   deno run -R=bench/data -W=bench/data bench/chart.ts \
//     bench/data/capacity.json bench/data/capacity.svg
// x: outstanding reservations; y: median microseconds per reservation (log).

interface Curve {
  runtime: string;
  buckets: [number, number][];
}

const [input, output] = Deno.args;
const { curves } = JSON.parse(Deno.readTextFileSync(input)) as {
  curves: Curve[];
};
const width = 720;
const height = 400;
const left = 70;
const right = 130;
const top = 30;
const bottom = 50;
const maxX = Math.max(...curves.flatMap((c) => c.buckets.map(([x]) => x)));
const ys = curves.flatMap((c) => c.buckets.map(([, y]) => y));
const minY = 10 ** Math.floor(Math.log10(Math.min(...ys)));
const maxY = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
const colors: Record<string, string> = {
  c: "#555555",
  deno: "#1f77b4",
  bun: "#d62728",
  node: "#2ca02c",
};
const names: Record<string, string> = {
  c: "C floor",
  deno: "Deno",
  bun: "Bun",
  node: "Node",
};
const x = (value: number): number =>
  left + (value / maxX) * (width - left - right);
const y = (value: number): number =>
  top + (1 - Math.log10(value / minY) / Math.log10(maxY / minY)) *
    (height - top - bottom);
const parts: string[] = [];
for (let tick = minY; tick <= maxY; tick *= 10) {
  parts.push(
    `<line x1="${left}" x2="${width - right}" y1="${y(tick)}" y2="${
      y(tick)
    }" stroke="#ddd"/>`,
    `<text x="${left - 8}" y="${y(tick) + 4}" text-anchor="end">${
      tick >= 1000 ? `${tick / 1000} ms` : `${tick} µs`
    }</text>`,
  );
}
for (let tick = 0; tick <= maxX; tick += 5000) {
  parts.push(
    `<line x1="${x(tick)}" x2="${x(tick)}" y1="${top}" y2="${
      height - bottom
    }" stroke="#eee"/>`,
    `<text x="${x(tick)}" y="${height - bottom + 18}" text-anchor="middle">${
      tick.toLocaleString("en")
    }</text>`,
  );
}
curves.forEach((curve, index) => {
  const color = colors[curve.runtime] ?? "#000";
  const points = curve.buckets.map(([bx, by]) =>
    `${x(bx).toFixed(1)},${y(by).toFixed(1)}`
  );
  parts.push(
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${
      points.join(" ")
    }"/>`,
    `<text x="${width - right + 12}" y="${
      top + 16 + index * 20
    }" fill="${color}">${names[curve.runtime] ?? curve.runtime}</text>`,
  );
});
const svg =
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="18" font-size="14">Time per reservation against outstanding reservations (Linux, fresh network namespace)</text>
${parts.join("\n")}
<text x="${(left + width - right) / 2}" y="${
    height - 12
  }" text-anchor="middle">outstanding reservations (in TIME_WAIT)</text>
</svg>
`;
Deno.writeTextFileSync(output, svg);
