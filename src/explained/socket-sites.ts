import type { Measurement } from '../measured/scanner';
import { formatLocation, locate } from '../common/stack';
import { slotOf } from '../measured/kernel-reader';
import { tcpStateName } from '../common/tcp-states';
import type { Location } from '../common/types';

/** Tracked sockets opened at one place, by kernel state. */
export interface SocketSite {
  /** "file:line:column", or why no line is known. */
  place: string;
  location: Location | null;
  origin: 'client' | 'server' | 'unknown';
  count: number;
  /** Sockets by kernel state name, e.g. { CLOSE_WAIT: 2890, ESTABLISHED: 10 }. */
  states: Record<string, number>;
}

/** Stacks formatted per call at most: formatting costs 10-40 µs each, and this runs while descriptors run out. */
const MAX_STACKS_FORMATTED = 5000;

/**
 * Which places hold the most open sockets, and in which states: the answer an
 * operator needs when descriptors run out. Sockets accepted by one server
 * share one listen() stack, so they cost one format.
 */
export function socketSites(m: Measurement, skipNodeModules: boolean, top: number): SocketSite[] {
  const sites = new Map<string, SocketSite>();
  const formatted = new Map<object, Location | null>();
  for (let i = 0; i < m.count; i++) {
    const record = m.records[i]!;
    const state = slotOf(m.rows, m.stride, i, 'state');
    if (state < 0) continue;
    let location: Location | null = null;
    let place: string;
    if (record.creation) {
      location = formatted.get(record.creation) ?? null;
      if (!formatted.has(record.creation) && formatted.size < MAX_STACKS_FORMATTED) {
        location = locate(record.creation, skipNodeModules);
        formatted.set(record.creation, location);
      }
      place = location ? formatLocation(location) : 'where no user code was on the stack';
    } else {
      place = 'no creation stack (not sampled)';
    }
    const key = `${record.origin} ${place}`;
    let site = sites.get(key);
    if (!site) {
      site = { place, location, origin: record.origin, count: 0, states: {} };
      sites.set(key, site);
    }
    site.count++;
    const name = tcpStateName(state);
    site.states[name] = (site.states[name] ?? 0) + 1;
  }
  return [...sites.values()].sort((a, b) => b.count - a.count).slice(0, top);
}

/** The sites as indented lines: count, place, states. */
export function formatSites(sites: SocketSite[]): string {
  return sites
    .map((site) => {
      const states = Object.entries(site.states)
        .sort((a, b) => b[1] - a[1])
        .map(([state, count]) => `${state} ${count}`)
        .join(', ');
      const accepted = site.origin === 'server' ? ' (accepted by the server listening there)' : '';
      return `  ${String(site.count).padStart(6)}  ${site.place}${accepted}: ${states}\n`;
    })
    .join('');
}
