import { InvalidSettingError } from '../common/errors';
import { loadNative, SAMPLE_STRIDE, type KernelReader } from './native';
import { createProcfsBackend } from './procfs-backend';

/**
 * Where kernel state comes from:
 * - 'native': the addon (getsockopt TCP_INFO, SIOCINQ / SIOCOUTQ), the default;
 * - 'procfs': Linux without the addon: /proc/self/fd joined to /proc/self/net/tcp{,6};
 * - 'none': a platform with neither: sockets are tracked, no state, no leak can be found.
 */
export type BackendName = 'native' | 'procfs' | 'none';

export interface KernelBackend {
  name: BackendName;
  binding: KernelReader;
  /** Said once when the agent starts: why this platform gets no kernel state. */
  notice?: string;
}

const ACCEPTED = 'expected "native" or "procfs" (or unset: the addon, else procfs on Linux)';

/**
 * Chooses the backend: TCP_LEAK_AGENT_BACKEND when set, else the addon, else
 * (the binary is absent) procfs on Linux, else none. A binary that exists but
 * does not load is an error, not a reason to fall back: it is a broken install
 * to fix. Throws InvalidSettingError or the load error.
 */
export function selectBackend(requested = process.env.TCP_LEAK_AGENT_BACKEND, platform = process.platform): KernelBackend {
  if (requested !== undefined && requested !== '' && requested !== 'native' && requested !== 'procfs') {
    throw new InvalidSettingError('TCP_LEAK_AGENT_BACKEND', requested, ACCEPTED);
  }
  if (requested === 'procfs') {
    if (platform !== 'linux') throw new InvalidSettingError('TCP_LEAK_AGENT_BACKEND', requested, `procfs needs Linux's /proc; this is ${platform}`);
    return { name: 'procfs', binding: createProcfsBackend() };
  }
  const native = loadNative();
  if (native.binding) return { name: 'native', binding: native.binding };
  if (requested === 'native' || !native.absent) throw native.error;
  if (platform === 'linux') return { name: 'procfs', binding: createProcfsBackend() };
  return {
    name: 'none',
    binding: unavailableBackend(),
    notice: `kernel TCP state is not available on ${platform}: sockets are tracked (snapshot()), but no leak can be detected`,
  };
}

let chosen: { backend: KernelBackend } | { error: unknown } | undefined;

/**
 * The backend of this process: selectBackend() with this environment, chosen
 * once (the `backend` export and start() must agree, and the addon is loaded
 * once). Throws what selectBackend threw, each time it is asked.
 */
export function processBackend(): KernelBackend {
  if (!chosen) {
    try {
      chosen = { backend: selectBackend() };
    } catch (error) {
      chosen = { error };
    }
  }
  if ('error' in chosen) throw chosen.error;
  return chosen.backend;
}

/** A backend that knows no state: every socket reads as state 0 (unknown), which no check calls a leak. */
function unavailableBackend(): KernelReader {
  const unsupported = () => {
    const error = new Error('kernel TCP state is not available on this platform') as NodeJS.ErrnoException;
    error.code = 'ENOTSUP';
    return error;
  };
  return {
    SAMPLE_STRIDE,
    scanSockets: (_fds, count, out) => void out.fill(0, 0, count * SAMPLE_STRIDE),
    inspectSocket: () => {
      throw unsupported();
    },
    getDescriptorLimit: () => ({ soft: -1, hard: -1 }),
    countDescriptors: () => -1,
    listTimeWait: () => {
      throw unsupported();
    },
    readEndpoints: () => ({ local: null, remote: null }),
    noteTracked: () => {},
    trackedElsewhere: () => false,
    listTcpDescriptors: () => ({ fds: new Int32Array(0), inodes: new Float64Array(0) }),
  };
}
