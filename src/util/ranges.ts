// Sets of pages as sorted, non-overlapping [addr, len] pairs in a flat array.

/** [addr, len] pairs of a minus b (both sorted, non-overlapping). */
export function subtractRanges(a: number[], b: number[]): number[] {
  const out: number[] = [];
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    let s = a[i];
    const e = a[i] + a[i + 1];
    while (j < b.length && b[j] + b[j + 1] <= s) j += 2;
    for (let k = j; k < b.length && b[k] < e; k += 2) {
      if (b[k] > s) out.push(s, b[k] - s);
      s = Math.max(s, b[k] + b[k + 1]);
    }
    if (s < e) out.push(s, e - s);
  }
  return out;
}

/** [addr, len] pairs of a or b (both sorted, non-overlapping), sorted and merged. */
export function unionRanges(a: number[], b: number[]): number[] {
  const parts: [number, number][] = [];
  const rest = subtractRanges(a, b);
  for (let i = 0; i < rest.length; i += 2) parts.push([rest[i], rest[i + 1]]);
  for (let i = 0; i < b.length; i += 2) parts.push([b[i], b[i + 1]]);
  parts.sort((x, y) => x[0] - y[0]);
  const out: number[] = [];
  for (const [s, l] of parts) {
    const n = out.length;
    if (n && out[n - 2] + out[n - 1] === s) out[n - 1] += l;
    else out.push(s, l);
  }
  return out;
}

/** [addr, len] pairs of a that also lie in b (both sorted, non-overlapping). */
export function intersectRanges(a: number[], b: number[]): number[] {
  return subtractRanges(a, subtractRanges(a, b));
}

/** Bytes in [addr, len] pairs. */
export function sumLengths(pairs: number[]): number {
  let n = 0;
  for (let i = 1; i < pairs.length; i += 2) n += pairs[i];
  return n;
}
