import { createHook, executionAsyncResource } from 'node:async_hooks';

const OWNER = Symbol('tcp-leak-agent.test');
type Owned = { [OWNER]?: string };

/**
 * The test a piece of async work belongs to, for runners whose hooks cannot
 * put a value into the test's async context (node:test runs each test and
 * each hook in its own AsyncResource, so AsyncLocalStorage entered in
 * beforeEach never reaches the test function).
 *
 * Between a test's beforeEach and afterEach, work with no owner of its own
 * belongs to the running test. Every async resource created then carries its
 * owner on, as AsyncLocalStorage would: a timer or promise a test leaves
 * behind still belongs to it when it opens a socket during a later test.
 */
export class RunningTest {
  private running: string | undefined;
  private readonly hook = createHook({
    init: (_asyncId, _type, _triggerAsyncId, resource) => {
      const owner = this.current();
      if (owner === undefined) return;
      try {
        (resource as Owned)[OWNER] = owner;
      } catch {
        // A frozen resource: its descendants fall back to the running test.
      }
    },
  });

  constructor() {
    this.hook.enable();
  }

  /** The test of the current async context, else the one running now. */
  current(): string | undefined {
    return (executionAsyncResource() as Owned)[OWNER] ?? this.running;
  }

  begin(name: string): void {
    this.running = name;
  }

  end(): void {
    this.running = undefined;
  }

  /** Stops following async resources (the runner is done with this file). */
  disable(): void {
    this.running = undefined;
    this.hook.disable();
  }
}
