/**
 * The bytes written to a connection within one turn of the event loop, joined for one write. Both
 * ends of this package's MQTT connections send a turn's packets this way (the broker config's MQTT.js
 * client, connection/mqttjs-internals.ts; the embedded broker to a network client,
 * broker/gated-connection.ts): mqtt-packet writes each packet as a few small chunks (header, topic,
 * payload), and a corked socket sent a turn's hundreds of them as one writev, whose per-chunk
 * bookkeeping and iovecs cost more than copying them into one buffer (13 % of the time at QoS 0
 * through Mosquitto). mqtt-packet writes to it as to a stream (`write`; and `destroy`, for a packet it
 * cannot encode, which the MQTT.js side adds).
 */
export class TurnBytes {
  private chunks: (Buffer | string)[] = [];
  private length = 0;

  /** Keeps `chunk` for the turn's write; always room, as a stream that needs no drain says. */
  write(chunk: Buffer | string): boolean {
    this.chunks.push(chunk);
    this.length += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    return true;
  }

  /** What was written since the last take, as one buffer; undefined when nothing was. */
  take(): Buffer | undefined {
    const { chunks, length } = this;
    if (length === 0) return undefined;
    this.chunks = [];
    this.length = 0;
    const [first] = chunks;
    if (chunks.length === 1 && typeof first !== 'string') return first;
    const bytes = Buffer.allocUnsafe(length);
    let offset = 0;
    for (const chunk of chunks)
      offset += typeof chunk === 'string' ? bytes.write(chunk, offset) : chunk.copy(bytes, offset);
    return bytes;
  }
}
