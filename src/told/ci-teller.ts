import * as fs from 'node:fs';
import type { Leak, LeakSummaryReport } from '../common/types';
import { githubActionsWanted, jobSummary, junitXml, leakPlaces, noticePlaces, workflowCommands, type CiPlace } from './ci-formats';
import { formatNotice, type Notice } from './notices';

/** Places remembered for the end-of-run files, at most: a process leaking from more places is told in full by its reports. */
const PLACES_KEPT = 1000;

/**
 * Tells what a process reports where CI users look: under GitHub Actions, a workflow annotation
 * per place as it is reported and a job summary when the process exits; a JUnit file at exit when
 * asked (`junit`). Writing is best effort: a CI file that cannot be written must not break the
 * program, and the text report has already said everything.
 */
export class CiTeller {
  private readonly places = new Map<string, CiPlace>();
  private readonly github: boolean;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    annotations: boolean,
    private readonly junitPath: string | undefined,
    /** Where workflow commands go: the runner reads them from the job's output. */
    private readonly write: (text: string) => void = (text) => process.stdout.write(text),
  ) {
    this.github = githubActionsWanted(env, annotations);
  }

  /** Whether there is anything to do at all. */
  get active(): boolean {
    return this.github || this.junitPath !== undefined;
  }

  leaks(leaks: readonly Leak[]): void {
    if (!this.active || leaks.length === 0) return;
    const places = leakPlaces(leaks);
    if (this.github) this.write(workflowCommands(places, this.env));
    this.remember(places);
  }

  /** Leaks held back by the rate limit: counted for the files, not annotated again. */
  summaries(summaries: readonly LeakSummaryReport[]): void {
    if (!this.active || summaries.length === 0) return;
    this.remember(leakPlaces([], summaries));
  }

  notice(notice: Notice): void {
    if (!this.active) return;
    const places = noticePlaces([notice], (told) => formatNotice(told, 'text'));
    if (places.length === 0) return;
    if (this.github) this.write(workflowCommands(places, this.env));
    this.remember(places);
  }

  /** At exit: the job summary (when something was found) and the JUnit file (always, when asked). */
  finish(): void {
    const places = [...this.places.values()];
    if (this.github && places.length > 0) appendSummary(this.env, jobSummary(places, [], this.env.GITHUB_WORKSPACE));
    if (this.junitPath) {
      try {
        fs.writeFileSync(this.junitPath, junitXml(places, [], this.env.GITHUB_WORKSPACE));
      } catch {
        // Best effort (see the class comment).
      }
    }
  }

  private remember(places: readonly CiPlace[]): void {
    for (const place of places) {
      const key = `${place.kind} ${place.place}`;
      const known = this.places.get(key);
      if (known) known.count += place.count;
      else if (this.places.size < PLACES_KEPT) this.places.set(key, { ...place });
    }
  }
}

/** Appends to the job summary file, if the runner gave one. */
export function appendSummary(env: NodeJS.ProcessEnv, markdown: string): void {
  const file = env.GITHUB_STEP_SUMMARY;
  if (!file) return;
  try {
    fs.appendFileSync(file, markdown);
  } catch {
    // Best effort: the annotations and the report have told it.
  }
}

/** For a test-runner adapter's failing check: its annotations and a job summary section, now. */
export function tellFailedCheck(leaks: readonly Leak[], env: NodeJS.ProcessEnv, annotations: boolean): void {
  if (!githubActionsWanted(env, annotations) || leaks.length === 0) return;
  const places = leakPlaces(leaks);
  try {
    process.stdout.write(workflowCommands(places, env));
  } catch {
    // stdout closed: nothing to do.
  }
  appendSummary(env, jobSummary(places, [], env.GITHUB_WORKSPACE));
}
