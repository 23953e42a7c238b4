// Compiled (not run) by `npm test`: the typed events narrow as the README
// says, and the generated types accept every example of the catalogue
// (examples.ts) and reject a payload of the wrong type.
import { examples } from "./examples.js";
import type { CCEvent, Payload, QueueJoin, RecipientSync, Snapshot, State } from "../src/index.js";
import { connect } from "../src/index.js";

export function describe(ev: CCEvent): string {
  switch (ev.data.event) {
    case "queue.join":
      return `caller ${ev.data.caller_id_number} at position ${ev.data.position.toFixed(0)} in ${ev.data.queue_id}`;
    case "recipient.sync": {
      const s: RecipientSync = ev.data;
      return s.active_sessions.map((a) => a.direction satisfies "inbound" | "outbound").join(",");
    }
    case "session.delete":
      return `${ev.data.disconnect_cause} (${ev.data.disconnect_cause_code})`;
    default:
      return ev.data.event;
  }
}

export const every: Payload[] = Object.values(examples);
export const join: QueueJoin = examples["queue.join"];
// @ts-expect-error a queue.leave is not a queue.join
export const notJoin: QueueJoin = examples["queue.leave"];
// @ts-expect-error "lunch" is not a recipient state
export const notState: State = "lunch";

export async function snapshotThenSince(accountId: string): Promise<number> {
  const cc = await connect({ url: "ws://127.0.0.1:1", apiKey: "k", apiUrl: "http://127.0.0.1:2" });
  const snap: Snapshot = await cc.snapshot(accountId);
  const waiting = snap.queues.reduce((n, q) => n + q.callers.length, 0);
  await cc.subscribe(accountId, [`qubicle.queue.${accountId}.*`], (ev) => void describe(ev), {
    since: { sequence: snap.sequence, epoch: snap.epoch },
  });
  return waiting;
}
