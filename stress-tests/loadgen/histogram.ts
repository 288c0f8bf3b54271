// A small log-linear latency histogram (HdrHistogram's layout, fixed precision): values are
// integer microseconds; each power-of-two range is cut into SUB_BUCKETS linear buckets, so the
// relative error of a reported percentile is below 1/SUB_BUCKETS (< 1%). Recording is two
// Math ops and one typed-array increment: no allocation on the hot path. The bucket array is a
// plain Float64Array so workers can post it to the main thread and histograms merge by addition.

const SUB_BITS = 7;
const SUB_BUCKETS = 1 << SUB_BITS; // 128
const RANGES = 32; // up to 2^(32+7) µs, far beyond any bounded run

export const HISTOGRAM_LENGTH = SUB_BUCKETS * (RANGES + 1);

export class Histogram {
  readonly counts: Float64Array;
  count = 0;
  max = 0;

  constructor(counts?: Float64Array) {
    this.counts = counts ?? new Float64Array(HISTOGRAM_LENGTH);
    if (counts !== undefined) {
      for (let i = 0; i < counts.length; i++) {
        const c = counts[i]!;
        if (c > 0) {
          this.count += c;
          this.max = Math.max(this.max, bucketHigh(i));
        }
      }
    }
  }

  /** Records one value in microseconds (negative values count as 0). */
  record(us: number): void {
    const v = us > 0 ? Math.floor(us) : 0;
    this.counts[bucketIndex(v)]! += 1;
    this.count++;
    if (v > this.max) this.max = v;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    if (other.max > this.max) this.max = other.max;
  }

  /** Value (µs) at quantile q in [0, 1]; the upper edge of the bucket, capped at the max seen. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(bucketHigh(i), this.max);
    }
    return this.max;
  }
}

function bucketIndex(v: number): number {
  if (v < SUB_BUCKETS) return v;
  // v >= 128: range r = floor(log2(v)) - SUB_BITS + 1 >= 1
  const log2 = 31 - Math.clz32(v >= 0x80000000 ? 0x7fffffff : v);
  const r = Math.min(log2 - SUB_BITS + 1, RANGES);
  const sub = Math.min(Math.floor(v / 2 ** (r - 1)) - SUB_BUCKETS, SUB_BUCKETS - 1);
  return r * SUB_BUCKETS + sub;
}

function bucketHigh(i: number): number {
  if (i < SUB_BUCKETS) return i;
  const r = Math.floor(i / SUB_BUCKETS);
  const sub = i % SUB_BUCKETS;
  return (SUB_BUCKETS + sub + 1) * 2 ** (r - 1) - 1;
}
