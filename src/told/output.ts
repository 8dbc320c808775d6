import * as fs from 'node:fs';
import { InvalidSettingError } from '../common/errors';

/** Where reports are written. Writing never throws into the host. */
export type Output = (text: string) => void;

function writeFully(fd: number, text: string): void {
  const buffer = Buffer.from(text);
  let offset = 0;
  let retries = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset);
    } catch (error) {
      // stderr can be a non-blocking pipe; when it is full, try a few times, then drop.
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN' && retries++ < 100) continue;
      return;
    }
  }
}

/**
 * Opens the output named by the `output` option: 'stderr', 'none' or a file
 * path. Writes are synchronous so the report made at exit is not lost, and
 * from a worker thread they still reach the terminal directly.
 * Throws InvalidSettingError when a file cannot be opened for appending.
 */
export function openOutput(target: string, setting: string): Output {
  if (target === 'none') return () => {};
  if (target === 'stderr') return (text) => writeFully(2, text);
  try {
    fs.closeSync(fs.openSync(target, 'a'));
  } catch (error) {
    throw new InvalidSettingError(setting, target, `expected "stderr", "none" or a file path that can be opened for appending (${(error as Error).message})`);
  }
  return (text) => {
    try {
      fs.appendFileSync(target, text);
    } catch {
      // The file went away or the disk is full: the host comes first.
    }
  };
}
