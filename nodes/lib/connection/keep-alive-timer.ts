/**
 * The keep-alive timer of one MQTT.js client (its `timerVariant` option: `set` and `clear` with the
 * semantics of setInterval and clearInterval). MQTT.js starts its keep-alive interval afresh on every
 * acknowledgment it receives (and PUBREL, PINGRESP), a clearInterval and a setInterval each time:
 * 3–5 % of the Node-RED process's time at QoS 2 through Mosquitto (bench `tcp --profile`), where a
 * message brings the publisher two acknowledgments and the subscriber a PUBREL. This timer notes
 * each new schedule in a few fields and keeps one Node.js timer: when that fires before the current
 * schedule's tick is due (packets came since), it waits for the rest. Every tick comes when
 * setInterval's would, never earlier and at most the timers' granularity later.
 */
export interface KeepAliveTimer {
  set(callback: () => void, every: number): number;
  clear(id: number): void;
}

export function keepAliveTimer(): KeepAliveTimer {
  /** The schedule set last and not cleared: its id (0: none), its callback, interval and next tick. */
  let id = 0;
  let callback: () => void = () => undefined;
  let every = 0;
  let due = 0;
  let lastId = 0;
  /** The one Node.js timer, while armed, and when it fires. */
  let timer: NodeJS.Timeout | undefined;
  let firesAt = 0;

  const arm = (delay: number) => {
    if (timer) clearTimeout(timer);
    firesAt = Date.now() + delay;
    timer = setTimeout(fire, delay);
  };
  const fire = () => {
    timer = undefined;
    if (id === 0) return;
    const now = Date.now();
    if (now < due) return arm(due - now);
    due = now + every;
    arm(every);
    callback();
  };

  return {
    set(tick, interval) {
      id = ++lastId;
      callback = tick;
      every = interval;
      due = Date.now() + interval;
      // Armed for later than the new tick (a shorter interval than before): armed again for it.
      if (!timer || firesAt > due) arm(interval);
      else timer.ref();
      return id;
    },
    clear(cleared) {
      // The armed timer, finding no schedule, stops; a set before it fires takes it over. Until then
      // it does not keep the process alive, as a cleared interval would not.
      if (cleared !== id) return;
      id = 0;
      timer?.unref();
    },
  };
}
