/**
 * The soak's messages: a pool of distinct 1 KiB JSON-like texts from a seeded PRNG, so that a
 * compressor with context takeover cannot reduce every echo to a back-reference to the last one
 * (each message is drawn at random from 4096, and a 32 KiB window holds ~32 of them), and the ratio stays realistic.
 */

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['alpha', 'bravo', 'delta', 'orders', 'price', 'status', 'pending', 'shipped', 'user', 'account', 'region', 'eu-west', 'us-east', 'widget', 'gadget', 'priority', 'normal', 'low', 'high', 'retry'];

/** `count` texts of exactly `size` bytes (ASCII), each different. */
export function makePool(count: number, size: number, seed = 7692): { text: string[]; bytes: Buffer[] } {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const hex = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += Math.floor(rnd() * 16).toString(16);
    return s;
  };
  const text: string[] = [];
  for (let k = 0; k < count; k++) {
    const items: string[] = [];
    let body = '';
    for (let i = 0; ; i++) {
      items.push(
        `{"sku":"${pick(WORDS)}-${hex(6)}","qty":${Math.floor(rnd() * 100)},"price":${(rnd() * 1000).toFixed(2)},"status":"${pick(WORDS)}","tags":["${pick(WORDS)}","${pick(WORDS)}"]}`,
      );
      body = `{"type":"update","seq":${k},"ts":${1_700_000_000_000 + Math.floor(rnd() * 1e9)},"user":{"id":"${hex(16)}","name":"${pick(WORDS)} ${pick(WORDS)}","region":"${pick(WORDS)}"},"items":[${items.join(',')}],"note":"`;
      if (body.length + 200 > size) break;
    }
    let note = '';
    while (body.length + note.length + 2 < size) note += rnd() < 0.7 ? pick(WORDS) + ' ' : hex(4);
    const s = (body + note).slice(0, size - 2) + '"}';
    text.push(s);
  }
  return { text, bytes: text.map((t) => Buffer.from(t, 'latin1')) };
}
