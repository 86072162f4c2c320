// A request body that can be sent more than once (retries, mirrors): chunks are kept while they
// fit in the replay limit and fed to each attempt; a body bigger than the limit still streams to
// the first attempt but cannot be replayed. Backpressure: the source pauses while the current
// attempt's writer is full.
import type { Readable, Writable } from "node:stream";

export class ReplayableBody {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private overflow = false;
  private ended = false;
  private target: Writable | null = null;
  private readonly mirrors: Writable[] = [];
  size = 0;

  constructor(
    private readonly source: Readable,
    limit: number,
  ) {
    source.on("data", (chunk: Buffer) => {
      this.size += chunk.length;
      if (!this.overflow) {
        if (this.kept + chunk.length <= limit) {
          this.chunks.push(chunk);
          this.kept += chunk.length;
        } else {
          this.overflow = true;
          this.chunks.length = 0;
          for (const m of this.mirrors.splice(0)) m.destroy();
        }
      }
      for (const m of this.mirrors) m.write(chunk);
      if (this.target && !this.target.destroyed && !this.target.write(chunk)) {
        source.pause();
        this.target.once("drain", () => source.resume());
      }
    });
    source.on("end", () => {
      this.ended = true;
      for (const m of this.mirrors) m.end();
      if (this.target && !this.target.destroyed) this.target.end();
    });
    source.pause();
  }

  /** Whether a new attempt can get the whole body. */
  get replayable(): boolean {
    return !this.overflow;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** Send the body to a new attempt (what was kept, then the rest as it arrives). */
  sendTo(w: Writable): boolean {
    if (this.target && this.target !== w && this.overflow) return false;
    this.target = w;
    for (const c of this.chunks) w.write(c);
    if (this.ended) w.end();
    else this.source.resume();
    return true;
  }

  /** A copy for a mirror: only while the whole body is still kept. */
  mirrorTo(w: Writable): boolean {
    if (this.overflow) return false;
    for (const c of this.chunks) w.write(c);
    if (this.ended) w.end();
    else this.mirrors.push(w);
    return true;
  }

  /** The current attempt failed: stop feeding it. */
  detach(w: Writable): void {
    if (this.target === w) {
      this.target = null;
      this.source.pause();
    }
  }
}
