import type { Socket } from 'node:net';

/**
 * One listener function shared by every socket, handing on the socket that emitted the event
 * (EventEmitter calls a listener with `this` = the emitter; an event like 'close' or
 * 'agentRemove' carries no socket argument). Shared, so a listener costs no closure per socket
 * and the agent can take its own back by identity.
 */
export function socketListener(handle: (socket: Socket) => void): (this: Socket) => void {
  return function (this: Socket) {
    handle(this);
  };
}
