import { captureStack, type StackCapture } from '../common/stack';
import type { StackLevel } from '../common/types';


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
