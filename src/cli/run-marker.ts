/**
 * What the CLI and the processes it checks agree on: the variable that marks a run, and the file
 * where a checked process notes the children it saw start without the agent. Apart from the rest
 * of the CLI, so that a preloaded process reads it without loading the CLI's own code.
 */

/** Set by the CLI in its command's environment: the run's directory. */
export const RUN_MARKER = 'TCP_LEAK_AGENT_CLI_RUN';
/** The file (in the run's directory) where checked processes note unchecked children. */
export const UNCHECKED_FILE = 'unchecked.jsonl';
