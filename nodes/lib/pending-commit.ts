/** The promise every change of one group-committed write is given, with what settles it. */
export interface PendingCommit {
  committed: Promise<void>;
  /** Resolves when the write is done, whether it succeeded or not: for changes a failure does not concern. */
  settled: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

export function pendingCommit(): PendingCommit {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const committed = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Each change's caller handles a failure, and a batch may have none waiting: the batch's own
  // promise must not fail as an unhandled rejection.
  const settled = committed.catch(() => undefined);
  return { committed, settled, resolve, reject };
}
