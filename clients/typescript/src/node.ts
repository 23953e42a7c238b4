// The package's entry in Node. It is the browser client with one
// difference: where there is no global WebSocket (Node 20 without
// --experimental-websocket) it uses the `ws` package, an optional peer
// dependency, so `npm install @ccevents/client ws` is all Node 20 needs.

import { CCEvents as BaseClient, CCEventsError, type ClientOptions, type WebSocketConstructor } from "./index.js";

export * from "./index.js";

/** The client, able to fall back to the `ws` package for its websockets. */
export class CCEvents extends BaseClient {
  protected override async webSocketClass(): Promise<WebSocketConstructor> {
    try {
      return await super.webSocketClass();
    } catch (noGlobal) {
      try {
        const ws = await import("ws");
        return ws.WebSocket as unknown as WebSocketConstructor;
      } catch {
        throw new CCEventsError(`${(noGlobal as Error).message}; this Node (${process.version}) has no global WebSocket and the ws package is not installed`);
      }
    }
  }
}

/** Opens a client and resolves once its first connection is up. */
export async function connect(options: ClientOptions): Promise<CCEvents> {
  const cc = new CCEvents(options);
  await cc.open();
  return cc;
}
