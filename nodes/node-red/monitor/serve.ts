import type { NodeAPI } from 'node-red';
import { serveMetrics } from './metrics.js';
import { serveMonitor } from './routes.js';

/** The package's admin routes: the metrics endpoint (when settings.js turns it on) and the monitor's. */
export function serveAdminRoutes(RED: NodeAPI): void {
  serveMetrics(RED);
  serveMonitor(RED);
}
