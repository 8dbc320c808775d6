import type { Agent } from '../agent/agent';
import { testChecks } from '../agent/checks';
import { isSocketLeakError, SocketLeakError } from '../common/errors';
import { start } from '../agent/api';
import { formatLeaks } from '../told/format';
import { tellFailedCheck } from '../told/ci-teller';
import { annotationsRequested } from '../agent/environment';

/**
 * What every test-runner adapter does, whatever the runner: start the agent
 * silently, name each new socket's test, check a test's sockets when it ends,
 * and at the end of a file tell the leaks that showed only after their test
 * had ended.
 */
export class PerTestChecks {
  readonly agent: Agent;
  private readonly ended = new Set<string>();
  // Tests already failed on a leak: a later look at the same sockets must not tell them twice.
  private readonly failed = new Set<string>();

  // Under GitHub Actions, a failing check also annotates the leaking line (TCP_LEAK_AGENT_ANNOTATIONS=0: not).
  private readonly annotations: boolean;
  // A bad TCP_LEAK_AGENT_ANNOTATIONS: told by the file's check, as an agent that could not start is.
  private readonly settingError: Error | undefined;

  /** @param currentTest the name of the test running in the current async context. */
  constructor(currentTest: () => string | undefined) {
    let annotations = true;
    try {
      annotations = annotationsRequested(process.env);
    } catch (error) {
      this.settingError = error as Error;
    }
    this.annotations = annotations;
    // The agent's own reports stay silent: the checks tell, each failing test once.
    this.agent = start({ output: 'none', stacks: 'all', annotations: false });
    if (this.agent.running) this.agent.attributeSocketsTo(currentTest);
  }

  /**
   * Resolves when the test's sockets are clean (after giving sockets the peer
   * just closed time to close); rejects with SocketLeakError, whose message is
   * the report, when one leaked. The leaked sockets are then destroyed, so the
   * test process can still end.
   */
  async afterTest(name: string): Promise<void> {
    this.ended.add(name);
    if (!this.agent.running) return;
    const checks = { ...testChecks(), test: name };
    try {
      await this.agent.verifyNoLeaks(checks);
    } catch (error) {
      if (isSocketLeakError(error)) {
        this.failed.add(name);
        this.agent.destroyLeaked(checks);
        tellFailedCheck(error.leaks, process.env, this.annotations);
      }
      throw error;
    }
  }

  /**
   * The error that must fail the file (or the run), if any: leaks of tests that
   * had already ended and passed (given the same time to settle as afterTest),
   * or an agent that could not start (then no test was checked, and saying
   * nothing would let CI pass blind).
   */
  async afterFile(): Promise<Error | undefined> {
    if (this.settingError) return new Error(`tcp-leak-agent could not check these tests for leaked sockets: ${this.settingError.message}`);
    if (this.agent.startError) {
      return new Error(`tcp-leak-agent could not check these tests for leaked sockets: ${this.agent.startError.message}`);
    }
    if (!this.agent.running) return undefined;
    const { ignore, timeoutMs } = testChecks();
    try {
      // Tracked sockets only: one no agent tracks belongs to no test, and would only hold the check up.
      await this.agent.verifyNoLeaks({ ignore, timeoutMs }, false);
      return undefined;
    } catch (error) {
      if (!isSocketLeakError(error)) return error instanceof Error ? error : new Error(String(error));
      // Sockets of no test, or of a test still running, are not this check's business.
      const late = error.leaks.filter((leak) => leak.test !== undefined && this.ended.has(leak.test) && !this.failed.has(leak.test));
      for (const test of new Set(late.map((leak) => leak.test!))) this.agent.destroyLeaked({ ignore, test });
      if (late.length === 0) return undefined;
      tellFailedCheck(late, process.env, this.annotations);
      const tests = [...new Set(late.map((leak) => leak.test))].join('", "');
      return new SocketLeakError(late, `${formatLeaks(late, 'text').trimEnd()}\n(found after the test "${tests}" had ended)`);
    }
  }
}
