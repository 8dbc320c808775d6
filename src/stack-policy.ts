import { captureStack, type StackCapture } from './stack';

/**
 * How many creation stacks the agent captures, in the spirit of Netty's leak
 * detector levels. Kernel state is checked for every socket at every level;
 * only the stack (the "where") is sampled.
 * - 'all': every socket and request (tests, CI);
 * - 'sampled': one in `every` (production default): a leak that repeats is
 *   soon caught on a sampled socket, and its reports name the line;
 * - 'off': none; reports name the connection and its requests only.
 */
export type StackLevel = 'off' | 'sampled' | 'all';

/** Decides, call by call, whether a stack is captured. */
export class StackPolicy {
  // Sockets and requests are counted apart, so the first of each is sampled: a request's
  // caller is captured before its socket is announced.
  private readonly calls = { socket: 0, request: 0 };

  constructor(
    readonly level: StackLevel,
    readonly every: number,
    readonly depth: number,
  ) {}

  /**
   * A stack, or undefined when this call is not sampled. The first socket
   * (and request) is always sampled, then one in `every`: a program's first
   * connection (often the one a demo or a short script leaks) gets its line.
   */
  capture(what: 'socket' | 'request' = 'socket'): StackCapture | undefined {
    if (this.level === 'all') return captureStack(this.depth);
    if (this.level === 'off') return undefined;
    const sampled = this.calls[what] % this.every === 0;
    this.calls[what]++;
    return sampled ? captureStack(this.depth) : undefined;
  }

  /** Words for reports whose socket has no stack: why, and how to get one. */
  describe(): string {
    if (this.level === 'off') return 'creation stacks are off (stacks: "off")';
    return `this socket's creation stack was not sampled (stacks: "sampled", 1 in ${this.every})`;
  }
}

/**
 * The level when none is given: 'all' inside a test run, where precision
 * matters more than microseconds, 'sampled' everywhere else.
 */
export function defaultStackLevel(env: NodeJS.ProcessEnv = process.env): StackLevel {
  const testRun =
    env.NODE_ENV === 'test' ||
    env.VITEST !== undefined ||
    env.JEST_WORKER_ID !== undefined ||
    env.NODE_TEST_CONTEXT !== undefined;
  return testRun ? 'all' : 'sampled';
}
