import { formatEndpoint } from '../common/endpoints';
import { formatLocation } from '../common/stack';
import type { Leak, LeakSummaryReport } from '../common/types';
import { realIso } from '../common/real-time';

/** Leaks of one kind from one place, told as one report: the first leak is the example. */
export interface LeakGroup {
  leak: Leak;
  /** Every leak of the group, the example first. */
  leaks: Leak[];
}

/** Others listed in a grouped report; the count says how many there are in all. */
const OTHERS_LISTED = 10;

/** The report of a group: its example leak, with the count and the other sockets. */
export function groupReport(group: LeakGroup): Leak {
  if (group.leaks.length === 1) return group.leak;
  const others = group.leaks.slice(1, 1 + OTHERS_LISTED).map(({ fd, local, remote }) => ({ fd, local, remote }));
  return { ...group.leak, count: group.leaks.length, others };
}

interface PlaceState {
  lastReportedAt: number;
  pending: number;
  total: number;
  example: Leak;
}

/** New places told in full per interval; more than that in one burst is summed up instead. */
const NEW_PLACES_PER_INTERVAL = 20;

/**
 * Groups leaks by kind and place and rate-limits what is told, so a mass leak
 * reads as a handful of lines ("412 sockets leaked from src/client.ts:41:17"),
 * not 412 reports. The first leaks from a place are reported in full, as one
 * group; later ones from the same place are counted and summed up at most
 * once per interval, and once more at exit.
 */
export class ReportLimiter {
  private readonly places = new Map<string, PlaceState>();
  private intervalStart = 0;
  private newPlacesThisInterval = 0;

  constructor(private readonly intervalMs: number) {}

  /** Which of a scan's leaks to report in full (grouped), and which held-back places to sum up now. */
  admit(leaks: readonly Leak[], now: number): { groups: LeakGroup[]; summaries: LeakSummaryReport[] } {
    if (now - this.intervalStart >= this.intervalMs) {
      this.intervalStart = now;
      this.newPlacesThisInterval = 0;
    }
    const groups: LeakGroup[] = [];
    for (const group of groupLeaks(leaks)) {
      const key = placeKey(group.leak);
      const state = this.places.get(key);
      if (state === undefined && this.newPlacesThisInterval < NEW_PLACES_PER_INTERVAL) {
        this.newPlacesThisInterval++;
        this.places.set(key, { lastReportedAt: now, pending: 0, total: group.leaks.length, example: group.leak });
        groups.push(group);
        continue;
      }
      // Known place (or too many new ones at once): count it; it is summed up below or later.
      const held = state ?? { lastReportedAt: 0, pending: 0, total: 0, example: group.leak };
      held.pending += group.leaks.length;
      held.total += group.leaks.length;
      this.places.set(key, held);
    }
    return { groups, summaries: this.due(now, false) };
  }

  /** Every place with leaks held back, summed up now (at exit). */
  flush(now: number): LeakSummaryReport[] {
    return this.due(now, true);
  }

  private due(now: number, all: boolean): LeakSummaryReport[] {
    const summaries: LeakSummaryReport[] = [];
    for (const state of this.places.values()) {
      if (state.pending === 0 || (!all && now - state.lastReportedAt < this.intervalMs)) continue;
      summaries.push({
        type: 'leak-summary',
        kind: state.example.kind,
        place: placeOf(state.example),
        location: state.example.location,
        count: state.pending,
        total: state.total,
        lastReportedAt: state.lastReportedAt === 0 ? null : realIso(state.lastReportedAt),
        pid: process.pid,
      });
      state.pending = 0;
      state.lastReportedAt = now;
    }
    return summaries;
  }
}

/** Groups leaks by kind and place, in the order each group first appears. */
export function groupLeaks(leaks: readonly Leak[]): LeakGroup[] {
  const groups = new Map<string, LeakGroup>();
  for (const leak of leaks) {
    const key = placeKey(leak);
    const group = groups.get(key);
    if (group) group.leaks.push(leak);
    else groups.set(key, { leak, leaks: [leak] });
  }
  return [...groups.values()];
}

function placeKey(leak: Leak): string {
  return `${leak.kind} ${placeOf(leak)} ${leak.test ?? ''}`;
}

/**
 * Where a leak comes from: its line, or, without one, the far end of the
 * connection (leaks of unknown origin to one service belong together; an
 * accepted socket's far end is a client port, so those group by local port).
 */
export function placeOf(leak: Leak): string {
  if (leak.location) return formatLocation(leak.location);
  const end = leak.origin === 'server' ? leak.local : leak.remote;
  const side = leak.origin === 'server' ? 'accepted on' : 'connected to';
  return end ? `${side} ${formatEndpoint(end)}` : 'an unknown place';
}
