import { formatEndpoint } from '../common/endpoints';
import { codeFrame, compiledNote } from '../explained/code-frame';
import { formatLocation } from '../common/stack';
import type { Leak, LeakSummaryReport } from '../common/types';
import { realIso } from '../common/real-time';

/** "1.2 s" or "350 ms". */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const KIND_TITLES: Record<Leak['kind'], string> = {
  'close-wait': 'leaked TCP socket, stuck in CLOSE_WAIT',
  'descriptor-without-connection': 'leaked TCP descriptor: the connection is over, the socket was never destroyed',
  'stalled-reader': 'stalled TCP socket: data waits unread and nothing reads it',
  'left-open': 'TCP socket left open at the end of its test (strict check)',
  'dead-peer': 'dead peer: the connection is open, but the other end stopped answering',
};

function headline(leak: Leak): string {
  if (!leak.location) {
    // No line to name: the request that last used it, then the connection, are the best handles on it.
    const arrow = leak.origin === 'server' ? '<-' : '->';
    const count = leak.count !== undefined && leak.count > 1 ? ` (and ${leak.count - 1} more like it)` : '';
    // The application's endpoint that made the request, when known: the first place to look.
    const served = leak.lastUse?.served ? ` (made while serving ${leak.lastUse.served.method} ${leak.lastUse.served.url})` : '';
    const request = leak.lastUse ? `${leak.lastUse.method} ${leak.lastUse.url}${served} over ` : '';
    const why = leak.afterTheFact
      ? 'no line: found after the fact, and no function attached to it names one'
      : leak.pooled
        ? 'no line: a pooled socket whose last request is not known'
        : leak.lastUse?.location || (!leak.lastUse && leak.creation)
        ? "no line: its stack shows only a library's code"
        : leak.lastUse
          ? "no line yet: that request's caller was not captured"
          : leak.stackNote
            ? 'no line: its creation stack was not captured'
            : 'opened where the agent could not see';
    return `${request}fd ${leak.fd} ${formatEndpoint(leak.local)} ${arrow} ${formatEndpoint(leak.remote)} (${why}): ${KIND_TITLES[leak.kind]}${count}`;
  }
  const where = formatLocation(leak.location);
  const fn = leak.location?.function ? ` in ${leak.location.function}` : '';
  const count = leak.count !== undefined && leak.count > 1 ? ` (${leak.count} sockets from this line)` : '';
  return `${where}${fn}: ${KIND_TITLES[leak.kind]}${count}`;
}

/** Whether capturing every stack would name a line: it would when the stack that names it was not captured. */
function stacksWouldTell(leak: Leak): boolean {
  return leak.lastUse ? leak.lastUse.location === null : leak.creation === null;
}

function whatHappened(leak: Leak): string {
  const when = leak.atExit
    ? leak.closeWaitMs > 0
      ? `at least ${formatDuration(leak.closeWaitMs)} before the process exited`
      : 'before the process exited'
    : leak.afterTheFact
      ? `at most ${formatDuration(leak.closeWaitMs)} ago (its last data arrived then; nothing was watching before)`
      : `at least ${formatDuration(leak.closeWaitMs)} ago`;
  const unknown =
    leak.origin === 'unknown'
      ? ' The agent did not see this socket being created (it was opened before start(), or by code that announces no socket), so it cannot say where.'
      : leak.location
        ? ''
        : leak.stackNote
          ? ` No line to name: ${leak.stackNote}.${leak.afterTheFact || !stacksWouldTell(leak) ? '' : ' TCP_LEAK_AGENT_STACKS=all (option stacks: "all") captures every one.'}`
          : ' The agent did not see where it was created.';
  if (leak.kind === 'left-open') {
    const test = leak.test !== undefined ? `The test "${leak.test}"` : 'The code under check';
    return `${test} opened this connection and it was still open (kernel state ${leak.state}) when the check ran. A strict check counts every socket a test leaves open, not only those the peer closed.${unknown}`;
  }
  if (leak.kind === 'dead-peer') {
    if (leak.idleMs !== undefined) {
      return `Nothing was sent or received on this connection for ${formatDuration(leak.idleMs)}, and TCP keepalive is off: if the peer went away (a NAT or load balancer dropped the flow, the host died), this side will never learn it, and the connection holds a descriptor (and a pool slot) forever.${unknown}`;
    }
    return `${leak.unanswered} retransmissions in a row went unanswered while data waits to be delivered: the peer host is gone, unreachable, or no longer reading. The kernel keeps retrying for up to about 15 minutes (tcp_retries2), and everything waiting on this connection waits as long.${unknown}`;
  }
  if (leak.kind === 'stalled-reader') {
    return (
      `${leak.unreadBytes ?? 'Some'} bytes from the peer wait unread in the kernel, and ` +
      (leak.atExit ? 'the program ended with nothing left to read them ' : `nothing has read this socket for at least ${formatDuration(leak.closeWaitMs)} `) +
      `(its stream is paused or never consumed). The peer is likely stuck behind a full window, or gave up long ago; the connection holds a descriptor and buffers until the process exits.${unknown}`
    );
  }
  if (leak.kind === 'descriptor-without-connection') {
    return `The connection ended ${when} (kernel state CLOSE), but this process never destroyed the socket: its file descriptor stays open, and neither ss nor /proc/net/tcp shows it.${unknown}`;
  }
  const peer = leak.origin !== 'server' ? 'The peer' : leak.listener ? 'The client' : 'The client of the server listening here';
  return `${peer} closed this connection ${when}; this process never closed its side, so the socket holds a file descriptor until the process exits.${unknown}`;
}

