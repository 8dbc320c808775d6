import { endpointsOf } from './leak';
import { SAMPLE } from '../measured/kernel-reader';
import type { Measurement } from '../measured/scanner';
import { locate } from '../common/stack';
import { tcpStateName } from '../common/tcp-states';
import type { SocketSnapshot } from '../common/types';
import { realIso } from '../common/real-time';

/** One row per measured socket the kernel answered for, for `snapshot()`. */
export function describeSockets(m: Measurement, skipNodeModules: boolean): SocketSnapshot[] {
  const sockets: SocketSnapshot[] = [];
  for (let i = 0; i < m.count; i++) {
    const base = i * m.stride;
    const state = m.rows[base + SAMPLE.state]!;
    if (state < 0) continue;
    const record = m.records[i]!;
    sockets.push({
      fd: m.fds[i]!,
      state: tcpStateName(state),
      origin: record.origin,
      ...endpointsOf(m.sockets[i]!, m.records[i]),
      createdAt: realIso(record.createdAt),
      ...(record.createdAtLatest !== 0 ? { createdAtLatest: realIso(record.createdAtLatest) } : {}),
      location: locate(record.creation, skipNodeModules),
      lastDataSentMs: m.rows[base + SAMPLE.lastDataSentMs]!,
      lastDataRecvMs: m.rows[base + SAMPLE.lastDataRecvMs]!,
    });
  }
  return sockets;
}
