/**
 * Messages the message bus (mqemitter, or mqemitter-redis) hands to subscribers at once: 0, no bound.
 *
 * Aedes' default is 100, the rest waiting in a queue; when one is done the next is taken from within
 * its completion, and a message whose subscribers finish at once (one nobody subscribes to) completes
 * within the call that took it. A queue of thousands then unwinds one stack frame deeper per message,
 * past the stack's size: a burst over MQTT 5 in process made one (a client's batch of packets, read
 * in one go, is published at once). Unbounded, nothing waits and nothing nests; what is in flight
 * stays bounded by each client's batch, since Aedes reads a client's next packets only once its
 * publications have reached every subscriber.
 */
export const MQ_CONCURRENCY = 0;
