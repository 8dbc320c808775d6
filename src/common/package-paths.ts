import * as path from 'node:path';

/**
 * Where the package's files are, whichever stage folder asks: this file is
 * dist/common/package-paths.js once built.
 */
/** The compiled agent (dist/): every frame under it is the agent's own. */
export const DIST_DIR = path.resolve(__dirname, '..');
/** The package root: package.json, build/, prebuilds/. */
export const PACKAGE_ROOT = path.resolve(DIST_DIR, '..');
/** The preload the CLI puts in NODE_OPTIONS. */
export const REGISTER_PATH = path.join(DIST_DIR, 'register.js');

/** The package's version, from its package.json. */
export function packageVersion(): string {
  try {
    return (require(path.join(PACKAGE_ROOT, 'package.json')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
