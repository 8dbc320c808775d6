/**
 * Node.js processes of a CLI run that run without the agent.
 *
 * The CLI preloads the agent through NODE_OPTIONS. A script that sets
 * NODE_OPTIONS instead of adding to it (`cross-env NODE_OPTIONS=--foo mocha`),
 * or a spawn with an environment of its own, starts Node without the preload:
 * that process, often the one that holds every socket, is never checked, and a
 * run that says nothing would pass blind.
 *
 * How they are found (Linux /proc):
 * - the CLI marks its command's environment with RUN_MARKER; descendants keep
 *   it however they change NODE_OPTIONS, and /proc/<pid>/environ shows the
 *   environment a process was started with. A process without the marker whose
 *   parent is one of the run's counts too (a spawn with a fresh environment);
 * - the CLI looks at /proc every POLL_MS while the command runs and classifies
 *   each new process once it runs Node (a shell may exec node later, so
 *   non-Node processes are looked at again);
 * - each checked process also looks at the children it spawns (their 'spawn'
 *   event, after exec), which catches a child that lives less than a poll;
 * - a child between fork and exec (the same image as its parent) is not judged
 *   until it execs: it is not yet the program it will run;
 * - a process judged checked or unchecked is looked at again once it execs (a
 *   checked process may exec Node with NODE_OPTIONS replaced; an unchecked one
 *   caught before its exec may become openssl): each counts once, as what it
 *   finally runs.
 * Limits: a process that lived less than a poll, started by something other
 * than a checked Node process, can be missed; so can one that dropped the marker
 * and was reparented before it was seen. Another user's processes cannot be read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_MARKER, UNCHECKED_FILE } from './run-marker';

/** How often the CLI looks for new processes. */
export const POLL_MS = 10;

/** A Node.js process that ran without the agent. */
export interface UncheckedProcess {
  pid: number;
  /** Its command line, as /proc showed it. */
  command: string[];
  /** Its NODE_OPTIONS (undefined when unset). */
  nodeOptions: string | undefined;
}

type Look =
  | { kind: 'gone' | 'not-ours' | 'checked' }
  | { kind: 'not-node'; ours: true }
  | { kind: 'unchecked'; process: UncheckedProcess };

/** True when NODE_OPTIONS still carries the agent's preload. */
export function keepsPreload(nodeOptions: string | undefined, registerPath: string): boolean {
  return nodeOptions !== undefined && (nodeOptions.includes(registerPath) || /tcp-leak-agent\/register/.test(nodeOptions));
}

function isNodeExecutable(exe: string): boolean {
  return /^node(js)?([-_.]?\d[\w.-]*)?$/.test(path.basename(exe).replace(/ \(deleted\)$/, ''));
}

function readEnvironment(pid: number): Map<string, string> | undefined {
  let raw: string;
  try {
    raw = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return undefined;
  }
  const env = new Map<string, string>();
  for (const entry of raw.split('\0')) {
    const equals = entry.indexOf('=');
    if (equals > 0) env.set(entry.slice(0, equals), entry.slice(equals + 1));
  }
  return env;
}

function readCommand(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((arg) => arg !== '');
  } catch {
    return [];
  }
}

interface ProcessStat {
  parent: number;
  /**
   * Where its arguments and environment start in memory: new with each exec (a fresh
   * stack), the same in a fork's copy of its parent. Tells when a process seen as
   * checked has since become another program.
   */
  image: string;
}

/**
 * The process's parent and image; undefined when it is gone, or has no whole image right now:
 * the kernel shows 0 for arg_start or env_start while an exec is setting up the new program and
 * once an exiting process has let go of its memory. Neither is a program to judge, nor an exec.
 */
function readStat(pid: number): ProcessStat | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'
    // with field 3 (state); arg_start is field 48, env_start field 50.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[45] === '0' || fields[47] === '0') return undefined;
    return { parent: Number(fields[1]), image: `${fields[45]}:${fields[47]}` };
  } catch {
    return undefined;
  }
}

/**
 * Looks at one process: is it part of the run (`runDir` in its RUN_MARKER, or
 * `parentIsOurs`), and if it runs Node, did it keep the preload?
 */
export function lookAtProcess(pid: number, runDir: string, registerPath: string, parentIsOurs: boolean): Look {
  let exe: string;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch (error) {
    // A zombie or a vanished process has no exe; another user's cannot be read.
    return { kind: (error as NodeJS.ErrnoException).code === 'EACCES' ? 'not-ours' : 'gone' };
  }
  const env = readEnvironment(pid);
  // An exiting process has let go of its memory: its environ reads empty although exe still
  // answers. It cannot be told apart from one that never had NODE_OPTIONS, so it is not judged.
  if (!env || env.size === 0) return { kind: 'gone' };
  if (env.get(RUN_MARKER) !== runDir && !parentIsOurs) return { kind: 'not-ours' };
  if (!isNodeExecutable(exe)) return { kind: 'not-node', ours: true };
  const nodeOptions = env.get('NODE_OPTIONS');
  if (keepsPreload(nodeOptions, registerPath)) return { kind: 'checked' };
  return { kind: 'unchecked', process: { pid, command: readCommand(pid), nodeOptions } };
}

/**
 * Follows the processes of a CLI run while it runs (see the file's comment).
 * Call `poll()` every POLL_MS, and `found()` once the command has exited.
 */
