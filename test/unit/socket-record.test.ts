import { describe, expect, it } from 'vitest';
import { newRecord, type SocketRecord } from '../../src/remembered/socket-record';

// Every field of SocketRecord, optional ones too (typed: an editor or tsc flags a field added to the type and not here).
const FIELDS: Record<keyof SocketRecord, true> = {
  origin: true,
  createdAt: true,
  createdAtLatest: true,
  creation: true,
  closeWaitSince: true,
  consumption: true,
  reported: true,
  uses: true,
  handedTo: true,
  test: true,
  client: true,
  stallSince: true,
  stallBytesRead: true,
  writtenSeen: true,
  writtenAt: true,
  peerKnown: true,
  endpoints: true,
  reportedLeak: true,
  reader: true,
};

describe('a socket record', () => {
  it('has every field from the start, so that a field written later (a scan, a request, a report) keeps the shape records share', () => {
    expect(Object.keys(newRecord('client', 0, undefined, false)).sort()).toEqual(Object.keys(FIELDS).sort());
  });
});