function whatToDo(leak: Leak): string {
  if (leak.cause && leak.cause.code !== 'unknown') return `${leak.cause.fix}.`;
  return genericFix(leak);
}

function genericFix(leak: Leak): string {
  if (leak.origin === 'unknown') {
    return 'find the code that owns this connection from its addresses below, and end or destroy the socket when the peer has closed.';
  }
  if (leak.kind === 'dead-peer') {
    return leak.idleMs !== undefined
      ? 'turn on TCP keepalive for long-lived connections (socket.setKeepAlive(true, 60_000); a keep-alive http.Agent does it), or close connections idle longer than you expect (socket.setTimeout(ms) with destroy() on "timeout").'
      : 'give this connection a deadline: socket.setTimeout(ms) and destroy() on "timeout" (for http, a request timeout; for fetch, an AbortSignal.timeout()), so a vanished peer fails fast instead of hanging; keepalive finds idle dead peers.';
  }
  if (leak.kind === 'left-open') {
    return (
      'close it before the test ends (socket.destroy(), agent.destroy() for an http.Agent, server.closeAllConnections(), ' +
      'or close the client that owns it); if it is meant to outlive the test, leave it out with ignoreLocation() or ignoreRemote().'
    );
  }
  if (leak.kind === 'stalled-reader') {
    return (
      'read what this line opened to its end, or discard it: consume the response body (or call res.resume() / response.body.cancel()), ' +
      'resume a stream you paused, or destroy the socket when you no longer need it.'
    );
  }
  if (leak.kind === 'descriptor-without-connection') {
    return (
      'a socket you end() must still be read to its end or destroyed: call socket.destroy() when you are done with it, ' +
      "or keep reading it (socket.resume()) so Node sees the peer's FIN and closes it."
    );
  }
  if (leak.origin === 'server') {
    return (
      "the server's code never ended this connection. With allowHalfOpen (as in http 'upgrade' and 'connect' handlers) Node leaves that to you: " +
      "call socket.end() in the socket's 'end' handler, or socket.destroy() when you are done with it."
    );
  }
  return (
    'this line opened the connection. Read or discard what it returned (consume the response body, or call res.resume() / ' +
    "response.body.cancel()), and call socket.end() or socket.destroy() once the peer has ended."
  );
}

function evidence(leak: Leak): string {
  const arrow = leak.origin === 'server' ? '<-' : '->';
  // As of detection: the CLI prints its summary when the command ends, long after.
  const detected = Date.parse(leak.detectedAt ?? realIso());
  const age = detected - Date.parse(leak.createdAt);
  // Found after it was made (see Leak.createdAtLatest): when, as closely as is known.
  const youngest = leak.createdAtLatest !== undefined ? detected - Date.parse(leak.createdAtLatest) : undefined;
  const opened = youngest !== undefined && formatDuration(youngest) !== formatDuration(age) ? `opened ${formatDuration(youngest)} to ${formatDuration(age)} ago` : `opened ${formatDuration(age)} ago`;
  return (
    `fd ${leak.fd}, ${formatEndpoint(leak.local)} ${arrow} ${formatEndpoint(leak.remote)}, ${leak.origin} socket, ` +
    (leak.afterTheFact ? '' : leak.origin === 'unknown' ? `first seen ${formatDuration(age)} ago, ` : `${opened}, `) +
    `nothing sent for ${formatDuration(leak.lastDataSentMs)}` +
    (leak.test !== undefined ? `, opened by the test "${leak.test}"` : '') +
    (leak.threadId !== 0 ? `, worker thread ${leak.threadId}` : '') +
    `, pid ${leak.pid}`
  );
}