export class UncheckedProcessWatch {
  // Processes of the run (parents whose children count), processes already classified, and the
  // image each checked one had when classified, by pid.
  private readonly ours = new Set<number>();
  private readonly settled = new Set<number>();
  private readonly checkedImage = new Map<number, string>();
  private readonly unchecked = new Map<number, UncheckedProcess>();
  // The image each unchecked one had when judged, while it runs (see forgetIfExecuted).
  private readonly uncheckedImage = new Map<number, string>();

  constructor(
    private readonly runDir: string,
    private readonly registerPath: string,
    rootPid: number,
  ) {
    this.ours.add(rootPid);
  }

  poll(): void {
    let entries: string[];
    try {
      entries = fs.readdirSync('/proc');
    } catch {
      return;
    }
    const listed = new Set<number>();
    for (const entry of entries) {
      const first = entry.charCodeAt(0);
      if (first < 48 || first > 57) continue;
      const pid = Number(entry);
      listed.add(pid);
      if (pid === process.pid) continue;
      if (this.checkedImage.has(pid)) this.unsettleIfExecuted(pid);
      if (this.uncheckedImage.has(pid)) this.forgetIfExecuted(pid);
      if (this.settled.has(pid)) continue;
      const stat = readStat(pid);
      if (!stat) continue;
      // Between fork and exec a child is a copy of its parent (the same image): not yet the
      // program it will run. Judged once it execs; if it never does, it never ran anything else.
      if (stat.image === readStat(stat.parent)?.image) continue;
      const look = lookAtProcess(pid, this.runDir, this.registerPath, this.ours.has(stat.parent));
      switch (look.kind) {
        case 'gone':
          break;
        case 'not-node':
          this.ours.add(pid);
          break;
        case 'unchecked':
          this.unchecked.set(pid, look.process);
          this.uncheckedImage.set(pid, stat.image);
          this.ours.add(pid);
          this.settled.add(pid);
          break;
        case 'checked':
          this.ours.add(pid);
          this.settled.add(pid);
          this.checkedImage.set(pid, stat.image);
          break;
        case 'not-ours':
          this.settled.add(pid);
          break;
      }
    }
    // A pid is reused once its process is gone (pid_max can be 32768): forget the ones that went,
    // or a new process of the run could inherit a stranger's verdict.
    for (const pid of this.settled) if (!listed.has(pid)) this.settled.delete(pid);
    for (const pid of this.checkedImage.keys()) if (!listed.has(pid)) this.checkedImage.delete(pid);
    for (const pid of this.uncheckedImage.keys()) if (!listed.has(pid)) this.uncheckedImage.delete(pid);
    for (const pid of this.ours) if (!listed.has(pid) && !this.unchecked.has(pid)) this.ours.delete(pid);
  }

  /**
   * A checked process can still become an unchecked one: a child caught between fork and
   * exec looks like its checked parent, and a checked process may exec (process.execve) Node
   * with NODE_OPTIONS replaced. Its image changes at exec: then it is looked at again.
   */
  private unsettleIfExecuted(pid: number): void {
    const now = readStat(pid)?.image;
    if (now === undefined || now === this.checkedImage.get(pid)) return;
    this.checkedImage.delete(pid);
    this.settled.delete(pid);
  }

  /**
   * A process counts once, as what it finally runs: one judged unchecked that then execs
   * another program (a fork of an unchecked process caught before its exec, or a process that
   * replaces itself) is judged again as that program.
   */
  private forgetIfExecuted(pid: number): void {
    const now = readStat(pid)?.image;
    if (now === undefined || now === this.uncheckedImage.get(pid)) return;
    this.uncheckedImage.delete(pid);
    this.unchecked.delete(pid);
    this.settled.delete(pid);
  }

  /** Every unchecked process, seen by the watch or noted by a checked parent. */
  found(): UncheckedProcess[] {
    for (const noted of readNoted(path.join(this.runDir, UNCHECKED_FILE))) {
      if (!this.unchecked.has(noted.pid)) this.unchecked.set(noted.pid, noted);
    }
    return [...this.unchecked.values()].sort((a, b) => a.pid - b.pid);
  }
}

function readNoted(file: string): UncheckedProcess[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const noted: UncheckedProcess[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      noted.push(JSON.parse(line) as UncheckedProcess);
    } catch {
      // A partial line from a process killed mid-write.
    }
  }
  return noted;
}

/** The CLI's words for them: which processes, what their NODE_OPTIONS was, how to keep the preload. */
export function describeUnchecked(processes: UncheckedProcess[]): string {
  const count = processes.length;
  const lines = [
    `tcp-leak-agent: ${count} Node.js process${count === 1 ? '' : 'es'} ran without the agent, so ${count === 1 ? 'its' : 'their'} sockets were not checked:`,
  ];
  for (const unchecked of processes) {
    const options = unchecked.nodeOptions === undefined ? 'NODE_OPTIONS unset' : `NODE_OPTIONS=${JSON.stringify(unchecked.nodeOptions)}`;
    lines.push(`  pid ${unchecked.pid}: ${unchecked.command.join(' ') || '(command line unknown)'}  (${options})`);
  }
  lines.push(
    '  The agent is preloaded through NODE_OPTIONS, and something in the command set NODE_OPTIONS instead of adding to it.',
    '  Add to it: NODE_OPTIONS="$NODE_OPTIONS --flag" in a script, or NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? \'\'} --flag` in a spawn\'s env.',
    '  To accept unchecked processes, pass --allow-unchecked.',
  );
  return `${lines.join('\n')}\n`;
}
