import { Socket } from 'node:net';
import { eofRead, httpRequestOf, isReading, serverOf } from '../common/node-internals';
import { TCP_CLOSE, TCP_CLOSE_WAIT } from '../common/tcp-states';
import type { Leak } from '../common/types';
import { descriptorOf, type SocketRecord } from '../remembered/registry';
import { newRecord } from '../remembered/socket-record';
import { httpUse } from '../seen/request-uses';
import { processBackend } from '../measured/backend';
import { SAMPLE } from '../measured/kernel-reader';
import type { Finding } from '../judged/finding';
import { FunctionLocator } from '../explained/function-locations';
import { SourcePositions } from '../explained/source-positions';
import { describeLeak } from '../explained/leak';
import { formatLeaks, formatSummaries } from '../told/format';
import { groupReport, ReportLimiter } from '../told/report-limiter';
import { realNow } from '../common/real-time';

/** The live reports' default: here it only decides how places past the first twenty are summed up. */
const REPORT_INTERVAL_MS = 60_000;

/** What `tcp-leak-agent attach` gets back from the process it attached to. */
export interface AfterTheFact {
  /** TCP sockets looked at (JavaScript sockets with an open descriptor). */
  checked: number;
  leaks: Leak[];
  /** The leaks as the reports the agent writes, in the format asked for. */
  text: string;
  /** Why no kernel state could be read, when none could. */
  error?: string;
}

const NO_STACK =
  'the agent was attached after this socket was made, so no stack was captured; the functions attached to it name no line of the program either. ' +
  'Start the service with the agent (node --require tcp-leak-agent/register) to get the line of the next one';

/**
 * Runs inside a process the agent was not started in, with its JavaScript
 * sockets found through the inspector: judges them by the kernel's word alone
 * and describes each leak with the evidence that exists after the fact. There
 * are no creation stacks and no history: the location comes from the
 * functions attached to the socket and its request or server (a response
 * callback, an 'upgrade' listener), located by V8. A socket Node is still
 * reading will close on its own next turn and is not a leak. How long the
 * kernel has held the state is the time since data last arrived (the peer's
 * FIN is the last thing it sent), where the kernel says.
 */
export function leaksAfterTheFact(candidates: readonly unknown[], format: 'text' | 'json'): AfterTheFact {
  const sockets = candidates.filter((candidate): candidate is Socket => candidate instanceof Socket && descriptorOf(candidate) >= 0);
  let backend: ReturnType<typeof processBackend>;
  try {
    backend = processBackend();
  } catch (error) {
    return { checked: sockets.length, leaks: [], text: '', error: error instanceof Error ? error.message : String(error) };
  }
  if (backend.name === 'none') return { checked: sockets.length, leaks: [], text: '', error: backend.notice ?? 'no kernel state on this platform' };
  const reader = backend.binding;
  const fds = Int32Array.from(sockets.map((socket) => descriptorOf(socket)));
  const rows = new Int32Array(fds.length * reader.SAMPLE_STRIDE);
  if (fds.length > 0) reader.scanSockets(fds, fds.length, rows);
  const locator = new FunctionLocator();
  const positions = new SourcePositions();
  const now = realNow();
  const leaks: Leak[] = [];
  sockets.forEach((socket, i) => {
    const base = i * reader.SAMPLE_STRIDE;
    const state = rows[base + SAMPLE.state]!;
    if (state !== TCP_CLOSE_WAIT && state !== TCP_CLOSE) return;
    // The FIN is in and Node is reading: it will see it at its next turn and close the socket.
    if (isReading(socket) && eofRead(socket) === false) return;
    const heldMs = rows[base + SAMPLE.lastDataRecvMs]!;
    const finding: Finding = {
      socket,
      record: recordAfterTheFact(socket, now),
      fd: fds[i]!,
      state,
      closeWaitMs: heldMs >= 0 ? heldMs : 0,
      lastDataSentMs: rows[base + SAMPLE.lastDataSentMs]!,
    };
    leaks.push({ ...describeLeak(finding, true, false, () => NO_STACK, locator, positions), afterTheFact: true });
  });
  // Grouped by kind and place as the live reports are: a thousand sockets from one line read as one report.
  const { groups, summaries } = new ReportLimiter(REPORT_INTERVAL_MS).admit(leaks, now);
  const text = formatLeaks(groups.map(groupReport), format) + formatSummaries(summaries, format);
  return { checked: sockets.length, leaks, text };
}

/** What can still be told of a socket: where it came from, and the request it carries, if any. */
function recordAfterTheFact(socket: Socket, now: number): SocketRecord {
  const record = newRecord(serverOf(socket) ? 'server' : 'client', now, undefined, true);
  const request = httpRequestOf(socket);
  if (request && typeof request.getHeader === 'function' && typeof request.path === 'string') record.uses = [{ ...httpUse(request, undefined, undefined), at: now }];
  return record;
}
