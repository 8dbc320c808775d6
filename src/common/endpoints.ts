import type { Endpoint } from './types';

/** "address:port", with an IPv6 address in brackets; "?" when the address is unknown. */
export function formatEndpoint(endpoint: Pick<Endpoint, 'address' | 'port'> | null): string {
  if (!endpoint) return '?';
  return `${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`;
}
