/**
 * The later stages a program with no leak never reaches (later-stages.ts), loaded the first time
 * one is needed. A preloaded agent with nothing to tell never loads them: less CPU at every
 * process start, and less of the young generation grown before the program runs (docs/figures.md,
 * "What the preload costs each process"). The package's main entry provides them as it loads (its
 * own exports need them), which is also how a runner that loads the TypeScript sources, where
 * require() cannot, gets them.
 */
import type { LATER_STAGES } from './later-stages';

let stages: typeof LATER_STAGES | undefined;

/** The later stages: provided, or loaded now. */
export function later(): typeof LATER_STAGES {
  return (stages ??= (require('./later-stages') as typeof import('./later-stages')).LATER_STAGES);
}

/** Called by an entry that has loaded the later stages already. */
export function provideLaterStages(loaded: typeof LATER_STAGES): void {
  stages ??= loaded;
}