/**
 * A report for the person who must fix the leak: where (file:line:column
 * first), what happened, what to do, the line itself, then the evidence and
 * the stack.
 */
export function formatTextReport(leak: Leak): string {
  const stackTitle = leak.origin === 'server' ? 'Server listen() stack:' : 'Creation stack:';
  const why = leak.cause ? ` Why: ${leak.cause.summary}.` : '';
  const lines = [headline(leak)];
  if (leak.lastUse) {
    const served = leak.lastUse.served;
    const servedText = served ? `, made while serving ${served.method} ${served.url}${served.server ? ` (the server listening at ${formatLocation(served.server)})` : ''}` : '';
    const trace = leak.lastUse.trace ? ` in trace ${leak.lastUse.trace.traceId} (span ${leak.lastUse.trace.spanId})` : '';
    const request = `${leak.lastUse.method} ${leak.lastUse.url}${leak.lastUse.host ? ` (Host: ${leak.lastUse.host})` : ''}${servedText}${trace}`;
    const used = leak.lastUse.location ? formatLocation(leak.lastUse.location) : undefined;
    const created = formatLocation(leak.creation);
    lines.push(
      used === created
        ? `  Last used by ${request}, the request it was opened for.`
        : `  Last used by ${request} at ${used ?? '<caller not captured>'}${leak.afterTheFact ? '' : `; opened at ${created}`}.`,
    );
  }
  if (leak.listener) {
    const event = leak.listener.event;
    const accepted = event === 'connection' || event === 'secureConnection' || event === 'request';
    const what = event === 'response' ? `Its response is handled by ${leak.listener.what} at` : accepted ? `Accepted and handed to ${leak.listener.what} at` : `Handed to ${leak.listener.what} at`;
    const listening = accepted && leak.creation ? `; the server listens at ${formatLocation(leak.creation)}` : '';
    lines.push(`  ${what} ${formatLocation(leak.listener.location)}${listening}.`);
  }
  lines.push(`  ${whatHappened(leak)}${why}`, `  What to do: ${whatToDo(leak)}`);
  const frame = codeFrame(leak.location);
  const compiled = frame ? undefined : compiledNote(leak.location);
  if (frame) lines.push(frame);
  else if (compiled) lines.push(`  ${compiled}`);
  lines.push(`  ${evidence(leak)}`);
  if (leak.count !== undefined && leak.count > 1) lines.push(`  ${othersLine(leak)}`);
  if (leak.stack) lines.push(`  ${stackTitle}`, leak.stack.replace(/^ {4}/gm, '      '));
  return lines.join('\n') + '\n';
}

/** The other sockets of a grouped report, in one line. */
function othersLine(leak: Leak): string {
  const arrow = leak.origin === 'server' ? '<-' : '->';
  const listed = (leak.others ?? []).map((other) => `fd ${other.fd} ${formatEndpoint(other.local)} ${arrow} ${formatEndpoint(other.remote)}`);
  const unlisted = leak.count! - 1 - listed.length;
  return `Also from this place, in the same state: ${listed.join(', ')}${unlisted > 0 ? `, and ${unlisted} more` : ''}.`;
}

const KIND_NAMES: Record<Leak['kind'], string> = {
  'close-wait': 'stuck in CLOSE_WAIT',
  'descriptor-without-connection': 'descriptors left after their connection ended',
  'stalled-reader': 'stalled readers',
  'left-open': 'left open',
  'dead-peer': 'dead peers',
};

/** One line for leaks held back by the rate limit: the place first, then how many and since when. */
export function formatTextSummary(summary: LeakSummaryReport): string {
  const plural = summary.count === 1 ? '' : 's';
  if (summary.lastReportedAt === null) {
    return (
      `${summary.place}: ${summary.count} leaked TCP socket${plural} from this place (${KIND_NAMES[summary.kind]}), pid ${summary.pid}; ` +
      'not reported in full because too many places leaked at once.\n'
    );
  }
  return (
    `${summary.place}: ${summary.count} more leaked TCP socket${plural} from this place (${KIND_NAMES[summary.kind]}) since it was reported at ${summary.lastReportedAt}; ` +
    `${summary.total} in all, pid ${summary.pid}. The earlier report says what to do.\n`
  );
}
