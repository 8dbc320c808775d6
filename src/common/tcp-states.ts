// Linux TCP state numbers, as in include/net/tcp_states.h and tcp_info.tcpi_state.
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_SENT = 2;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;

const STATE_NAMES = [
  'UNKNOWN', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2',
  'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV',
];

/** The kernel's name for a TCP state number. */
export function tcpStateName(state: number): string {
  return STATE_NAMES[state] ?? `STATE_${state}`;
}
