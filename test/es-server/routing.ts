/**
 * Shard selection exactly as Elasticsearch (7.0+, 8, 9) and OpenSearch do it for an index without
 * `routing_partition_size`: `Murmur3HashFunction.hash(routing)` hashes the routing value (the `_id` when there is
 * none) as its UTF-16 code units, two little-endian bytes each, with Lucene's murmurhash3_x86_32 and seed 0; the
 * shard is `floorMod(hash, routingNumShards) / routingFactor`. So a test that picks routing values landing on
 * different shards here picks values that do so on a real cluster too.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/** Lucene's StringHelper.murmurhash3_x86_32 (a signed 32-bit result, as Java's int). */
export function murmur3x86_32(bytes: Uint8Array, seed = 0): number {
  let h1 = seed | 0;
  const len = bytes.length;
  const roundedEnd = len & ~3;
  for (let i = 0; i < roundedEnd; i += 4) {
    let k1 = (bytes[i] as number) | ((bytes[i + 1] as number) << 8) | ((bytes[i + 2] as number) << 16) | ((bytes[i + 3] as number) << 24);
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 13), 5) + 0xe6546b64) | 0;
  }
  let k1 = 0;
  const tail = len & 3;
  if (tail === 3) k1 = (bytes[roundedEnd + 2] as number) << 16;
  if (tail >= 2) k1 |= (bytes[roundedEnd + 1] as number) << 8;
  if (tail >= 1) {
    k1 |= bytes[roundedEnd] as number;
    h1 ^= Math.imul(rotl(Math.imul(k1, C1), 15), C2);
  }
  h1 ^= len;
  h1 ^= h1 >>> 16;
  h1 = Math.imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h1 = Math.imul(h1, 0xc2b2ae35);
  h1 ^= h1 >>> 16;
  return h1 | 0;
}

/** Murmur3HashFunction.hash(String): the UTF-16 code units, low byte first. */
export function routingHash(routing: string): number {
  const bytes = new Uint8Array(routing.length * 2);
  for (let i = 0; i < routing.length; i++) {
    const c = routing.charCodeAt(i);
    bytes[i * 2] = c & 0xff;
    bytes[i * 2 + 1] = c >>> 8;
  }
  return murmur3x86_32(bytes);
}

/**
 * MetadataCreateIndexService.calculateNumRoutingShards for indices created on 7.0+: the largest
 * `numShards * 2^x` up to 1024, with at least one split.
 */
export function defaultRoutingNumShards(numShards: number): number {
  const log2NumShards = numShards <= 1 ? 0 : 32 - Math.clz32(numShards - 1);
  const numSplits = Math.max(1, 10 - log2NumShards);
  return numShards * 2 ** numSplits;
}

/** The shard a routing value (or, without one, the id) picks. */
export function shardFor(routingOrId: string, numShards: number, routingNumShards = defaultRoutingNumShards(numShards)): number {
  if (numShards <= 1) return 0;
  const hash = routingHash(routingOrId);
  const mod = ((hash % routingNumShards) + routingNumShards) % routingNumShards;
  return Math.floor(mod / (routingNumShards / numShards));
}
