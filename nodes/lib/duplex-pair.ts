import { Duplex } from 'node:stream';

/** One end of an in-memory pipe: what is written here is read at the other end. */
class PipeEnd extends Duplex {
  peer!: PipeEnd;
  /** The write waiting for the peer to read, so a slow reader slows the writer. */
  private pendingWrite: (() => void) | undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void) {
    if (this.peer.push(chunk)) callback();
    else this.peer.pendingWrite = callback;
  }

  override _read() {
    const resume = this.pendingWrite;
    this.pendingWrite = undefined;
    resume?.();
  }

  override _final(callback: (error?: Error | null) => void) {
    this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void) {
    if (!this.peer.destroyed) this.peer.destroy();
    callback(error);
  }
}

/**
 * MQTT.js adds a 'drain' listener for each write that returns false; with the
 * default 16 KB buffer a burst of small QoS 0 messages piled up a thousand of
 * them and removing them one by one cost more than the messages. 1 MiB per
 * direction keeps backpressure (bounded memory) without that.
 */
const PIPE_OPTIONS = { readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 };

/** Two connected duplex streams: an in-process transport between an MQTT client and the embedded broker. */
export function createDuplexPair(): [Duplex, Duplex] {
  const a = new PipeEnd(PIPE_OPTIONS);
  const b = new PipeEnd(PIPE_OPTIONS);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
