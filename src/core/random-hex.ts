// Random hex IDs for trace and span IDs on the data path (node proxy per connection, waypoint per
// request). They come from a pool of CSPRNG bytes refilled 4 KiB at a time: one randomBytes call
// per ~170 trace contexts instead of two per context (each a native job: 12–17 µs on this
// machine, ~5% of the waypoint's CPU at full load).
import { randomBytes } from "node:crypto";

const RANDOM_POOL_BYTES = 4096;
let randomPool = Buffer.alloc(0);
let randomOffset = 0;

/** `bytes` random bytes as lower-case hex. */
export function randomHex(bytes: number): string {
  if (randomOffset + bytes > randomPool.length) {
    randomPool = randomBytes(Math.max(RANDOM_POOL_BYTES, bytes));
    randomOffset = 0;
  }
  const hex = randomPool.toString("hex", randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}
