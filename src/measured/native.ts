import { PACKAGE_ROOT } from '../common/package-paths';
import { layoutMismatch, type KernelReader } from './kernel-reader';

export { SAMPLE, SAMPLE_STRIDE, slotOf, type KernelReader, type NativeEndpoint, type TcpDetail } from './kernel-reader';

/** The outcome of loading the addon: the binding, or why it is not there (absent: no binary for this platform). */
export type NativeLoad = { binding: KernelReader; error?: undefined } | { binding?: undefined; error: Error; absent: boolean };

let loaded: NativeLoad | undefined;

/**
 * Loads the addon once: a local build (build/Release, in a clone) or the
 * prebuilt binary for this platform shipped in the package (prebuilds/),
 * found as node-gyp-build finds it. Never throws. Only a missing binary is
 * `absent`; a binary that exists and fails to load is an error to report.
 */
export function loadNative(): NativeLoad {
  if (loaded) return loaded;
  const root = PACKAGE_ROOT;
  let file: string;
  try {
    file = (require('node-gyp-build') as { path(dir: string): string }).path(root);
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    loaded = { error: new Error(`the native addon is not available (${reason}); build it with "npm run build:native"`), absent: true };
    return loaded;
  }
  try {
    const binding = require(file) as KernelReader;
    const mismatch = layoutMismatch(binding);
    loaded = mismatch ? { error: new Error(`the native addon at ${file} does not match this package (${mismatch}); rebuild it with "npm run build:native"`), absent: false } : { binding };
  } catch (error) {
    loaded = { error: new Error(`the native addon at ${file} failed to load: ${(error as Error).message}`), absent: false };
  }
  return loaded;
}
