/**
 * A wrapper for the steps of a test of a spawned process (npm, Node-RED, a browser):
 * on the first failure it prints `output()`, what the process printed, which usually
 * says why; `onEachFailure` runs at every failure first (a screenshot of the page).
 */
export function showingOutputOnFailure(
  output: () => string,
  onEachFailure?: () => Promise<void>,
): (step: () => Promise<void>) => Promise<void> {
  let shown = false;
  return async (step) => {
    try {
      await step();
    } catch (error) {
      await onEachFailure?.();
      if (!shown) {
        shown = true;
        console.error(output());
      }
      throw error;
    }
  };
}
